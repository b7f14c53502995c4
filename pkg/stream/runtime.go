package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilsec/vigil/pkg/events"
)

// Header names added to every dead letter (besides the Avro DeadLetter value).
const (
	HeaderStage           = "vigil-stage"
	HeaderErrorClass      = "vigil-error-class"
	HeaderError           = "vigil-error"
	HeaderSourceTopic     = "vigil-source-topic"
	HeaderSourcePartition = "vigil-source-partition"
	HeaderSourceOffset    = "vigil-source-offset"
	HeaderAttempts        = "vigil-attempts"
)

// ErrPause asks the runner to stop consuming the batch's partitions for a while: nothing of the
// batch is committed, the partitions are rewound to the batch start and paused, and resumed after
// the pause backoff. Handlers wrap it (fmt.Errorf("threatq: %w", stream.ErrPause)).
var ErrPause = errors.New("pause consumption")

// PermanentError marks a record that can never be processed; it goes to the dead-letter topic.
type PermanentError struct {
	Class string // short machine-readable class, e.g. "decode", "unknown_format", "validation"
	Err   error
}

func (e *PermanentError) Error() string { return e.Class + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError of the given class.
func Permanent(class string, err error) error { return &PermanentError{Class: class, Err: err} }

// Result is what a handler made of one input record.
type Result struct {
	// Outputs are produced before the input's offset is committed. A nil/empty slice with a nil
	// Err means "filtered": the record is done and nothing is produced.
	Outputs []*kgo.Record
	// Err is a per-record failure: a *PermanentError goes to the DLQ, anything else is retried.
	Err error
}

// BatchHandler processes one poll batch. It returns exactly one Result per input, in order.
// The ctx lives as long as the batch; it is cancelled on shutdown. A returned error applies to
// the whole batch: ErrPause pauses, other errors are retried with backoff (and pause when they persist).
// Handle is called from one goroutine at a time.
type BatchHandler interface {
	Handle(ctx context.Context, recs []*kgo.Record) ([]Result, error)
}

// HandlerFunc adapts a function to BatchHandler.
type HandlerFunc func(ctx context.Context, recs []*kgo.Record) ([]Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, recs []*kgo.Record) ([]Result, error) {
	return f(ctx, recs)
}

// Config configures a Runner.
type Config struct {
	Stage      string // ingest, enrich, correlate, sink: names the DLQ stage and metrics
	Group      string
	Topics     []string
	TopicRegex bool // Topics are regular expressions
	Kafka      KafkaConfig
	MaxBatch   int           // records per handled batch (default 500)
	BatchWait  time.Duration // keep polling until MaxBatch or BatchWait (default 0: one poll)
	// WaitFromRecordTime starts the BatchWait window at the oldest record's timestamp rather than
	// when it was polled: a record that already waited in Kafka (a backlog) does not wait again,
	// so a lagging consumer handles what it has at once. A producer clock that lags behind ours
	// only shortens windows.
	WaitFromRecordTime bool
	MaxAttempts        int           // attempts for a transiently failing record before the DLQ (default 5)
	RetryBase          time.Duration // first retry delay (default 100ms)
	PauseMin           time.Duration // first pause (default 500ms), doubling to PauseMax
	PauseMax           time.Duration // default 30s
	ProduceTimeout     time.Duration // bound on waiting for produce acks (default 30s)
	DrainTimeout       time.Duration // after shutdown starts (or before a rebalance), time left to finish and commit the batches in flight (default 20s)
	// MaxInFlight bounds the handled batches whose outputs are still being produced or whose
	// offsets are not yet committed (default 4). With 1 the next batch is polled only after the
	// previous one's outputs are acked.
	MaxInFlight int
	// FetchMaxBytes bounds one fetch response (default 1 MiB, compressed); the client holds about
	// two per broker (one being polled, one fetched ahead), decompressed.
	FetchMaxBytes int32
	// FetchMaxPartitionBytes bounds one partition in a fetch (default 256 KiB).
	FetchMaxPartitionBytes int32
	ExtraOpts              []kgo.Opt     // e.g. kotel hooks
	Tracer                 *kotel.Tracer // optional: a process span per record, parent of its outputs
	Metrics                *Metrics      // optional
	// OnRevoke is called when partitions are revoked or lost: between batches, never while the
	// handler runs, with every batch in flight drained and committed (except when lost).
	OnRevoke func(ctx context.Context, revoked map[string][]int32)
}

func (c *Config) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 100 * time.Millisecond
	}
	if c.PauseMin <= 0 {
		c.PauseMin = 500 * time.Millisecond
	}
	if c.PauseMax <= 0 {
		c.PauseMax = 30 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 20 * time.Second
	}
	if c.ProduceTimeout <= 0 {
		c.ProduceTimeout = 30 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 1 << 20
	}
	if c.FetchMaxPartitionBytes <= 0 {
		c.FetchMaxPartitionBytes = 256 << 10
	}
}

