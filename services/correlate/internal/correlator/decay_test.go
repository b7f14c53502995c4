package correlator

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
)

func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func testSerde(t testing.TB) *events.Serde {
	t.Helper()
	s, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publishFirst correlates e and acks its verdict as the stage does (with
// the encoded enrichment, on input partition part).
func publishFirst(t *testing.T, c *Correlator, s *events.Serde, e events.Enrichment, part int32) events.Verdict {
	t.Helper()
	ctx := t.Context()
	outs, err := c.Correlate(ctx, nil, []events.Enrichment{e})
	if err != nil || len(outs) != 1 {
		t.Fatalf("first verdict: %+v, %v", outs, err)
	}
	enc, err := s.EncodeEnrichment(&e)
	if err != nil {
		t.Fatal(err)
	}
	pub := Published{Verdict: outs[0].Verdict, Enrichment: enc, Partition: part, LastObserved: outs[0].LastObserved}
	if pub.LastObserved.IsZero() {
		t.Fatal("output without LastObserved")
	}
	if err := c.AckPublished(ctx, []Published{pub}); err != nil {
		t.Fatal(err)
	}
	return outs[0].Verdict
}

func rescore(t *testing.T, c *Correlator, s *events.Serde, parts ...int32) Rescored {
	t.Helper()
	r, err := c.Rescore(t.Context(), s, parts, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Publish) != len(r.Claims) {
		t.Fatalf("%d verdicts for %d claims", len(r.Publish), len(r.Claims))
	}
	return r
}

// TestRescoreDecay: an idle indicator's verdict is published again at a
// lower level once decay lowered it, and then not again until its next
// review.
func TestRescoreDecay(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	s := testSerde(t)
	first := publishFirst(t, c, s, obs("194.26.29.50", "10.2.0.17", hostile), 3)
	if first.Action != events.VerdictBlock {
		t.Fatalf("first verdict %s/%s, want a block", first.Level, first.Action)
	}
	if r := rescore(t, c, s, 3); r.Claimed != 0 {
		t.Fatalf("rescored right after the publication: %+v", r)
	}
	clk.add(10 * 24 * time.Hour) // over three half-lives (72h)
	if r := rescore(t, c, s, 4); r.Claimed != 0 {
		t.Fatalf("another partition's sweep claimed %+v", r)
	}
	r := rescore(t, c, s, 3)
	if r.Claimed != 1 || r.Rescored != 1 || len(r.Publish) != 1 {
		t.Fatalf("rescore = %+v, want one verdict", r)
	}
	v := r.Publish[0].Verdict
	if v.Priority >= first.Priority || v.Level == first.Level || !hasCode(v, policy.CodeDecay) {
		t.Errorf("decayed verdict %d/%s, reasons %+v; want below %d/%s with a decay reason", v.Priority, v.Level, v.Reasons, first.Priority, first.Level)
	}
	if v.PreviousPriority != first.Priority || !v.DecidedAt.Equal(clk.now()) || !v.ValidUntil.Equal(clk.now().Add(c.Policy().Decay.ValidFor)) {
		t.Errorf("previous %d, decided %v, valid until %v; want %d, now, now + valid_for", v.PreviousPriority, v.DecidedAt, v.ValidUntil, first.Priority)
	}
	if v.Sightings.Count != 1 || v.Sightings.Count24h != 0 {
		t.Errorf("sightings %+v: want the summary as it is now (none in the last day)", v.Sightings)
	}
	if err := c.AckPublished(t.Context(), r.Publish); err != nil {
		t.Fatal(err)
	}
	if again := rescore(t, c, s, 3); again.Claimed != 0 {
		t.Fatalf("second sweep right after = %+v, want nothing due", again)
	}
	st, err := c.Stats(t.Context())
	if err != nil || st.Emitted[events.VerdictBlock] != 1 || st.Emitted[v.Action] != 1 {
		t.Errorf("published counts %v, %v; want the block and the decayed %s", st.Emitted, err, v.Action)
	}
}

// TestRescoreSkipsSightedSince: an indicator sighted after its verdict is
// left to the stream path, and reviewed from the new sighting later.
func TestRescoreSkipsSightedSince(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	s := testSerde(t)
	first := publishFirst(t, c, s, obs("194.26.29.51", "10.2.0.17", hostile), 5)
	clk.add(time.Hour)
	if _, err := c.Correlate(t.Context(), nil, []events.Enrichment{obs("194.26.29.51", "10.2.0.18", hostile)}); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * 24 * time.Hour)
	r := rescore(t, c, s, 5)
	if r.Claimed != 1 || r.Skipped != 1 || r.Rescored != 0 || len(r.Publish) != 0 {
		t.Fatalf("rescore = %+v, want it skipped", r)
	}
	if again := rescore(t, c, s, 5); again.Claimed != 0 {
		t.Fatalf("claimed again at once: %+v", again)
	}
	clk.add(policy.RecheckAfter)
	r = rescore(t, c, s, 5)
	if r.Skipped != 0 || len(r.Publish) != 1 {
		t.Fatalf("rescore at the next review = %+v, want a verdict", r)
	}
	if v := r.Publish[0].Verdict; v.Priority >= first.Priority || !r.Publish[0].LastObserved.Equal(first.DecidedAt.Add(time.Hour)) {
		t.Errorf("verdict %d (was %d), last observed %v; want lower, decayed from the second sighting", v.Priority, first.Priority, r.Publish[0].LastObserved)
	}
}

// TestRescoreDropsWhatCannotBeEvaluated: a review whose indicator has no
// state, or whose stored enrichment does not decode, leaves the schedule.
func TestRescoreDropsWhatCannotBeEvaluated(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	s := testSerde(t)
	ctx := t.Context()
	v := publishFirst(t, c, s, obs("194.26.29.52", "10.2.0.17", hostile), 6)
	garbage := Published{Verdict: v, Enrichment: []byte("not avro"), Partition: 6, LastObserved: clk.now()}
	stateless := Published{Verdict: v, Enrichment: []byte("x"), Partition: 6, LastObserved: clk.now()}
	stateless.Verdict.Indicator.Value = "194.26.29.53" // acked, never sighted
	if err := c.AckPublished(ctx, []Published{garbage, stateless}); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * 24 * time.Hour)
	r := rescore(t, c, s, 6)
	if r.Claimed != 2 || r.Dropped != 2 || len(r.Publish) != 0 {
		t.Fatalf("rescore = %+v, want both dropped", r)
	}
	clk.add(30 * 24 * time.Hour)
	if r := rescore(t, c, s, 6); r.Claimed != 0 {
		t.Fatalf("dropped reviews came back: %+v", r)
	}
}

// TestPutBack: a claim whose verdict could not be published is due again at
// once.
func TestPutBack(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	s := testSerde(t)
	publishFirst(t, c, s, obs("194.26.29.54", "10.2.0.17", hostile), 7)
	clk.add(10 * 24 * time.Hour)
	r := rescore(t, c, s, 7)
	if len(r.Publish) != 1 {
		t.Fatalf("rescore = %+v", r)
	}
	if err := c.PutBack(context.Background(), r.Claims); err != nil {
		t.Fatal(err)
	}
	if again := rescore(t, c, s, 7); len(again.Publish) != 1 {
		t.Fatalf("after the put-back: %+v, want the verdict again", again)
	}
}
