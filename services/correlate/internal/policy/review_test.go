package policy

import (
	"math"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// decayAge is the age at which hl-decay brings score below limit, rounded
// up to the millisecond.
func decayAge(hl time.Duration, score, limit float64) time.Duration {
	return (time.Duration(float64(hl)*math.Log2(score/limit)) + time.Millisecond).Truncate(time.Millisecond)
}

func TestNextReview(t *testing.T) {
	t.Parallel()
	base := mustDefault(t) // levels: critical >= 8, high >= 6, medium >= 3, low >= 1, info >= 0
	with := func(hl, refresh time.Duration) *Policy {
		q := *base
		q.Decay.HalfLife, q.Emit.RefreshInterval = hl, refresh
		return &q
	}
	seen := now.Add(-2 * time.Hour) // last sighting
	tests := []struct {
		name    string
		p       *Policy
		r       Review
		want    time.Time
		wantSet bool
	}{
		{"critical, 72h half-life", with(72*time.Hour, 0), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(72*time.Hour, 9, 7.5)), true},
		{"critical, 24h half-life", with(24*time.Hour, 0), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(24*time.Hour, 9, 7.5)), true},
		{"score above the clamp", with(72*time.Hour, 0), Review{Score: 14, Priority: 10, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(72*time.Hour, 14, 7.5)), true},
		{"high watches its own band", with(72*time.Hour, 0), Review{Score: 7, Priority: 7, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(72*time.Hour, 7, 5.5)), true},
		{"low to info", with(12*time.Hour, 0), Review{Score: 2, Priority: 2, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(12*time.Hour, 2, 0.5)), true},
		{"capped priority: the cap's band", with(72*time.Hour, 0), Review{Score: 9, Priority: 2, LastObserved: seen, EmittedAt: now, Now: now},
			seen.Add(decayAge(72*time.Hour, 9, 0.5)), true},
		{"refresh before decay", with(72*time.Hour, time.Hour), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now, Now: now},
			now.Add(time.Hour), true},
		{"decay before refresh", with(time.Hour, 24*time.Hour), Review{Score: 9, Priority: 9, LastObserved: now, EmittedAt: now, Now: now},
			now.Add(decayAge(time.Hour, 9, 7.5)), true},
		{"lowest level, no refresh", with(72*time.Hour, 0), Review{Score: 0.2, Priority: 0, LastObserved: seen, EmittedAt: now, Now: now},
			time.Time{}, false},
		{"lowest level, refresh", with(72*time.Hour, 24*time.Hour), Review{Score: 0.2, Priority: 0, LastObserved: seen, EmittedAt: now, Now: now},
			now.Add(24 * time.Hour), true},
		{"no half-life, no refresh", with(0, 0), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now, Now: now},
			time.Time{}, false},
		{"no half-life, refresh", with(0, 6*time.Hour), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now, Now: now},
			now.Add(6 * time.Hour), true},
		{"never observed, no refresh", with(72*time.Hour, 0), Review{Score: 9, Priority: 9, EmittedAt: now, Now: now},
			time.Time{}, false},
		{"below the band without sightings evidence", with(72*time.Hour, 0), Review{Score: 5, Priority: 6, LastObserved: seen, EmittedAt: now, Now: now},
			now.Add(RecheckAfter), true},
		{"decay already due", with(time.Hour, 0), Review{Score: 9, Priority: 9, LastObserved: now.Add(-10 * time.Hour), EmittedAt: now, Now: now},
			now.Add(RecheckAfter), true},
		{"refresh overdue", with(0, time.Hour), Review{Score: 9, Priority: 9, LastObserved: seen, EmittedAt: now.Add(-2 * time.Hour), Now: now},
			now.Add(RecheckAfter), true},
		{"at the band edge: decay applies from factor 0.999", with(72*time.Hour, 0), Review{Score: 7.5001, Priority: 8, LastObserved: now, EmittedAt: now, Now: now},
			now.Add(decayAge(72*time.Hour, 1, minDecayFactor)), true},
		{"half-life beyond a century", with(200*365*24*time.Hour, 0), Review{Score: 100, Priority: 10, LastObserved: seen, EmittedAt: now, Now: now},
			time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tt.p.NextReview(tt.r)
			if ok != tt.wantSet || !got.Equal(tt.want) {
				t.Errorf("NextReview = %v, %v; want %v, %v", got, ok, tt.want, tt.wantSet)
			}
		})
	}
}

// TestNextReviewMatchesEvaluate checks the computed time against the policy
// itself: a millisecond before it the verdict keeps its level, at it the
// level is lower.
func TestNextReviewMatchesEvaluate(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	seen := now.Add(-time.Hour)
	tests := []struct {
		name string
		x    events.Exposure
	}{
		{"9: critical", events.Exposure{Malicious: true, InboundScore: 5, Tor: true}},
		{"8: critical at the edge", events.Exposure{Malicious: true, InboundScore: 5, Scanner: true}},
		{"7: high", events.Exposure{Malicious: true, InboundScore: 5}},
		{"4: medium", events.Exposure{InboundScore: 5}},
		{"3.5: medium", events.Exposure{Malicious: true, Hosting: true}},
		{"1.5: low", events.Exposure{InboundScore: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := enr(tt.x)
			at := func(ts time.Time) events.Verdict {
				return p.Evaluate(Input{Enrichment: e, LastObserved: seen, Now: ts})
			}
			v := at(seen)
			due, ok := p.NextReview(Review{Score: p.ReviewScore(&v), Priority: v.Priority, LastObserved: seen, Now: seen})
			if !ok {
				t.Fatalf("no review for %s (priority %d)", v.Level, v.Priority)
			}
			if before := at(due.Add(-time.Millisecond)); before.Level != v.Level {
				t.Errorf("level %s already at %v, before the review at %v", before.Level, due.Add(-time.Millisecond), due)
			}
			if after := at(due); after.Level == v.Level || !hasCode(after, CodeDecay) {
				t.Errorf("at the review the level is %s (was %s, reasons %+v), want lower by decay", after.Level, v.Level, after.Reasons)
			}
		})
	}
}

func TestReviewScore(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name string
		in   Input
		want float64
	}{
		{"exposure only", Input{Enrichment: enr(events.Exposure{Malicious: true, InboundScore: 5}), Now: now}, 7},
		{"decay left out", Input{Enrichment: enr(events.Exposure{Malicious: true, InboundScore: 5}), LastObserved: now.Add(-72 * time.Hour), Now: now}, 7},
		{"sightings left out", Input{Enrichment: enr(events.Exposure{Malicious: true}), Summary: sums(30, 1, 0), Now: now}, 3},
		{"asset and severity kept", Input{Enrichment: enr(events.Exposure{Malicious: true}), Summary: sums(1, 1, 4), Asset: &Asset{Criticality: "server"}, Now: now}, 6},
		{"negative evidence kept", Input{Enrichment: enr(events.Exposure{Malicious: true, GreyNoiseClass: "benign"}), Now: now}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := p.Evaluate(tt.in)
			if got := p.ReviewScore(&v); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("ReviewScore = %v, want %v (reasons %+v)", got, tt.want, v.Reasons)
			}
		})
	}
}
