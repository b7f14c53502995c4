package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// Flusher acks the verdicts Kafka confirmed since the stream's last batch
// (*Stage satisfies it).
type Flusher interface {
	Flush(ctx context.Context) error
}

var _ Flusher = (*Stage)(nil)

// Rescorer is what the Sweeper needs of *correlator.Correlator.
type Rescorer interface {
	Rescore(ctx context.Context, dec correlator.EnrichmentDecoder, partitions []int32, limit int) (correlator.Rescored, error)
	AckPublished(ctx context.Context, published []correlator.Published) error
	PutBack(ctx context.Context, claims []state.Due) error
}

var _ Rescorer = (*correlator.Correlator)(nil)

// Partitions tracks the input partitions this replica's consumer owns, fed
// by the group's assignment callbacks (kgo.OnPartitionsAssigned and
// stream.Config.OnRevoke, which also covers lost partitions). Safe for
// concurrent use.
type Partitions struct {
	topic string
	mu    sync.Mutex
	owned map[int32]bool
}

// NewPartitions tracks the partitions of topic.
func NewPartitions(topic string) *Partitions {
	return &Partitions{topic: topic, owned: map[int32]bool{}}
}

// Watch feeds p from the consumer group of the runner cfg configures:
// kgo.OnPartitionsAssigned, appended to cfg.ExtraOpts (the runner sets no
// assignment callback of its own), and cfg.OnRevoke, which runs p's before
// the one already set.
func (p *Partitions) Watch(cfg *stream.Config) {
	cfg.ExtraOpts = append(cfg.ExtraOpts, kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
		p.Assigned(assigned)
	}))
	prev := cfg.OnRevoke
	cfg.OnRevoke = func(ctx context.Context, revoked map[string][]int32) {
		p.Revoked(revoked)
		if prev != nil {
			prev(ctx, revoked)
		}
	}
}

// Assigned adds the partitions of the tracked topic in assigned.
func (p *Partitions) Assigned(assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range assigned[p.topic] {
		p.owned[n] = true
	}
}

// Revoked removes the partitions of the tracked topic in revoked.
func (p *Partitions) Revoked(revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range revoked[p.topic] {
		delete(p.owned, n)
	}
}

// List returns the owned partitions in ascending order.
func (p *Partitions) List() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int32, 0, len(p.owned))
	for n := range p.owned {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// storeTimeout bounds the store calls that finish a claimed batch after
// its produce (ack, put back).
const storeTimeout = 10 * time.Second

// SweepConfig tunes a Sweeper.
type SweepConfig struct {
	// VerdictTopic is where re-scored verdicts are published (keyed by
	// indicator, like the stage's).
	VerdictTopic string
	// Interval is the time between sweeps; 0 disables the sweeper.
	Interval time.Duration
	// Batch is how many due indicators one store call claims (default 500).
	Batch int
	// ProduceTimeout bounds the publication of one batch (default 30s).
	ProduceTimeout time.Duration
}

// Sweeper re-scores published verdicts whose indicators were not sighted
// again: decay lowers their priority over time, and the refresh interval
// asks for a republication, but the stream path only evaluates an
// indicator when a sighting arrives. Every Interval the sweeper claims the
// due indicators of the input partitions this replica owns
// (Correlator.Rescore), publishes the verdicts that changed through the
// service's Kafka client, acks them (which reschedules them) and puts back
// the claims whose publication failed.
//
// Ordering: the sweeper runs beside the stream handler. It only sweeps
// partitions this replica consumes, and skips an indicator sighted since
// its verdict, so a decayed verdict and a stream verdict of one indicator
// only cross when a sighting is applied between the sweeper's read of the
// state and its produce (milliseconds): the stream's verdict may then be
// published first and overwritten by the decayed one, until the next
// sighting or review publishes again. Across a rebalance, a sweep in
// progress may finish a partition that was just revoked (the new owner's
// first sweep finds the claims leased and skips them).
type Sweeper struct {
	cfg    SweepConfig
	stage  Flusher
	corr   Rescorer
	client *kgo.Client
	serde  *events.Serde
	owned  *Partitions
	m      *Metrics
	log    *slog.Logger
}

// NewSweeper returns a Sweeper producing through client (the runner's).
// Before each sweep it flushes stage, so that the verdicts of an idle
// stream's last batch, which wait for the next batch to be acked, are acked
// and scheduled; stage and m may be nil.
func NewSweeper(cfg SweepConfig, stage Flusher, corr Rescorer, client *kgo.Client, serde *events.Serde, owned *Partitions, m *Metrics, log *slog.Logger) (*Sweeper, error) {
	if cfg.VerdictTopic == "" || cfg.Interval < 0 || cfg.Batch < 0 || corr == nil || client == nil || serde == nil || owned == nil || log == nil {
		return nil, fmt.Errorf("new sweeper: %w", ErrConfig)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 500
	}
	if cfg.ProduceTimeout <= 0 {
		cfg.ProduceTimeout = 30 * time.Second
	}
	return &Sweeper{cfg: cfg, stage: stage, corr: corr, client: client, serde: serde, owned: owned, m: m, log: log}, nil
}

// Run sweeps every Interval until ctx ends and returns nil; with Interval
// 0 it returns at once. A failed sweep is logged and tried again at the
// next tick (its claims come back when their lease ends).
func (s *Sweeper) Run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		return nil
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "decay sweep", "err", err)
			}
		}
	}
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Claimed    int // due indicators claimed
	Rescored   int // evaluated again without a new sighting
	Reemitted  int // verdicts published and acked
	Skipped    int // sighted since their verdict (left to the stream path)
	Dropped    int // removed from the schedule (state expired, …)
	PutBack    int // verdicts whose produce failed: claims due again
	Partitions int // owned partitions swept
}