// Runner is one consumer group member running a BatchHandler.
type Runner struct {
	cfg     Config
	h       BatchHandler
	serde   *events.Serde
	log     *slog.Logger
	cl      *kgo.Client
	metrics *Metrics

	pmu         sync.Mutex // paused, pausedUntil: the poll goroutine and the revoke callback
	pausedUntil time.Time
	paused      map[string][]int32
	pauseStreak atomic.Int32

	pipe            *pipeline
	rebalanceWanted atomic.Bool // a rebalance callback waits for AllowRebalance
	pollMu          sync.Mutex
	pollCancel      context.CancelFunc // cancels the poll in progress (nil between polls)

	lastOK    atomic.Int64 // unix nanos of the last successful fetch or ping
	closeOnce sync.Once
}

// NewRunner builds the franz-go client (group consumer + producer). It does not connect yet.
func NewRunner(cfg Config, h BatchHandler, serde *events.Serde, log *slog.Logger) (*Runner, error) {
	cfg.defaults()
	if cfg.Stage == "" || cfg.Group == "" || len(cfg.Topics) == 0 {
		return nil, errors.New("stream: Stage, Group and Topics are required")
	}
	r := &Runner{cfg: cfg, h: h, serde: serde, log: log.With("stage", cfg.Stage), metrics: cfg.Metrics}
	r.pipe = newPipeline(r.wakePoll)
	if r.metrics == nil {
		r.metrics = NopMetrics()
	}
	base, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, err
	}
	reset := kgo.NewOffset().AtStart()
	if cfg.Kafka.ResetOffset == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := append(base,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchMaxWait(cmp.Or(cfg.Kafka.FetchMaxWait, DefaultFetchMaxWait)),
		kgo.FetchMinBytes(cmp.Or(cfg.Kafka.FetchMinBytes, DefaultFetchMinBytes)),
		// bound what sits in fetch buffers (memory target per service): a fetched batch is
		// decompressed whole and stays in memory until its last record is polled
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(cfg.FetchMaxPartitionBytes),
		kgo.MaxConcurrentFetches(4),
		kgo.ProducerLinger(cfg.Kafka.Linger),
		// room for the outputs of every batch in flight (a record may have several)
		kgo.MaxBufferedRecords(2*(cfg.MaxInFlight+1)*cfg.MaxBatch+1000),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 on the key: one indicator, one partition
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onRevoked),
		kgo.OnPartitionsCallbackBlocked(r.onBlocked),
	)
	if cfg.Kafka.GroupProtocol == "classic" {
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if cfg.TopicRegex {
		opts = append(opts, kgo.ConsumeRegex())
	}
	opts = append(opts, cfg.ExtraOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	r.cl = cl
	return r, nil
}

// Client returns the underlying client (to produce side records, e.g. feedback, or for kadm).
func (r *Runner) Client() *kgo.Client { return r.cl }

// Ready reports whether Kafka is reachable: a successful fetch or a broker ping within the last
// 10 seconds (an idle topic is still ready).
func (r *Runner) Ready() bool {
	if last := r.lastOK.Load(); last != 0 && time.Since(time.Unix(0, last)) < 10*time.Second {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.cl.Ping(ctx); err != nil {
		return false
	}
	r.lastOK.Store(time.Now().UnixNano())
	return true
}

func (r *Runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	// In-flight batches are drained and committed before the poll goroutine lets a rebalance
	// through (BlockRebalanceOnPoll), so there is nothing uncommitted here to save.
	r.pmu.Lock()
	for t, ps := range revoked {
		if cur, ok := r.paused[t]; ok {
			r.paused[t] = without(cur, ps)
		}
	}
	r.pmu.Unlock()
	r.log.InfoContext(ctx, "partitions revoked", "partitions", revoked)
	if r.cfg.OnRevoke != nil {
		r.cfg.OnRevoke(ctx, revoked)
	}
}

func without(cur, drop []int32) []int32 {
	out := cur[:0]
	for _, p := range cur {
		keep := true
		for _, d := range drop {
			if p == d {
				keep = false
			}
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// Run polls and processes until ctx is cancelled or the client is closed. It returns nil on a
// clean stop. It never returns because of one bad record.
//
// Batches are pipelined: while the outputs of up to MaxInFlight handled batches are being
// produced and their offsets committed (by a committer goroutine, in order), the next batch is
// polled and handled. Before a rebalance is let through and before Run returns, the batches in
// flight are drained and committed (bounded by DrainTimeout).
func (r *Runner) Run(ctx context.Context) error {
	// The batches in hand finish after ctx is cancelled (stop polling, finish, produce, commit),
	// bounded by DrainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.cfg.DrainTimeout, cancelWork) })
	defer stop()

	cctx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { r.commitLoop(cctx) })
	defer func() {
		stopCommitter()
		wg.Wait()
	}()

	for {
		r.handleFailure(work)
		if ctx.Err() != nil {
			r.drain(work, "shutdown")
			return nil
		}
		r.maybeResume()
		if r.rebalanceWanted.Load() || r.pipe.idle() {
			r.rebalanceWanted.Store(false)
			dctx, cancel := context.WithTimeout(work, r.cfg.DrainTimeout)
			r.drain(dctx, "rebalance")
			cancel()
			r.cl.AllowRebalance()
		}
		if !r.pipe.waitSpace(work, r.cfg.MaxInFlight) {
			continue // ctx ended or a batch failed: handled at the top
		}
		pctx, pcancel := context.WithCancel(ctx)
		r.pollMu.Lock()
		r.pollCancel = pcancel
		r.pollMu.Unlock()
		if r.rebalanceWanted.Load() || r.pipe.hasFailed() {
			pcancel() // signalled before the poll could be interrupted
		}
		recs, closed := r.poll(pctx)
		r.pollMu.Lock()
		r.pollCancel = nil
		r.pollMu.Unlock()
		pcancel()
		if closed {
			r.drain(work, "client closed")
			return nil
		}
		if len(recs) > 0 {
			if err := r.process(work, recs); err != nil {
				r.drain(work, "error")
				r.cl.AllowRebalance()
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// onBlocked is franz-go's signal that a rebalance waits for AllowRebalance: stop polling so the
// poll goroutine drains the batches in flight and lets it through.
func (r *Runner) onBlocked(context.Context, *kgo.Client) {
	r.rebalanceWanted.Store(true)
	r.wakePoll()
}

// wakePoll ends the poll in progress early (its records so far are still handled).
func (r *Runner) wakePoll() {
	r.pollMu.Lock()
	if r.pollCancel != nil {
		r.pollCancel()
	}
	r.pollMu.Unlock()
}

// drain waits until every batch in flight is acked and committed, rewinding and pausing the
// partitions of a failed one; it gives up when ctx ends (the uncommitted batches are processed
// again by whoever owns the partitions next).
func (r *Runner) drain(ctx context.Context, why string) {
	for {
		if r.pipe.waitIdle(ctx) {
			return
		}
		if !r.handleFailure(ctx) {
			if n := r.pipe.inFlight(); n > 0 {
				r.log.WarnContext(ctx, "batches left uncommitted; they will be processed again", "batches", n, "reason", why)
			}
			return
		}
	}
}

// handleFailure rewinds and pauses the partitions of every batch in flight after one of them
// failed to produce. It reports whether there was a failure.
func (r *Runner) handleFailure(ctx context.Context) bool {
	first, err := r.pipe.takeFailure()
	if err == nil {
		return false
	}
	r.pauseAt(ctx, first, err)
	return true
}

// poll collects up to MaxBatch records, waiting at most BatchWait for more after the first.
func (r *Runner) poll(ctx context.Context) ([]*kgo.Record, bool) {
	var recs []*kgo.Record
	deadline := time.Time{}
	for {
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		paused, pausedUntil := r.pauseState()
		switch {
		case !deadline.IsZero():
			pctx, cancel = context.WithDeadline(ctx, deadline)
		case paused:
			// wake up to resume paused partitions even when nothing else arrives
			pctx, cancel = context.WithDeadline(ctx, pausedUntil)
		}
		fetches := r.cl.PollRecords(pctx, r.cfg.MaxBatch-len(recs))
		cancel()
		if fetches.IsClientClosed() {
			return recs, true
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			r.log.WarnContext(ctx, "fetch error", "topic", t, "partition", p, "err", err)
		})
		if len(fetches.Records()) > 0 {
			r.lastOK.Store(time.Now().UnixNano())
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				r.metrics.lag(p.Topic, p.Partition, p.HighWatermark-p.Records[n-1].Offset-1)
			}
		})
		recs = append(recs, fetches.Records()...)
		if ctx.Err() != nil || len(recs) >= r.cfg.MaxBatch || r.cfg.BatchWait <= 0 {
			return recs, false
		}
		if len(recs) == 0 {
			if paused && time.Now().After(pausedUntil) {
				return recs, false
			}
			continue
		}
		if deadline.IsZero() {
			deadline = windowEnd(time.Now(), recs, r.cfg.BatchWait, r.cfg.WaitFromRecordTime)
		}
		if time.Now().After(deadline) {
			return recs, false
		}
	}
}

// windowEnd is when a batch whose first records are recs stops waiting for more: wait after now,
// or, fromRecord, wait after the oldest record's timestamp when that is earlier.
func windowEnd(now time.Time, recs []*kgo.Record, wait time.Duration, fromRecord bool) time.Time {
	end := now.Add(wait)
	if !fromRecord {
		return end
	}
	for _, rec := range recs {
		if !rec.Timestamp.IsZero() {
			if d := rec.Timestamp.Add(wait); d.Before(end) {
				end = d
			}
		}
	}
	return end
}

// process handles one batch (handler, retries, DLQ) and hands its outputs to the producer; the
// committer goroutine commits the batch once they are acked.
func (r *Runner) process(ctx context.Context, recs []*kgo.Record) error {
	start := time.Now()
	r.metrics.in(ctx, len(recs))
	spans := r.startSpans(recs)
	submitted := false
	defer func() {
		if !submitted {
			endSpans(spans)
		}
	}()

	results, err := r.handleWithRetry(ctx, recs)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		r.pause(ctx, recs, err)
		return nil
	}

	// retry transient per-record failures on the failed subset
	attempts := make([]int, len(recs))
	for i := range attempts {
		attempts[i] = 1
	}
	for round := 1; round < r.cfg.MaxAttempts; round++ {
		var idx []int
		for i, res := range results {
			var pe *PermanentError
			if res.Err != nil && !errors.As(res.Err, &pe) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		if !sleepCtx(ctx, r.cfg.RetryBase<<(round-1)) {
			return nil
		}
		sub := make([]*kgo.Record, len(idx))
		for j, i := range idx {
			sub[j] = recs[i]
		}
		subRes, err := r.h.Handle(ctx, sub)
		if err != nil || len(subRes) != len(sub) {
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("handler returned %d results for %d records", len(subRes), len(sub))
			}
			r.pause(ctx, recs, err)
			return nil
		}
		for j, i := range idx {
			results[i] = subRes[j]
			attempts[i]++
		}
	}

	var out []*kgo.Record
	var produced, dead, filtered int
	for i, res := range results {
		if res.Err != nil {
			class := "retries_exhausted"
			var pe *PermanentError
			if errors.As(res.Err, &pe) {
				class = pe.Class
			}
			dl, derr := r.deadLetter(recs[i], class, res.Err, attempts[i])
			if derr != nil {
				return fmt.Errorf("build dead letter: %w", derr)
			}
			out = append(out, dl)
			dead++
			r.metrics.dead(ctx, class)
			continue
		}
		if len(res.Outputs) == 0 {
			filtered++
			continue
		}
		for _, o := range res.Outputs {
			if o.Context == nil && spans[i] != nil {
				o.Context = trace.ContextWithSpan(ctx, spans[i])
			}
			out = append(out, o)
		}
		produced += len(res.Outputs)
	}

	b := newBatch(recs, spans, start, produced, filtered)
	r.pipe.submit(b)
	submitted = true
	if len(out) == 0 {
		b.finish()
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ProduceTimeout)
	b.cancel = cancel
	b.pending.Store(int64(len(out)))
	for _, o := range out {
		r.cl.Produce(pctx, o, b.acked)
	}
	return nil
}

func (r *Runner) handleWithRetry(ctx context.Context, recs []*kgo.Record) ([]Result, error) {
	op := func() ([]Result, error) {
		res, err := r.h.Handle(ctx, recs)
		if err != nil {
			if errors.Is(err, ErrPause) {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		if len(res) != len(recs) {
			return nil, backoff.Permanent(fmt.Errorf("handler returned %d results for %d records", len(res), len(recs)))
		}
		return res, nil
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = r.cfg.RetryBase
	return backoff.Retry(ctx, op, backoff.WithBackOff(eb), backoff.WithMaxTries(uint(r.cfg.MaxAttempts)))
}

// pause rewinds the batch's partitions to their first record and pauses them.
func (r *Runner) pause(ctx context.Context, recs []*kgo.Record, cause error) {
	first := map[string]map[int32]kgo.EpochOffset{}
	for _, rec := range recs {
		lowerOffset(first, rec.Topic, rec.Partition, kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset})
	}
	r.pauseAt(ctx, first, cause)
}

// pauseAt rewinds the partitions to the given offsets and pauses them.
func (r *Runner) pauseAt(ctx context.Context, first map[string]map[int32]kgo.EpochOffset, cause error) {
	tps := map[string][]int32{}
	for t, ps := range first {
		for p := range ps {
			tps[t] = append(tps[t], p)
		}
	}
	r.cl.PauseFetchPartitions(tps)
	r.cl.SetOffsets(first)
	streak := r.pauseStreak.Add(1) - 1
	d := r.cfg.PauseMin << min(streak, 16)
	if d > r.cfg.PauseMax || d <= 0 {
		d = r.cfg.PauseMax
	}
	r.pmu.Lock()
	if r.paused == nil {
		r.paused = map[string][]int32{}
	}
	for t, ps := range tps {
		r.paused[t] = append(r.paused[t], ps...)
	}
	r.pausedUntil = time.Now().Add(d)
	r.pmu.Unlock()
	r.metrics.pause(ctx)
	r.log.WarnContext(ctx, "pausing partitions", "partitions", tps, "for", d.String(), "err", cause)
}

func (r *Runner) pauseState() (bool, time.Time) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	return len(r.paused) > 0, r.pausedUntil
}

func (r *Runner) maybeResume() {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if len(r.paused) == 0 || time.Now().Before(r.pausedUntil) {
		return
	}
	r.cl.ResumeFetchPartitions(r.paused)
	r.paused = nil
}

func (r *Runner) startSpans(recs []*kgo.Record) []trace.Span {
	spans := make([]trace.Span, len(recs))
	if r.cfg.Tracer == nil {
		return spans
	}
	for i, rec := range recs {
		var sp trace.Span
		rec.Context, sp = r.cfg.Tracer.WithProcessSpan(rec)
		spans[i] = sp
	}
	return spans
}

// deadLetter builds the DLQ record for an input that can never be processed.
func (r *Runner) deadLetter(rec *kgo.Record, class string, cause error, attempts int) (*kgo.Record, error) {
	prior := 0
	hs := make([]events.Header, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		if h.Key == HeaderAttempts {
			prior, _ = strconv.Atoi(string(h.Value))
		}
		hs = append(hs, events.Header{Key: h.Key, Value: h.Value})
	}
	dl := events.DeadLetter{
		Key: rec.Key, Value: rec.Value, Headers: hs, SourceTopic: rec.Topic, SourcePartition: rec.Partition,
		SourceOffset: rec.Offset, Stage: r.cfg.Stage, ErrorClass: class, Message: Redact(cause.Error()),
		Attempts: int32(prior + attempts), Time: time.Now().UTC(),
	}
	val, err := r.serde.EncodeDeadLetter(&dl)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic: r.cfg.Kafka.DLQTopic, Key: rec.Key, Value: val, Context: rec.Context,
		Headers: []kgo.RecordHeader{
			{Key: HeaderStage, Value: []byte(r.cfg.Stage)},
			{Key: HeaderErrorClass, Value: []byte(class)},
			{Key: HeaderError, Value: []byte(dl.Message)},
			{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
			{Key: HeaderAttempts, Value: []byte(strconv.Itoa(int(dl.Attempts)))},
		},
	}, nil
}

// Close flushes the producer, leaves the group and closes the client. The batches in flight are
// drained and committed before Run returns, so there is nothing left to commit here.
func (r *Runner) Close(ctx context.Context) error {
	var err error
	r.closeOnce.Do(func() {
		if ferr := r.cl.Flush(ctx); ferr != nil {
			err = fmt.Errorf("flush producer: %w", ferr)
		}
		r.cl.CloseAllowingRebalance() // leaves the group; the poll loop may still hold a blocked rebalance
	})
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
