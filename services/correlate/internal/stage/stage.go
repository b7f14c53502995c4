// Package stage is correlate's stream stage: one stream.BatchHandler that
// consumes enrichments and analyst feedback and produces verdicts.
//
// Wiring (see cmd/correlate):
//
//	st, err := stage.New(stage.Config{EnrichedTopic: in, FeedbackTopic: fb, VerdictTopic: out}, corr, serde, metrics, log)
//	rcfg.Topics = []string{in, fb}
//	rcfg.ExtraOpts = append(rcfg.ExtraOpts, kgo.WithHooks(st)) // produce acks -> correlator.Ack
//	r, err := stream.NewRunner(rcfg, st, serde, log)
//
// # Acknowledging verdicts
//
// The correlator must learn that a verdict was published (Correlator.Ack)
// only after Kafka acknowledged it, or a replay of an unpublished batch would
// find the verdict already "published" and not emit it again. The runner
// produces a batch's outputs after Handle returns, so the stage watches the
// producer itself: it is a kgo.HookProduceRecordUnbuffered, and the hook
// moves each verdict record Kafka acknowledged (nil error) to a confirmed
// list. The next Handle hands that list to Correlator.Correlate, which
// stores it in the batch's one state round trip before it reads the last
// published verdicts (Correlator.Ack alone when the batch has no
// enrichment), so they are as up to date as the acknowledgements. If the
// batch fails, the list stays queued. A crash between the
// produce and the next Handle only loses the Ack: the replayed records are
// not counted twice (state dedupes on source offsets) and their verdicts are
// emitted again, which is harmless (ThreatQ writes are upserts). A verdict
// whose produce failed is never acked, and its batch is redelivered by the
// runner.
//
// The runner pipelines batches (stream.Config.MaxInFlight): Handle may run
// while earlier batches' verdicts are still being produced, so verdict
// records wait in the in-flight set until the hook answers for them, across
// Handle calls. Handle never returns a transient per-record error
// (undecodable records are permanent), so every output of a successful
// Handle is produced and answered. A verdict decided while an earlier one of
// the same indicator is still unacknowledged is compared with the last
// acknowledged one, so it may be published once more than needed.
//
// # Decay re-scoring
//
// With Config.Rescore each verdict is acked with the enrichment record it
// was decided on, which schedules its indicator for re-scoring when decay
// (or the refresh interval) may change its verdict. The Sweeper, run beside
// the runner on its client, re-scores the due indicators of the partitions
// this replica owns:
//
//	owned := stage.NewPartitions(in)
//	owned.Watch(&rcfg) // before stream.NewRunner
//	sw, err := stage.NewSweeper(stage.SweepConfig{VerdictTopic: out, Interval: time.Minute}, st, corr, r.Client(), serde, owned, metrics, log)
//	g.Go(func() error { return sw.Run(gctx) })
package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// maxUnansweredVerdicts bounds the in-flight set when the stage is not
// installed as a producer hook (a wiring mistake that is logged once).
const maxUnansweredVerdicts = 100000

// unansweredBatchesBeforeWarning is how many batches may pass with
// verdicts in flight and no produce acknowledgement before the missing
// hook is reported (well above the runner's batches in flight).
const unansweredBatchesBeforeWarning = 64

// Error classes of dead-lettered inputs.
const (
	ClassDecode   = "decode"   // the value is not the expected Avro record
	ClassFeedback = "feedback" // feedback whose indicator cannot become an allow-list entry
	ClassTopic    = "unknown_topic"
)

// Correlator is what the stage needs of *correlator.Correlator.
type Correlator interface {
	Correlate(ctx context.Context, acked []correlator.Published, batch []events.Enrichment) ([]correlator.Output, error)
	AckPublished(ctx context.Context, published []correlator.Published) error
	ApplyFeedback(ctx context.Context, fbs []correlator.FeedbackRecord) error
}

var _ Correlator = (*correlator.Correlator)(nil)

