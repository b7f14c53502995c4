package policy

import (
	"math"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// RecheckAfter is how long NextReview waits when the verdict may change at
// any time but decay alone cannot say when: its level rests on sightings
// evidence that leaves the 24-hour window without new sightings (the window
// moves on hour boundaries), or a review time computed for it has already
// passed (a policy reload changed the weights, or a refresh is overdue).
const RecheckAfter = time.Hour

// Review is what NextReview needs to know about a verdict.
type Review struct {
	// Score is the verdict's ReviewScore.
	Score float64
	// Priority is the verdict's priority: NextReview watches its level's
	// band.
	Priority int32
	// LastObserved is when Vigil last received a sighting of the indicator
	// (decay runs from it); zero: no decay.
	LastObserved time.Time
	// EmittedAt is when a verdict of the indicator was last published (the
	// refresh interval runs from it); zero: no refresh.
	EmittedAt time.Time
	// Now is the time of the computation: the result is always after it.
	Now time.Time
}

// ReviewScore returns the score NextReview starts from: the policy's base
// plus the weight of every reason of v except the decay (the score before
// decay) and a positive sightings.count_24h weight, which falls away as the
// 24-hour window empties without new sightings. It is the lowest score v's
// evidence can fall to before decay, so a review computed from it is never
// later than the moment decay can lower the level.
func (p *Policy) ReviewScore(v *events.Verdict) float64 {
	s := p.Scoring.Base
	for _, r := range v.Reasons {
		if r.Code == CodeDecay || (r.Code == CodeSightings && r.Weight > 0) {
			continue
		}
		s += r.Weight
	}
	return s
}

// NextReview returns when an indicator should be evaluated again without a
// new sighting, and false when nothing can change without one: the earliest
// of
//
//   - the moment decay can move the priority below the band of its level:
//     the first age with round(Score × 0.5^(age/half_life)) < level.Min,
//     counted from LastObserved (list caps and the annotate-only safeguard
//     only ever lower the priority further, so they cannot delay it); none
//     with decay.half_life 0 or at the lowest level;
//   - EmittedAt + emit.refresh_interval, when the interval is set.
//
// A time that is not after Now (the score is already below the band without
// its sightings evidence, the refresh is overdue, or the weights changed)
// becomes Now + RecheckAfter. The result is conservative: the evaluation at
// that time decides whether anything is published.
func (p *Policy) NextReview(r Review) (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.After(r.Now) {
			t = r.Now.Add(RecheckAfter)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if hl := p.Decay.HalfLife; hl > 0 && !r.LastObserved.IsZero() {
		if band := p.level(r.Priority).Min; band > 0 {
			if t, ok := dropTime(r.Score, band, hl, r.LastObserved); ok {
				consider(t)
			}
		}
	}
	if ri := p.Emit.RefreshInterval; ri > 0 && !r.EmittedAt.IsZero() {
		consider(r.EmittedAt.Add(ri))
	}
	return next, !next.IsZero()
}

// minDecayFactor mirrors decide: decay smaller than this is not applied.
const minDecayFactor = 0.999

// maxReviewAge bounds a computed decay age (a huge half-life would overflow
// time.Duration): beyond it nothing is scheduled.
const maxReviewAge = 100 * 365 * 24 * time.Hour

// dropTime returns the first time after from at which decay brings score
// below band (priority round(score×f) < band), or from itself when score
// is already below it; ok is false when that is too far away to matter.
func dropTime(score float64, band int32, hl time.Duration, from time.Time) (time.Time, bool) {
	limit := float64(band) - 0.5 // round half away from zero: round(x) < band <=> x < band - 0.5
	if score < limit {
		return from, true
	}
	age := float64(hl) * math.Log2(score/limit)
	// decide applies decay only once the factor is below minDecayFactor
	age = math.Max(age, float64(hl)*math.Log2(1/minDecayFactor))
	if age >= float64(maxReviewAge) {
		return time.Time{}, false
	}
	// at exactly age the score equals limit and still rounds up: the first
	// time after it, rounded up to the millisecond (the due set's resolution)
	return from.Add(time.Duration(age) + time.Millisecond).Truncate(time.Millisecond), true
}