// Sweep first flushes the stage's confirmed verdicts, then claims and
// re-scores due indicators, batch after batch, until
// fewer than a batch are due or a publication fails, and logs a summary
// when it did anything. A batch that was claimed is finished even when ctx
// ends (bounded by ProduceTimeout).
func (s *Sweeper) Sweep(ctx context.Context) (SweepResult, error) {
	start := time.Now()
	parts := s.owned.List()
	res := SweepResult{Partitions: len(parts)}
	if s.stage != nil {
		if err := s.stage.Flush(ctx); err != nil {
			return res, err
		}
	}
	var err error
	for len(parts) > 0 && ctx.Err() == nil {
		var claimed int
		claimed, err = s.round(ctx, parts, &res)
		if err != nil || claimed < s.cfg.Batch || res.PutBack > 0 {
			break
		}
	}
	if res.Claimed > 0 {
		s.log.InfoContext(ctx, "decay sweep", "claimed", res.Claimed, "rescored", res.Rescored, "reemitted", res.Reemitted,
			"skipped", res.Skipped, "dropped", res.Dropped, "put_back", res.PutBack, "partitions", res.Partitions,
			"duration_ms", time.Since(start).Milliseconds())
	}
	return res, err
}

// round claims one batch, publishes what changed and acks it.
func (s *Sweeper) round(ctx context.Context, parts []int32, res *SweepResult) (int, error) {
	rs, err := s.corr.Rescore(ctx, s.serde, parts, s.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("rescore: %w", err)
	}
	res.Claimed += rs.Claimed
	res.Rescored += rs.Rescored
	res.Skipped += rs.Skipped
	res.Dropped += rs.Dropped
	s.m.rescored(ctx, rs)
	if len(rs.Publish) == 0 {
		return rs.Claimed, nil
	}
	// the claimed batch is finished even if ctx ends: published verdicts
	// are acked and failed ones put back (else they wait for their lease)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProduceTimeout+storeTimeout)
	defer cancel()
	pctx, pcancel := context.WithTimeout(wctx, s.cfg.ProduceTimeout)
	defer pcancel()
	recs := make([]*kgo.Record, len(rs.Publish))
	index := make(map[*kgo.Record]int, len(recs))
	for i := range rs.Publish {
		v := &rs.Publish[i].Verdict
		val, err := s.serde.EncodeVerdict(v)
		if err != nil {
			return rs.Claimed, errors.Join(fmt.Errorf("encode verdict %s: %w", v.Indicator.Key(), err), s.corr.PutBack(wctx, rs.Claims))
		}
		recs[i] = &kgo.Record{Topic: s.cfg.VerdictTopic, Key: []byte(v.Indicator.Key()), Value: val}
		index[recs[i]] = i
	}
	var ok []correlator.Published
	var failed []state.Due
	var produceErr error
	for _, r := range s.client.ProduceSync(pctx, recs...) {
		i := index[r.Record]
		if r.Err != nil {
			failed = append(failed, rs.Claims[i])
			produceErr = r.Err
			continue
		}
		ok = append(ok, rs.Publish[i])
	}
	var errs []error
	if len(ok) > 0 {
		if err := s.corr.AckPublished(wctx, ok); err != nil {
			// published, not acked: the claims come back when their lease
			// ends and the verdicts are published again
			errs = append(errs, fmt.Errorf("ack re-scored verdicts: %w", err))
		} else {
			res.Reemitted += len(ok)
			s.m.reemitted(ctx, len(ok))
			s.m.published(ctx, ok)
		}
	}
	if len(failed) > 0 {
		res.PutBack += len(failed)
		errs = append(errs, fmt.Errorf("publish %d re-scored verdicts: %w", len(failed), produceErr), s.corr.PutBack(wctx, failed))
	}
	return rs.Claimed, errors.Join(errs...)
}