// Config names the stage's topics.
type Config struct {
	EnrichedTopic string // input: Avro Enrichment
	FeedbackTopic string // input: Avro Feedback
	VerdictTopic  string // output: Avro Verdict, keyed by indicator
	// Rescore acks each verdict with the enrichment record it was decided
	// on, so the store schedules its decay re-scoring (see Sweeper). Off,
	// nothing is scheduled.
	Rescore bool
	// Shards is how many parts of a poll batch, split by indicator key
	// (state.KeyShard), are correlated in parallel: one part's state round
	// trip overlaps another's policy evaluation. 1, 2, 4 or 8; 0 means 1.
	Shards int
}

// minShardRecords is the smallest part worth a goroutine of its own.
const minShardRecords = 32

// ErrConfig is returned by New for missing topics or dependencies.
var ErrConfig = errors.New("invalid stage config")

// Stage implements stream.BatchHandler and kgo.HookProduceRecordUnbuffered.
// Handle is called from one goroutine at a time (the runner's); the hook may
// be called from any producer goroutine.
type Stage struct {
	cfg   Config
	corr  Correlator
	serde *events.Serde
	m     *Metrics
	log   *slog.Logger

	mu         sync.Mutex
	inflight   map[*kgo.Record]correlator.Published // handed to the runner, no answer from Kafka yet
	confirmed  []correlator.Published               // acknowledged by Kafka, not yet acked to the correlator
	hookSeen   bool
	warned     bool
	unanswered int // batches with verdicts in flight before any produce acknowledgement
}

var (
	_ stream.BatchHandler             = (*Stage)(nil)
	_ kgo.HookProduceRecordUnbuffered = (*Stage)(nil)
)

// New returns a Stage. m may be nil (no metrics).
func New(cfg Config, corr Correlator, serde *events.Serde, m *Metrics, log *slog.Logger) (*Stage, error) {
	if cfg.EnrichedTopic == "" || cfg.FeedbackTopic == "" || cfg.VerdictTopic == "" || corr == nil || serde == nil || log == nil {
		return nil, fmt.Errorf("new stage: %w", ErrConfig)
	}
	switch cfg.Shards {
	case 0:
		cfg.Shards = 1
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("new stage: shards %d is not 1, 2, 4 or 8: %w", cfg.Shards, ErrConfig)
	}
	return &Stage{cfg: cfg, corr: corr, serde: serde, m: m, log: log, inflight: map[*kgo.Record]correlator.Published{}}, nil
}

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered: a
// verdict record Kafka acknowledged is queued for Correlator.Ack.
func (s *Stage) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hookSeen = true
	v, ok := s.inflight[r]
	if !ok {
		return
	}
	delete(s.inflight, r)
	if err == nil {
		s.confirmed = append(s.confirmed, v)
	}
}

// Handle implements stream.BatchHandler. Enrichments are correlated as one
// batch; each verdict is the output of the input record it was decided on
// (its indicator's last in the batch), and inputs without a verdict are
// filtered.
// Feedback records are applied to the correlator first (with their topic,
// partition and offset, so a redelivered one counts once) and produce
// nothing.
// Undecodable records are permanent failures (class "decode"). A correlator
// or state failure fails the whole batch (retried, then paused).
func (s *Stage) Handle(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
	acked := s.takeConfirmed(ctx)
	res, err := s.handle(ctx, recs, acked)
	if err != nil {
		s.requeue(acked)
		return nil, err
	}
	s.m.published(ctx, acked)
	return res, nil
}

