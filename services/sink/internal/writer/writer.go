// Package writer turns verdicts into ThreatQ writes: it coalesces verdicts per indicator within a
// flush window, skips writes whose payload did not change (fingerprint), writes in batches through
// one circuit breaker with bounded retries, and isolates records ThreatQ rejects (dead letters).
//
// Usage from a Kafka batch loop (one Writer per consumer; not for concurrent Add/Flush):
//
//	for each fetched record r: w.Add(verdict(r), r)          // token: whatever identifies r
//	if w.Due() {
//		res, err := w.Flush(ctx)
//		// produce res.Dead to the DLQ, then commit offsets of res.Acked and the DLQ'd tokens
//		if err != nil { pause partitions; wait until w.Ready(); Flush again; resume }
//	}
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
)

// ErrPaused means the circuit breaker around ThreatQ is open: stop feeding the writer (pause the
// partitions), wait until Ready reports true, then Flush again. Pending verdicts are kept.
var ErrPaused = errors.New("writer: threatq paused (circuit breaker open)")

// ThreatQ is the part of the ThreatQ client the writer uses (*threatq.Client implements it).
type ThreatQ interface {
	Consume(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error)
	ConsumeWithAttributes(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error)
	ReplaceAttributes(ctx context.Context, id int64, source string, owned []string, want, current []threatq.Attribute) (threatq.AttributeChanges, error)
	SetStatus(ctx context.Context, id int64, status string) error
	SetScore(ctx context.Context, id int64, score float64) error
	Ping(ctx context.Context) error
}

// Defaults of Config.
const (
	// DefaultFlushInterval bounds the time a verdict waits for its window: short enough that
	// window + write stays well under the 2 s production→ThreatQ target, long enough that a hot
	// indicator's verdicts still coalesce into one write.
	DefaultFlushInterval = 500 * time.Millisecond
	// DefaultConcurrency is how many indicators are updated in parallel after a consume.
	DefaultConcurrency = 8
	// DefaultChunkConcurrency is how many consume batches of one flush are written in parallel.
	DefaultChunkConcurrency = 4
)

// Config configures a Writer. Zero fields take the documented defaults.
type Config struct {
	BatchSize         int               // indicators per consume call; default 500
	MaxPending        int               // verdicts (tokens) added before Due; default 10000
	FlushInterval     time.Duration     // age of the oldest pending verdict before Due; default DefaultFlushInterval
	Concurrency       int               // indicators updated in parallel after a consume; default 8
	ChunkConcurrency  int               // consume batches of one flush written in parallel; default 4
	SourceName        string            // ThreatQ source for Vigil's writes; default "Vigil"
	TLP               string            // TLP of the sources; default "AMBER"
	SourceNames       map[string]string // provider id (lower-case) → ThreatQ source name, optional
	Statuses          map[string]string // verdict action → status name; default DefaultStatuses()
	DefaultStatus     string            // for actions not in Statuses; default "Review"
	KeepStatusActions []string          // actions that never change an existing indicator's status; default [annotate]
	OwnedAttributes   []string          // extra attribute names Vigil owns (values without source info are replaced)
	// OmitAttributes are attribute names (case-insensitive) the sink never writes, e.g. the
	// telemetry counters that cost a DELETE per change; Vigil's earlier values under these names
	// are removed at the indicator's next update.
	OmitAttributes []string
	Tags           []string // tags added to every indicator
	OverrideStatus bool     // also change a status Vigil did not set (analyst's or another feed's)

	MaxAttempts     int           // per ThreatQ call, including the first; default 4
	RetryInitial    time.Duration // first backoff; default 200ms
	RetryMax        time.Duration // backoff cap; default 5s
	MaxRetryAfter   time.Duration // cap on a server Retry-After; default 60s
	BreakerFailures uint32        // consecutive failures that open the breaker; default 5
	BreakerOpenFor  time.Duration // open time before a half-open probe; default 30s
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ChunkConcurrency <= 0 {
		c.ChunkConcurrency = DefaultChunkConcurrency
	}
	if c.SourceName == "" {
		c.SourceName = "Vigil"
	}
	if c.TLP == "" {
		c.TLP = "AMBER"
	}
	if c.Statuses == nil {
		c.Statuses = DefaultStatuses()
	}
	if c.DefaultStatus == "" {
		c.DefaultStatus = "Review"
	}
	if c.KeepStatusActions == nil {
		c.KeepStatusActions = []string{events.VerdictAnnotate}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 4
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = 200 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Minute
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpenFor <= 0 {
		c.BreakerOpenFor = 30 * time.Second
	}
}

// Writer coalesces and writes verdicts. Add, Due, Len and Flush must be called from one goroutine;
// Ready and Probe may be called from any.
type Writer struct {
	cfg     Config
	omit    map[string]bool // lower-cased OmitAttributes
	tq      ThreatQ
	store   FingerprintStore
	metrics Metrics
	logger  *slog.Logger
	cb      *gobreaker.CircuitBreaker[any]
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error

	pending map[string]*entry
	seq     uint64
	tokens  int
	oldest  time.Time
}

type entry struct {
	v      events.Verdict
	seq    uint64
	token  any   // token of v
	others []any // tokens of verdicts v superseded
}

// New returns a Writer. metrics may be nil (NopMetrics).
func New(cfg Config, tq ThreatQ, store FingerprintStore, metrics Metrics, logger *slog.Logger) (*Writer, error) {
	if tq == nil || store == nil {
		return nil, errors.New("writer: threatq client and fingerprint store are required")
	}
	cfg.setDefaults()
	if metrics == nil {
		metrics = NopMetrics{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg, tq: tq, store: store, metrics: metrics, logger: logger,
		now: time.Now, sleep: sleepCtx, pending: map[string]*entry{}, omit: map[string]bool{}}
	for _, n := range cfg.OmitAttributes {
		w.omit[strings.ToLower(strings.TrimSpace(n))] = true
	}
	w.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "threatq",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		IsSuccessful: func(err error) bool {
			// Validation and not-found answers prove ThreatQ is up.
			return err == nil || errors.Is(err, threatq.ErrValidation) || errors.Is(err, threatq.ErrNotFound)
		},
		IsExcluded: func(err error) bool {
			// The caller gave up (shutdown, its own deadline): says nothing about ThreatQ.
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
				errors.Is(err, threatq.ErrUnresolved)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			logger.Warn("threatq breaker state changed", "from", from.String(), "to", to.String())
			metrics.BreakerState(to.String())
		},
	})
	return w, nil
}

