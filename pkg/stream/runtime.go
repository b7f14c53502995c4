package stream

import (
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
	Stage          string // ingest, enrich, correlate, sink: names the DLQ stage and metrics
	Group          string
	Topics         []string
	TopicRegex     bool // Topics are regular expressions
	Kafka          KafkaConfig
	MaxBatch       int           // records per handled batch (default 500)
	BatchWait      time.Duration // keep polling until MaxBatch or BatchWait (default 0: one poll)
	MaxAttempts    int           // attempts for a transiently failing record before the DLQ (default 5)
	RetryBase      time.Duration // first retry delay (default 100ms)
	PauseMin       time.Duration // first pause (default 500ms), doubling to PauseMax
	PauseMax       time.Duration // default 30s
	ProduceTimeout time.Duration // bound on waiting for produce acks (default 30s)
	DrainTimeout   time.Duration // after shutdown starts, time left to finish the batch in hand (default 20s)
	ExtraOpts      []kgo.Opt     // e.g. kotel hooks
	Tracer         *kotel.Tracer // optional: a process span per record, parent of its outputs
	Metrics        *Metrics      // optional
	// OnRevoke is called (from the poll goroutine, between batches) when partitions are revoked or lost.
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
}

// Runner is one consumer group member running a BatchHandler.
type Runner struct {
	cfg     Config
	h       BatchHandler
	serde   *events.Serde
	log     *slog.Logger
	cl      *kgo.Client
	metrics *Metrics

	pausedUntil time.Time
	paused      map[string][]int32
	pauseStreak int

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
		kgo.FetchMaxWait(250*time.Millisecond),
		// bound what sits in fetch buffers (memory target per service); one batch is at most
		// MaxBatch records anyway
		kgo.FetchMaxBytes(16<<20),
		kgo.FetchMaxPartitionBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(4*cfg.MaxBatch+1000),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 on the key: one indicator, one partition
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onRevoked),
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
	// Batches are committed before the poll goroutine lets a rebalance through
	// (BlockRebalanceOnPoll), so there is nothing uncommitted here to save.
	for t, ps := range revoked {
		if cur, ok := r.paused[t]; ok {
			r.paused[t] = without(cur, ps)
		}
	}
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
func (r *Runner) Run(ctx context.Context) error {
	// The batch in hand finishes after ctx is cancelled (stop polling, finish, produce, commit),
	// bounded by DrainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.cfg.DrainTimeout, cancelWork) })
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		r.maybeResume()
		recs, closed := r.poll(ctx)
		if closed {
			return nil
		}
		if len(recs) > 0 {
			if err := r.process(work, recs); err != nil {
				r.cl.AllowRebalance()
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		r.cl.AllowRebalance()
	}
}

// poll collects up to MaxBatch records, waiting at most BatchWait for more after the first.
func (r *Runner) poll(ctx context.Context) ([]*kgo.Record, bool) {
	var recs []*kgo.Record
	deadline := time.Time{}
	for {
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		switch {
		case !deadline.IsZero():
			pctx, cancel = context.WithDeadline(ctx, deadline)
		case len(r.paused) > 0:
			// wake up to resume paused partitions even when nothing else arrives
			pctx, cancel = context.WithDeadline(ctx, r.pausedUntil)
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
			if len(r.paused) > 0 && time.Now().After(r.pausedUntil) {
				return recs, false
			}
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(r.cfg.BatchWait)
		}
		if time.Now().After(deadline) {
			return recs, false
		}
	}
}

// process handles one batch: handler, retries, DLQ, produce, commit.
func (r *Runner) process(ctx context.Context, recs []*kgo.Record) error {
	start := time.Now()
	r.metrics.in(ctx, len(recs))
	spans := r.startSpans(recs)
	defer func() {
		for _, s := range spans {
			if s != nil {
				s.End()
			}
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

	if len(out) > 0 {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ProduceTimeout)
		perr := r.cl.ProduceSync(pctx, out...).FirstErr()
		cancel()
		if perr != nil {
			// nothing committed: rewind and try the batch again after a pause
			r.pause(ctx, recs, fmt.Errorf("produce: %w", perr))
			return nil
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ProduceTimeout)
	cerr := r.cl.CommitRecords(cctx, recs...)
	cancel()
	if cerr != nil {
		// Outputs are acknowledged; a failed commit means the batch may be processed again
		// (duplicates are harmless by design), never skipped.
		r.log.WarnContext(ctx, "commit failed; batch may be re-processed", "err", cerr)
	}
	r.pauseStreak = 0
	r.metrics.done(ctx, produced, filtered, time.Since(start))
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
	tps := map[string][]int32{}
	for _, rec := range recs {
		ps := first[rec.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			first[rec.Topic] = ps
		}
		if cur, ok := ps[rec.Partition]; !ok || rec.Offset < cur.Offset {
			ps[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}
		}
	}
	for t, ps := range first {
		for p := range ps {
			tps[t] = append(tps[t], p)
		}
	}
	r.cl.PauseFetchPartitions(tps)
	r.cl.SetOffsets(first)
	d := r.cfg.PauseMin << min(r.pauseStreak, 16)
	if d > r.cfg.PauseMax || d <= 0 {
		d = r.cfg.PauseMax
	}
	r.pauseStreak++
	if r.paused == nil {
		r.paused = map[string][]int32{}
	}
	for t, ps := range tps {
		r.paused[t] = append(r.paused[t], ps...)
	}
	r.pausedUntil = time.Now().Add(d)
	r.metrics.pause(ctx)
	r.log.WarnContext(ctx, "pausing partitions", "partitions", tps, "for", d.String(), "err", cause)
}

func (r *Runner) maybeResume() {
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

// Close flushes the producer, leaves the group and closes the client. Every batch is committed
// before Run returns, so there is nothing left to commit here.
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
