package correlator

import (
	"context"
	"fmt"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// EnrichmentDecoder decodes a stored enrichment; *events.Serde satisfies it.
type EnrichmentDecoder interface {
	DecodeEnrichment(ctx context.Context, b []byte) (events.Enrichment, error)
}

var _ EnrichmentDecoder = (*events.Serde)(nil)

// Rescored is the outcome of one Rescore call.
type Rescored struct {
	// Claimed is how many due indicators were claimed.
	Claimed int
	// Publish are the verdicts to publish: produce each, keyed by its
	// indicator, then AckPublished those Kafka acknowledged (which
	// reschedules them) and PutBack the claims of the others.
	Publish []Published
	// Claims holds the claim of each verdict of Publish, at the same index.
	Claims []state.Due
	// Rescored counts the indicators evaluated again (published or
	// rescheduled).
	Rescored int
	// Skipped counts the indicators sighted since their verdict: the stream
	// path evaluates them; they were rescheduled from the new sighting.
	Skipped int
	// Dropped counts the claims dropped from the schedule: the indicator's
	// state, stored enrichment or last verdict expired, the enrichment no
	// longer decodes, or the indicator moved to another input partition.
	Dropped int
}

// Rescore evaluates again, without a new sighting, up to limit indicators
// of the input partitions whose decay review is due (see
// state.DecayStore), with the enrichment stored with their last published
// verdict, their sightings summary and analyst allow entry as they are now,
// and the policy in force at the correlator's now:
//
//   - an indicator sighted since its verdict is skipped: the stream path
//     evaluates its new sighting; it is rescheduled from that sighting;
//   - when policy.ShouldEmit says so (the level or action changed, mostly
//     because decay lowered the priority, or the refresh interval passed),
//     the verdict is returned in Publish, with a decay reason when decay
//     applied, PreviousPriority set and a new ValidUntil;
//   - otherwise the indicator is rescheduled at the policy's NextReview.
//
// It costs three store round trips (claim, load, reschedule). On error
// nothing is to be published, and the claimed indicators come back when
// their claims' lease ends (state.ClaimLease).
func (c *Correlator) Rescore(ctx context.Context, dec EnrichmentDecoder, partitions []int32, limit int) (Rescored, error) {
	var res Rescored
	due, err := c.store.ClaimDue(ctx, partitions, limit)
	if err != nil || len(due) == 0 {
		return res, err
	}
	res.Claimed = len(due)
	pend, err := c.store.LoadDue(ctx, due)
	if err != nil {
		return Rescored{}, fmt.Errorf("rescore: %w", err)
	}
	if len(pend) != len(due) {
		return Rescored{}, fmt.Errorf("rescore: %w", errStoreReply)
	}
	p := c.policy.Load()
	now := c.now()
	var rs []state.Rescheduled
	for i := range pend {
		pd := &pend[i]
		if !pd.HasReview || !pd.HasState || !pd.Prior.HasVerdict || pd.Review.Partition != pd.Partition {
			rs = append(rs, state.Rescheduled{Due: pd.Due})
			res.Dropped++
			continue
		}
		e, err := dec.DecodeEnrichment(ctx, pd.Review.Enrichment)
		if err != nil {
			c.log.WarnContext(ctx, "decay review dropped: stored enrichment does not decode", "indicator", pd.Key, "err", err)
			rs = append(rs, state.Rescheduled{Due: pd.Due})
			res.Dropped++
			continue
		}
		prev := previous(pd.Prior.Verdict)
		lastObserved := pd.Review.LastObserved
		sighted := pd.Summary.LastObserved.UnixMilli() > lastObserved.UnixMilli()
		if sighted {
			lastObserved = pd.Summary.LastObserved
		}
		v, in := decide(p, c.lists, c.assets, &e, pd.Summary, &prev, pd.Prior.Allow, now)
		if !sighted && p.ShouldEmit(v, &prev) {
			explain(p, in, &v, pd.Prior.Allow)
			res.Rescored++
			res.Publish = append(res.Publish, Published{Verdict: v, Enrichment: pd.Review.Enrichment, Partition: pd.Partition, LastObserved: lastObserved})
			res.Claims = append(res.Claims, pd.Due)
			continue
		}
		next, _ := p.NextReview(policy.Review{Score: p.ReviewScore(&v), Priority: v.Priority, LastObserved: lastObserved, EmittedAt: prev.EmittedAt, Now: now})
		r := state.Rescheduled{Due: pd.Due, Next: next}
		if sighted {
			r.LastObserved = lastObserved
			res.Skipped++
		} else {
			res.Rescored++
		}
		rs = append(rs, r)
	}
	if err := c.store.Reschedule(ctx, rs); err != nil {
		return Rescored{}, fmt.Errorf("rescore: %w", err)
	}
	return res, nil
}

// PutBack returns claims whose verdicts could not be published to the
// schedule, due at once (one store round trip). A claim whose indicator was
// published meanwhile keeps that publication's schedule.
func (c *Correlator) PutBack(ctx context.Context, claims []state.Due) error {
	if len(claims) == 0 {
		return nil
	}
	rs := make([]state.Rescheduled, len(claims))
	for i, d := range claims {
		rs[i] = state.Rescheduled{Due: d, Next: d.At}
	}
	if err := c.store.Reschedule(ctx, rs); err != nil {
		return fmt.Errorf("put back decay reviews: %w", err)
	}
	return nil
}