// Add queues a verdict. token identifies its source record and comes back in FlushResult.
// Within the window the latest verdict per indicator wins (by DecidedAt, then arrival); the tokens
// of superseded verdicts are acknowledged with the winner.
func (w *Writer) Add(v events.Verdict, token any) {
	if w.tokens == 0 {
		w.oldest = w.now()
	}
	w.tokens++
	w.seq++
	key := v.Indicator.Key()
	e, ok := w.pending[key]
	if !ok {
		w.pending[key] = &entry{v: v, seq: w.seq, token: token}
		return
	}
	if v.DecidedAt.Before(e.v.DecidedAt) {
		e.others = append(e.others, token) // an older decision arrived late
		return
	}
	e.others = append(e.others, e.token)
	e.v, e.token = v, token
}

// Discard drops every pending verdict: their tokens are neither acknowledged nor dead-lettered.
// Use it when the caller will deliver the same records again, e.g. after a failed Flush when the
// consumer rewinds and pauses its partitions instead of keeping the verdicts in memory.
func (w *Writer) Discard() {
	w.pending = map[string]*entry{}
	w.tokens = 0
}

// Len returns the number of distinct indicators pending.
func (w *Writer) Len() int { return len(w.pending) }

// Due reports whether the window is full (MaxPending verdicts added) or old (FlushInterval).
func (w *Writer) Due() bool {
	return w.tokens >= w.cfg.MaxPending || (w.tokens > 0 && w.now().Sub(w.oldest) >= w.cfg.FlushInterval)
}

// Ready reports whether ThreatQ calls may be attempted (breaker closed or half-open).
func (w *Writer) Ready() bool { return w.cb.State() != gobreaker.StateOpen }

// BreakerState returns "closed", "half-open" or "open".
func (w *Writer) BreakerState() string { return w.cb.State().String() }

