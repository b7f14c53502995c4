// Package stage is the sink's batch handler: one Handle call is one flush window of verdicts
// written to ThreatQ through the writer. It also publishes analysts' feedback to Kafka and serves
// the sink's debug view.
//
// Contract with the runner (pkg/stream): the runner is configured with MaxBatch = flush max and
// BatchWait = flush interval, counted from the oldest record's timestamp (WaitFromRecordTime), so
// a poll batch is a flush window and a backlog is flushed without waiting again.
//   - A verdict ThreatQ acknowledged (written, unchanged, or superseded by a newer verdict for the
//     same indicator in the window) is done: a Result with no outputs and no error.
//   - A verdict ThreatQ rejects (HTTP 400) gets stream.Permanent("threatq_validation", ThreatQ's
//     text) and goes to the dead-letter topic; an undecodable record gets class "decode".
//   - When ThreatQ is unavailable (breaker open, outage after retries, auth failure) the writer's
//     pending verdicts are discarded and Handle returns an error wrapping stream.ErrPause: the
//     runner rewinds, pauses and re-delivers the same records later. Nothing is committed before
//     ThreatQ acknowledged, and at most one window of verdicts is held in memory.
package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

// Dead-letter classes the stage assigns.
const (
	ClassDecode     = "decode"
	ClassValidation = "threatq_validation"
)

// ErrNotAcknowledged marks a verdict the writer returned neither as acknowledged nor as dead
// (it should not happen); the runner retries such records.
var ErrNotAcknowledged = errors.New("sink: verdict not acknowledged by the writer")

// Writer is the part of *writer.Writer the stage uses. Add, Flush and Discard are called from the
// Handle goroutine only; Ready and BreakerState may be called from any goroutine.
type Writer interface {
	Add(v events.Verdict, token any)
	Flush(ctx context.Context) (writer.FlushResult, error)
	Discard()
	Ready() bool
	BreakerState() string
}

// Decoder decodes verdict record values (*events.Serde implements it).
type Decoder interface {
	DecodeVerdict(ctx context.Context, b []byte) (events.Verdict, error)
}

// Recorder receives the stage's own measurements (*Metrics implements it).
type Recorder interface {
	TriageLatency(d time.Duration)
}

// FlushStats describes one flush window (the last one is served by the debug handler).
type FlushStats struct {
	At         time.Time `json:"at"`
	Records    int       `json:"records"`
	Verdicts   int       `json:"verdicts"`
	Decode     int       `json:"decode_errors"`
	Acked      int       `json:"acked"`
	Written    int       `json:"written"`
	Skipped    int       `json:"skipped"`
	Dead       int       `json:"dead"`
	Calls      int       `json:"threatq_calls"`
	DurationMS int64     `json:"duration_ms"`
	Paused     bool      `json:"paused"`
	Err        string    `json:"error,omitempty"`
}

// Stage is the sink's stream.BatchHandler.
type Stage struct {
	w   Writer
	dec Decoder
	rec Recorder
	log *slog.Logger
	now func() time.Time

	pending atomic.Int64 // verdicts handed to the writer and not yet flushed
	flushes atomic.Int64
	pauses  atomic.Int64

	mu   sync.Mutex
	last *FlushStats
}

// New returns a Stage. rec may be nil.
func New(w Writer, dec Decoder, rec Recorder, log *slog.Logger) *Stage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{w: w, dec: dec, rec: rec, log: log, now: time.Now}
}

var _ stream.BatchHandler = (*Stage)(nil)

// Handle writes one window of verdicts to ThreatQ. See the package documentation for the
// contract; it returns exactly one Result per record.
func (s *Stage) Handle(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
	if !s.w.Ready() {
		// Breaker open: do not even decode; the runner rewinds and re-delivers later.
		s.pauses.Add(1)
		return nil, fmt.Errorf("threatq breaker open: %w", stream.ErrPause)
	}
	start := s.now()
	st := FlushStats{At: start, Records: len(recs)}
	results := make([]stream.Result, len(recs))
	verdicts := make([]events.Verdict, len(recs))
	for i, r := range recs {
		v, err := s.dec.DecodeVerdict(ctx, r.Value)
		if err != nil {
			results[i].Err = stream.Permanent(ClassDecode, err)
			st.Decode++
			continue
		}
		verdicts[i] = v
		s.w.Add(v, i)
		results[i].Err = ErrNotAcknowledged // until the writer says otherwise
		st.Verdicts++
	}
	if st.Verdicts == 0 {
		s.record(st, start)
		return results, nil
	}
	s.pending.Store(int64(st.Verdicts))
	res, err := s.w.Flush(ctx)
	st.Written, st.Skipped, st.Calls, st.Dead = res.Written, res.Skipped, res.Calls, len(res.Dead)
	if err != nil {
		// The runner re-delivers the whole window after the pause: keep nothing.
		s.w.Discard()
		s.pending.Store(0)
		s.pauses.Add(1)
		st.Paused, st.Err = true, err.Error()
		s.record(st, start)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("flush: %w", ctx.Err())
		}
		return nil, fmt.Errorf("flush to threatq: %w: %w", stream.ErrPause, err)
	}
	s.pending.Store(0)
	ackedAt := s.now()
	for _, tok := range res.Acked {
		i, ok := tok.(int)
		if !ok || i < 0 || i >= len(results) {
			continue
		}
		results[i].Err = nil
		st.Acked++
		if s.rec != nil && !verdicts[i].EventTime.IsZero() {
			s.rec.TriageLatency(ackedAt.Sub(verdicts[i].EventTime))
		}
	}
	for _, d := range res.Dead {
		i, ok := d.Token.(int)
		if !ok || i < 0 || i >= len(results) {
			continue
		}
		results[i].Err = stream.Permanent(ClassValidation, errors.New(d.Message))
	}
	s.record(st, start)
	return results, nil
}

func (s *Stage) record(st FlushStats, start time.Time) {
	st.DurationMS = s.now().Sub(start).Milliseconds()
	s.flushes.Add(1)
	s.mu.Lock()
	s.last = &st
	s.mu.Unlock()
	s.log.Debug("flush window", "records", st.Records, "written", st.Written, "skipped", st.Skipped,
		"dead", st.Dead, "calls", st.Calls, "paused", st.Paused)
}

// Debug is the sink's state as the debug handler serves it.
type Debug struct {
	Breaker   string      `json:"breaker"`
	Pending   int64       `json:"pending"`
	Flushes   int64       `json:"flushes"`
	Pauses    int64       `json:"pauses"`
	LastFlush *FlushStats `json:"last_flush,omitempty"`
}

// Debug returns the current state; safe to call from any goroutine.
func (s *Stage) Debug() Debug {
	d := Debug{Breaker: s.w.BreakerState(), Pending: s.pending.Load(), Flushes: s.flushes.Load(), Pauses: s.pauses.Load()}
	s.mu.Lock()
	if s.last != nil {
		l := *s.last
		d.LastFlush = &l
	}
	s.mu.Unlock()
	return d
}

// DebugHandler serves Debug as JSON (mounted at /debug/sink on the ops server).
func (s *Stage) DebugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Debug())
	})
}