// handle processes recs; acked are the verdicts to ack with the batch's
// state round trip (or alone when the batch has no enrichment).
func (s *Stage) handle(ctx context.Context, recs []*kgo.Record, acked []correlator.Published) ([]stream.Result, error) {
	res := make([]stream.Result, len(recs))
	// Sized for a batch of enrichments only (the usual case): an
	// Enrichment is large, and growing the slice record by record copied
	// the batch over and over.
	encs := make([]events.Enrichment, 0, len(recs))
	encRec := make([]int, 0, len(recs)) // encs[j] came from recs[encRec[j]]
	var (
		fbs   []correlator.FeedbackRecord
		fbRec []int
	)
	for i, r := range recs {
		switch r.Topic {
		case s.cfg.EnrichedTopic:
			e, err := s.serde.DecodeEnrichment(ctx, r.Value)
			if err != nil {
				res[i].Err = stream.Permanent(ClassDecode, err)
				continue
			}
			encs = append(encs, e)
			encRec = append(encRec, i)
		case s.cfg.FeedbackTopic:
			fb, err := s.serde.DecodeFeedback(ctx, r.Value)
			if err != nil {
				res[i].Err = stream.Permanent(ClassDecode, err)
				continue
			}
			fbs = append(fbs, correlator.FeedbackRecord{Feedback: fb, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
			fbRec = append(fbRec, i)
		default:
			res[i].Err = stream.Permanent(ClassTopic, fmt.Errorf("topic %q is neither enrichments nor feedback", r.Topic))
		}
	}

	// Feedback first, so an enrichment in the same batch already meets the
	// analyst's decision. A failure later in the batch redelivers it; the
	// correlator counts each feedback record once (by topic, partition and
	// offset).
	if len(fbs) > 0 {
		err := s.corr.ApplyFeedback(ctx, fbs)
		var fe *correlator.FeedbackError
		switch {
		case errors.As(err, &fe):
			for k, j := range fe.Indexes {
				res[fbRec[j]].Err = stream.Permanent(ClassFeedback, fe.Errs[k])
			}
		case err != nil:
			return nil, fmt.Errorf("apply feedback: %w", err)
		}
	}
	outs, err := s.correlate(ctx, acked, encs)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return res, nil
	}

	produced := make(map[*kgo.Record]correlator.Published, len(outs))
	for k := range outs {
		v := &outs[k].Verdict
		out := &kgo.Record{Topic: s.cfg.VerdictTopic, Key: []byte(v.Indicator.Key()), Value: outs[k].value}
		i := encRec[outs[k].Record]
		res[i].Outputs = append(res[i].Outputs, out)
		pub := correlator.Published{Verdict: *v}
		if s.cfg.Rescore {
			// a copy: the record's value may share the fetch buffer of its whole batch
			pub.Enrichment, pub.Partition, pub.LastObserved = bytes.Clone(recs[i].Value), recs[i].Partition, outs[k].LastObserved
		}
		produced[out] = pub
	}
	s.mu.Lock()
	maps.Copy(s.inflight, produced)
	s.mu.Unlock()
	return res, nil
}

// decided is a verdict to publish with its Avro value; Record indexes the
// batch's enrichments.
type decided struct {
	correlator.Output
	value []byte
}

// correlate decides and encodes the verdicts of encs (acked is stored
// first, see Correlator.Correlate), in cfg.Shards parts run in parallel when
// the batch is large enough. Parts split by indicator key, so an
// indicator's records and its acked verdicts are in one part, and parts
// never touch the same state. The result is in record order.
func (s *Stage) correlate(ctx context.Context, acked []correlator.Published, encs []events.Enrichment) ([]decided, error) {
	n := s.cfg.Shards
	if n <= 1 || len(encs) < n*minShardRecords {
		return s.correlatePart(ctx, acked, encs, nil)
	}
	type part struct {
		acked []correlator.Published
		encs  []events.Enrichment
		index []int // encs[j] is the batch's enrichment index[j]
		out   []decided
	}
	parts := make([]part, n)
	for j := range encs {
		p := &parts[state.KeyShard(encs[j].Observation.Indicator.Key())%n]
		p.encs = append(p.encs, encs[j])
		p.index = append(p.index, j)
	}
	for j := range acked {
		p := &parts[state.KeyShard(acked[j].Verdict.Indicator.Key())%n]
		p.acked = append(p.acked, acked[j])
	}
	var g errgroup.Group
	for k := range parts {
		p := &parts[k]
		if len(p.encs) == 0 && len(p.acked) == 0 {
			continue
		}
		g.Go(func() (err error) {
			p.out, err = s.correlatePart(ctx, p.acked, p.encs, p.index)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var outs []decided
	for k := range parts {
		outs = append(outs, parts[k].out...)
	}
	slices.SortFunc(outs, func(a, b decided) int { return a.Record - b.Record })
	return outs, nil
}

// correlatePart runs Correlate on one part and encodes its verdicts; index,
// when not nil, maps the part's records to the batch's.
func (s *Stage) correlatePart(ctx context.Context, acked []correlator.Published, encs []events.Enrichment, index []int) ([]decided, error) {
	outs, err := s.corr.Correlate(ctx, acked, encs)
	if err != nil {
		return nil, fmt.Errorf("correlate: %w", err)
	}
	ds := make([]decided, len(outs))
	for k := range outs {
		j := outs[k].Record
		if j < 0 || j >= len(encs) {
			return nil, fmt.Errorf("verdict for %s matches no input record", outs[k].Verdict.Indicator.Key())
		}
		val, err := s.serde.EncodeVerdict(&outs[k].Verdict)
		if err != nil {
			return nil, fmt.Errorf("encode verdict %s: %w", outs[k].Verdict.Indicator.Key(), err) // our own schema mapping: never drop
		}
		if index != nil {
			outs[k].Record = index[j]
		}
		ds[k] = decided{Output: outs[k], value: val}
	}
	return ds, nil
}

// ackConfirmed hands the verdicts Kafka acknowledged since the last call to
// the correlator and counts them. On error they stay queued.
func (s *Stage) ackConfirmed(ctx context.Context) error {
	vs := s.takeConfirmed(ctx)
	if len(vs) == 0 {
		return nil
	}
	if err := s.corr.AckPublished(ctx, vs); err != nil {
		s.requeue(vs)
		return fmt.Errorf("ack published verdicts: %w", err)
	}
	s.m.published(ctx, vs)
	return nil
}

// requeue puts verdicts whose ack failed back in front of the queue.
func (s *Stage) requeue(vs []correlator.Published) {
	if len(vs) == 0 {
		return
	}
	s.mu.Lock()
	s.confirmed = append(vs, s.confirmed...)
	s.mu.Unlock()
}

// takeConfirmed returns and clears the verdicts Kafka acknowledged since
// the last call.
func (s *Stage) takeConfirmed(ctx context.Context) []correlator.Published {
	s.mu.Lock()
	vs := s.confirmed
	s.confirmed = nil
	if len(s.inflight) > 0 && !s.hookSeen {
		// the runner keeps a few batches in flight, so the first acks can
		// arrive several batches after the first verdicts: warn only when
		// none came for longer than any pipeline depth
		s.unanswered++
	}
	if s.unanswered > unansweredBatchesBeforeWarning && !s.warned {
		s.warned = true
		s.log.WarnContext(ctx, "no produce acknowledgement seen for verdicts: is the stage installed as a kgo hook? verdicts are not acked")
	}
	if !s.hookSeen && len(s.inflight) > maxUnansweredVerdicts {
		clear(s.inflight) // no hook: nobody will answer for them
	}
	s.mu.Unlock()
	return vs
}

// Flush acks the verdicts Kafka confirmed after the last Handle: call it
// once after the runner stopped (best effort: a verdict not acked is
// emitted again after a restart). It is safe while the runner runs (the
// decay Sweeper calls it before each sweep, so that an idle stream's last
// verdicts are acked and scheduled): a batch handled meanwhile may miss
// those acks and publish a verdict once more than needed, as with verdicts
// still in flight.
func (s *Stage) Flush(ctx context.Context) error { return s.ackConfirmed(ctx) }