// Probe makes one cheap ThreatQ call through the breaker when it is not closed (the half-open
// probe). It returns nil when the breaker is closed afterwards, ErrPaused while it is open.
func (w *Writer) Probe(ctx context.Context) error {
	if w.cb.State() == gobreaker.StateClosed {
		return nil
	}
	_, err := w.cb.Execute(func() (any, error) { return nil, w.tq.Ping(ctx) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ErrPaused
	}
	return err
}

// DeadLetter is a verdict ThreatQ rejected; Message is ThreatQ's error text.
type DeadLetter struct {
	Token   any
	Verdict events.Verdict
	Message string
}

// FlushResult says what happened to the tokens of one Flush.
type FlushResult struct {
	Acked   []any        // written, skipped (unchanged) or superseded: commit these
	Dead    []DeadLetter // send to the DLQ, then commit
	Written int          // indicators written
	Skipped int          // indicators skipped (fingerprint unchanged)
	Calls   int          // ThreatQ calls made (including retries)
}

type item struct {
	e   *entry
	p   payload
	rec *Record // last write, nil when unknown
}

// Flush writes the pending verdicts. On success every token is in Acked or Dead. On error
// (ErrPaused, a ThreatQ outage after retries, ctx) the result still lists what was finished, and
// the rest stays pending for the next Flush; writes are idempotent upserts, so retrying is safe.
func (w *Writer) Flush(ctx context.Context) (FlushResult, error) {
	var res FlushResult
	if len(w.pending) == 0 {
		w.tokens = 0
		return res, nil
	}
	if !w.Ready() {
		return res, ErrPaused
	}
	entries := make([]*entry, 0, len(w.pending))
	for _, e := range w.pending {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *entry) int { return compareU64(a.seq, b.seq) })

	items := make([]*item, 0, len(entries))
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		p, err := w.build(e.v)
		if err != nil {
			w.dead(&res, e, err.Error())
			continue
		}
		items = append(items, &item{e: e, p: p})
		keys = append(keys, p.key)
	}
	recs, err := w.store.GetMany(ctx, keys)
	if err != nil {
		// Without fingerprints everything is rewritten: safe (upserts), only slower.
		w.logger.WarnContext(ctx, "fingerprint store unavailable, writing without skip", "err", err)
		recs = nil
	}
	toWrite := items[:0]
	for _, it := range items {
		if r, ok := recs[it.p.key]; ok {
			it.rec = &r
			if r.Fingerprint == it.p.fp {
				res.Skipped++
				w.ack(&res, it.e)
				continue
			}
		}
		toWrite = append(toWrite, it)
	}
	if res.Skipped > 0 {
		w.metrics.Skipped(res.Skipped)
	}

	// Chunks hold distinct indicators (one entry per key per window), so they are written
	// concurrently, at most ChunkConcurrency at a time; their results are merged in order.
	// Updates that replace attributes go in chunks of their own: only their consume asks
	// ThreatQ to return every attribute, and the others' answers stay small.
	var replacing, plain []*item
	for _, it := range toWrite {
		if it.rec != nil && attrsSent(it) {
			replacing = append(replacing, it)
		} else {
			plain = append(plain, it)
		}
	}
	var chunks [][]*item
	for _, list := range [][]*item{plain, replacing} {
		for start := 0; start < len(list); start += w.cfg.BatchSize {
			chunks = append(chunks, list[start:min(start+w.cfg.BatchSize, len(list))])
		}
	}
	outs := make([]chunkResult, len(chunks))
	var failed atomic.Bool
	var g errgroup.Group
	g.SetLimit(w.cfg.ChunkConcurrency)
	for i, chunk := range chunks {
		g.Go(func() error {
			if failed.Load() {
				return nil // an earlier chunk failed: this one stays pending for the next Flush
			}
			cr := &outs[i]
			cr.written = map[string]Record{}
			cr.err = w.writeChunk(ctx, chunk, cr)
			if cr.err != nil {
				failed.Store(true)
			}
			return nil
		})
	}
	_ = g.Wait() // the functions report through outs
	written := map[string]Record{}
	var flushErr error
	for i := range outs {
		cr := &outs[i]
		res.Calls += cr.calls
		res.Written += len(cr.acked)
		for _, e := range cr.acked {
			w.ack(&res, e)
		}
		for _, d := range cr.dead {
			w.dead(&res, d.e, d.msg)
		}
		for k, r := range cr.written {
			written[k] = r
		}
		if cr.err != nil && flushErr == nil {
			flushErr = cr.err
		}
	}
	if len(written) > 0 {
		if err := w.store.SetMany(ctx, written); err != nil {
			w.logger.WarnContext(ctx, "fingerprint store write failed", "err", err, "records", len(written))
		}
		w.metrics.Written(len(written))
	}
	if len(w.pending) == 0 {
		w.tokens = 0
	}
	return res, flushErr
}

// chunkResult is what one chunk's writes did; Flush merges them so that chunks can run
// concurrently without sharing the writer's state.
type chunkResult struct {
	acked   []*entry          // written: acknowledge
	dead    []chunkDead       // rejected by ThreatQ
	written map[string]Record // key → record of what was written
	calls   int               // ThreatQ calls made
	err     error             // the chunk (or part of it) could not be written; those stay pending
}

type chunkDead struct {
	e   *entry
	msg string
}

// writeChunk consumes one batch; on a validation error it splits the batch in halves until the
// offending records are isolated. The follow-up calls of the consumed indicators (attributes,
// status, score) run in parallel, at most Concurrency at a time; each indicator's own calls stay
// in order. It reports through cr only, so chunks may run concurrently.
func (w *Writer) writeChunk(ctx context.Context, chunk []*item, cr *chunkResult) error {
	ins := make([]threatq.Indicator, len(chunk))
	withAttrs := false
	for i, it := range chunk {
		ins[i] = it.p.ind
		if !attrsSent(it) {
			// Unchanged since the last write: not re-sent, so they cannot pile up.
			ins[i].Attributes = nil
		} else if it.rec != nil {
			// Probably an update that leaves stale values: have consume return the merged
			// attributes (with ids) so no read-back is needed before deleting them.
			withAttrs = true
		}
	}
	results, err := call(ctx, w, &cr.calls, "consume", func(ctx context.Context) ([]threatq.Result, error) {
		if withAttrs {
			return w.tq.ConsumeWithAttributes(ctx, ins)
		}
		return w.tq.Consume(ctx, ins)
	})
	if errors.Is(err, threatq.ErrValidation) {
		if len(chunk) == 1 {
			cr.dead = append(cr.dead, chunkDead{chunk[0].e, errText(err)})
			return nil
		}
		mid := len(chunk) / 2
		if err := w.writeChunk(ctx, chunk[:mid], cr); err != nil {
			return err
		}
		return w.writeChunk(ctx, chunk[mid:], cr)
	}
	if err != nil {
		return fmt.Errorf("consume %d indicators: %w", len(chunk), err)
	}

	type outcome struct {
		rec   Record
		calls int
		err   error
	}
	outs := make([]outcome, len(chunk))
	var g errgroup.Group
	g.SetLimit(w.cfg.Concurrency)
	for i, it := range chunk {
		g.Go(func() error {
			o := &outs[i]
			o.rec, o.err = w.finish(ctx, it, results[i], &o.calls)
			return nil
		})
	}
	_ = g.Wait() // the functions report through outs
	var firstErr error
	for i, it := range chunk {
		o := outs[i]
		cr.calls += o.calls
		switch {
		case errors.Is(o.err, threatq.ErrValidation) || errors.Is(o.err, threatq.ErrUnresolved):
			cr.dead = append(cr.dead, chunkDead{it.e, errText(o.err)})
		case o.err != nil:
			// Stays pending for the next Flush; the others are done.
			if firstErr == nil {
				firstErr = fmt.Errorf("update indicator %s: %w", it.p.key, o.err)
			}
		default:
			cr.written[it.p.key] = o.rec
			cr.acked = append(cr.acked, it.e)
		}
	}
	return firstErr
}

// attrsSent reports whether the item's attributes go with consume: always, unless the last write
// recorded the same attribute set.
func attrsSent(it *item) bool { return it.rec == nil || it.rec.AttrsFP != it.p.attrsFP }

// finish applies what consume cannot: attribute replacement, status of an existing indicator, score.
// It may run concurrently with the finish of other items; calls counts its ThreatQ calls.
func (w *Writer) finish(ctx context.Context, it *item, r threatq.Result, calls *int) (Record, error) {
	p, old := it.p, it.rec
	rec := Record{
		Fingerprint: p.fp, ThreatQID: r.ID, Status: p.ind.Status, Score: -1,
		Action: it.e.v.Action, Priority: it.e.v.Priority, AttrNames: p.attrNames, AttrsFP: p.attrsFP,
		WrittenAt: w.now().UTC(),
	}
	owned := append(append(slices.Clone(w.cfg.OwnedAttributes), w.cfg.OmitAttributes...), p.attrNames...)
	if old != nil {
		owned = append(owned, old.AttrNames...)
	}
	sent := attrsSent(it)
	current := []threatq.Attribute(nil) // nil: ReplaceAttributes reads them
	replace := false
	switch {
	case !r.Existing && !sent:
		replace, current = true, []threatq.Attribute{} // re-created after a delete: add all
	case r.Existing && (sent || old.ThreatQID != r.ID):
		// Consume appended the new values; delete Vigil's stale (and duplicate) ones.
		replace = true
		if r.AttributesKnown {
			current = r.Attributes
			if current == nil {
				current = []threatq.Attribute{}
			}
		}
	}
	if replace {
		if _, err := callVoid(ctx, w, calls, "replace attributes", func(ctx context.Context) error {
			_, err := w.tq.ReplaceAttributes(ctx, r.ID, w.cfg.SourceName, owned, p.ind.Attributes, current)
			return err
		}); err != nil {
			return Record{}, err
		}
	}
	if r.Existing {
		status, err := w.reconcileStatus(ctx, it, r, calls)
		if err != nil {
			return Record{}, err
		}
		rec.Status = status
	}
	if p.score >= 0 && (old == nil || !r.Existing || old.Score != p.score) {
		if _, err := callVoid(ctx, w, calls, "set score", func(ctx context.Context) error {
			return w.tq.SetScore(ctx, r.ID, p.score)
		}); err != nil {
			return Record{}, err
		}
	}
	switch {
	case p.score >= 0:
		rec.Score = p.score
	case old != nil && r.Existing:
		rec.Score = old.Score // a manual score Vigil set earlier stays until changed
	}
	if old != nil && r.Existing && rec.Status == old.Status && rec.Score == old.Score {
		rec.Observed = old.Observed // the analyst state last reported still stands
	}
	return rec, nil
}

// reconcileStatus decides the status of an existing indicator and returns the status Vigil owns
// afterwards ("" when none). Vigil changes a status only if it set the current one itself (so an
// analyst's decision is never overwritten) unless OverrideStatus is set.
func (w *Writer) reconcileStatus(ctx context.Context, it *item, r threatq.Result, calls *int) (string, error) {
	want, old := it.p.ind.Status, it.rec
	prev := ""
	if old != nil {
		prev = old.Status
	}
	if it.p.keep || strings.EqualFold(r.Status, want) {
		if strings.EqualFold(r.Status, want) {
			return want, nil
		}
		return prev, nil
	}
	vigilOwns := old != nil && old.Status != "" && (r.Status == "" || strings.EqualFold(r.Status, old.Status))
	if !vigilOwns && !w.cfg.OverrideStatus {
		w.logger.DebugContext(ctx, "threatq status left as set by someone else", "key", it.p.key, "status", r.Status, "wanted", want)
		return prev, nil
	}
	if _, err := callVoid(ctx, w, calls, "set status", func(ctx context.Context) error {
		return w.tq.SetStatus(ctx, r.ID, want)
	}); err != nil {
		return "", err
	}
	return want, nil
}

func (w *Writer) ack(res *FlushResult, e *entry) {
	res.Acked = append(res.Acked, e.token)
	res.Acked = append(res.Acked, e.others...)
	w.drop(e)
}

func (w *Writer) dead(res *FlushResult, e *entry, msg string) {
	res.Dead = append(res.Dead, DeadLetter{Token: e.token, Verdict: e.v, Message: msg})
	res.Acked = append(res.Acked, e.others...)
	w.metrics.DeadLettered(1)
	w.drop(e)
}

func (w *Writer) drop(e *entry) {
	delete(w.pending, e.v.Indicator.Key())
	w.tokens -= 1 + len(e.others)
	if w.tokens < 0 {
		w.tokens = 0
	}
}

// errText is ThreatQ's error text when err carries one.
func errText(err error) string {
	var ae *threatq.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// call runs one ThreatQ call through the breaker with bounded exponential backoff (jittered),
// honouring Retry-After. An open breaker yields ErrPaused without calling.
// calls counts the attempts made.
func call[T any](ctx context.Context, w *Writer, calls *int, op string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = w.cfg.RetryInitial
	bo.MaxInterval = w.cfg.RetryMax
	bo.Reset()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		out, err := w.cb.Execute(func() (any, error) { return f(ctx) })
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return zero, ErrPaused
		}
		*calls++
		w.metrics.Call(op, time.Since(start), err)
		if err == nil {
			v, _ := out.(T)
			return v, nil
		}
		if !threatq.Retryable(err) || attempt >= w.cfg.MaxAttempts || ctx.Err() != nil {
			return zero, err
		}
		wait := bo.NextBackOff()
		if ra := threatq.RetryAfter(err); ra > 0 {
			wait = min(ra, w.cfg.MaxRetryAfter)
		}
		if wait == backoff.Stop {
			return zero, err
		}
		if err := w.sleep(ctx, wait); err != nil {
			return zero, err
		}
	}
}

func callVoid(ctx context.Context, w *Writer, calls *int, op string, f func(context.Context) error) (struct{}, error) {
	return call(ctx, w, calls, op, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
