package state

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

var runID = time.Now().UnixNano()

// uniq returns an indicator value unique to this test run and n.
func uniq(n int) string {
	return fmt.Sprintf("2001:db8:%x:%x::%x", uint16(runID>>32), uint16(runID>>16)^uint16(runID), n)
}

// replayAge is how much older than its ingest time rec makes a record's
// event time: a log replayed years after it was written.
const replayAge = 3 * 365 * 24 * time.Hour

// rec returns a record Vigil received (ingested) at at, from a log written
// replayAge earlier.
func rec(ip string, offset int64, at time.Time, action, asset string, sev int32) events.Enrichment {
	return events.Enrichment{Observation: events.Observation{
		Indicator:  events.Indicator{Type: events.TypeIPv4, Value: ip},
		EventTime:  at.Add(-replayAge),
		IngestTime: at,
		Producer:   events.Producer{Topic: "raw.fw", Partition: 3, Offset: offset},
		Sighting:   events.Sighting{AssetIP: asset, Action: action, Direction: events.DirectionInbound, Severity: sev, Count: 1},
	}}
}

// runContract checks the Store contract; newStore returns a fresh store on
// the given clock. Indicator values are unique per run so a shared Redis
// holds no state from earlier runs.
func runContract(t *testing.T, newStore func(t *testing.T, now func() time.Time) Store) {
	t.Run("windows and counters", func(t *testing.T) {
		clk := &fakeClock{}
		t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
		clk.Set(t0)
		s := newStore(t, clk.Now)
		ip := uniq(1)
		batch := []events.Enrichment{
			rec(ip, 1, t0.Add(-10*time.Minute), events.ActionBlocked, "10.0.0.1", 2),
			rec(ip, 2, t0.Add(-3*time.Hour), events.ActionAllowed, "10.0.0.2", 4),
			rec(ip, 3, t0.Add(-48*time.Hour), events.ActionAlerted, "10.0.0.3", 1),
			rec(ip, 4, t0.Add(-30*24*time.Hour), events.ActionBlocked, "10.0.0.1", 0),
		}
		for i := range batch {
			batch[i].Observation.Producer.Topic = fmt.Sprintf("raw.fw.%d.%s", runID, t.Name())
		}
		sums, err := s.Apply(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) != 4 {
			t.Fatalf("len = %d", len(sums))
		}
		if sums[0].Count != 1 || sums[0].Count1h != 1 {
			t.Errorf("first summary = %+v", sums[0])
		}
		got := sums[3]
		want := events.SightingSummary{Count: 4, Count1h: 1, Count24h: 2, Count7d: 3, DistinctAssets: 3, Allowed: 1, Blocked: 2, Alerted: 1, BlockedShare: 0.5, MaxSeverity: 4}
		if got.Count != want.Count || got.Count1h != want.Count1h || got.Count24h != want.Count24h || got.Count7d != want.Count7d ||
			got.DistinctAssets != want.DistinctAssets || got.Allowed != want.Allowed || got.Blocked != want.Blocked ||
			got.Alerted != want.Alerted || got.BlockedShare != want.BlockedShare || got.MaxSeverity != want.MaxSeverity {
			t.Errorf("summary = %+v, want %+v", got, want)
		}
		// Windows and LastObserved follow the received (ingest) time; first and
		// last seen keep the event times.
		if !got.FirstSeen.Equal(t0.Add(-30*24*time.Hour-replayAge)) || !got.LastSeen.Equal(t0.Add(-10*time.Minute-replayAge)) {
			t.Errorf("first/last seen = %v / %v, want the event times", got.FirstSeen, got.LastSeen)
		}
		if !got.LastObserved.Equal(t0.Add(-10 * time.Minute)) {
			t.Errorf("last observed = %v, want the latest ingest time %v", got.LastObserved, t0.Add(-10*time.Minute))
		}
		// Two hours later the 1 h window is empty, and the sighting from 3 h ago
		// is still within 24 h.
		clk.Add(2 * time.Hour)
		sums, err = s.Apply(t.Context(), []events.Enrichment{batch[0]})
		if err != nil {
			t.Fatal(err)
		}
		if s := sums[0]; s.Count != 4 || s.Count1h != 0 || s.Count24h != 2 {
			t.Errorf("after 2h = %+v", s)
		}
	})
	t.Run("received time", func(t *testing.T) {
		clk := &fakeClock{}
		t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
		clk.Set(t0)
		s := newStore(t, clk.Now)
		topic := fmt.Sprintf("raw.rt.%d", runID)
		tests := []struct {
			name   string
			ingest time.Time
			event  time.Time
			want   time.Time // LastObserved of a fresh indicator
		}{
			{"old event received now is fresh", t0, t0.Add(-replayAge), t0},
			{"no ingest time: the store clock", time.Time{}, t0.Add(-replayAge), t0},
			{"future ingest time: the store clock", t0.Add(time.Hour), t0, t0},
			{"received an hour ago", t0.Add(-time.Hour), t0.Add(-2 * time.Hour), t0.Add(-time.Hour)},
		}
		for i, tt := range tests {
			e := rec(uniq(10+i), int64(i), t0, events.ActionAllowed, "10.0.0.1", 0)
			e.Observation.Producer.Topic = topic
			e.Observation.IngestTime, e.Observation.EventTime = tt.ingest, tt.event
			sums, err := s.Apply(t.Context(), []events.Enrichment{e})
			if err != nil {
				t.Fatal(err)
			}
			got := sums[0]
			if !got.LastObserved.Equal(tt.want) || got.Count7d != 1 || !got.LastSeen.Equal(tt.event) {
				t.Errorf("%s: last observed %v, 7d count %d, last seen %v; want %v, 1, %v", tt.name, got.LastObserved, got.Count7d, got.LastSeen, tt.want, tt.event)
			}
			if tt.want.Equal(t0) && got.Count1h != 1 {
				t.Errorf("%s: 1h count = %d, want 1 (received now)", tt.name, got.Count1h)
			}
		}
	})
	t.Run("replay is counted once", func(t *testing.T) {
		clk := &fakeClock{}
		t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
		clk.Set(t0)
		s := newStore(t, clk.Now)
		topic := fmt.Sprintf("raw.ids.%d", runID)
		batch := make([]events.Enrichment, 0, 20)
		for i := range 20 {
			e := rec(uniq(2), int64(i), t0.Add(-time.Minute), events.ActionBlocked, fmt.Sprintf("10.1.0.%d", i%5), 3)
			e.Observation.Producer.Topic = topic
			e.Observation.Sighting.Count = 2
			batch = append(batch, e)
		}
		first, err := s.Apply(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		// Replay the whole batch, then a batch with the record twice.
		again, err := s.Apply(t.Context(), batch)
		if err != nil {
			t.Fatal(err)
		}
		dup, err := s.Apply(t.Context(), []events.Enrichment{batch[3], batch[3]})
		if err != nil {
			t.Fatal(err)
		}
		last := first[len(first)-1]
		if last.Count != 40 || last.Blocked != 40 || last.DistinctAssets != 5 {
			t.Errorf("first pass = %+v, want count 40, 5 assets", last)
		}
		for _, s := range append(again, dup...) {
			if s.Count != 40 || s.Count1h != 40 {
				t.Fatalf("replayed summary = %+v, want unchanged count 40", s)
			}
		}
		// Same offset, different indicator: counted.
		other := batch[0]
		other.Observation.Indicator.Value = uniq(3)
		sums, err := s.Apply(t.Context(), []events.Enrichment{other})
		if err != nil {
			t.Fatal(err)
		}
		if sums[0].Count != 2 {
			t.Errorf("other indicator count = %d, want 2", sums[0].Count)
		}
	})
	t.Run("last verdicts", func(t *testing.T) {
		clk := &fakeClock{}
		clk.Set(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
		s := newStore(t, clk.Now)
		k := "ipv6:" + uniq(4)
		missing := fmt.Sprintf("ipv4:never-%d", runID)
		dec := clk.Now().Add(-time.Hour)
		if err := s.SaveVerdicts(t.Context(), []LastVerdict{{Key: k, Priority: 7, Level: "high", Action: "block", DecidedAt: dec, EmittedAt: dec, Sightings: 12, DistinctAssets: 3}}); err != nil {
			t.Fatal(err)
		}
		vs, ok, err := s.LastVerdicts(t.Context(), []string{k, missing})
		if err != nil {
			t.Fatal(err)
		}
		if !ok[0] || ok[1] {
			t.Fatalf("ok = %v", ok)
		}
		if v := vs[0]; v.Priority != 7 || v.Level != "high" || v.Action != "block" || !v.DecidedAt.Equal(dec) || !v.EmittedAt.Equal(dec) ||
			v.Sightings != 12 || v.DistinctAssets != 3 {
			t.Errorf("verdict = %+v", v)
		}
	})
}

// runFeedbackContract checks the FeedbackStore contract on one store.
// Action names and indicator keys are unique per run, so a shared Redis
// (where other tests also count) gives exact counts for them.
func runFeedbackContract(t *testing.T, newStore func(t *testing.T, now func() time.Time) Store) {
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	src := func(name string, off int) string {
		return FeedbackSource(fmt.Sprintf("fb.%d.%s", runID, name), 1, int64(off))
	}
	t.Run("allow entry and expiry", func(t *testing.T) {
		clk := &fakeClock{}
		clk.Set(t0)
		s := newStore(t, clk.Now)
		k1, k2, k3 := "ipv6:"+uniq(100), "ipv6:"+uniq(101), "ipv6:"+uniq(102)
		want := AllowEntry{List: "analyst-feedback", Analyst: "jdoe", Reason: "partner VPN", ExpiresAt: t0.Add(time.Hour)}
		forever := AllowEntry{List: "analyst-feedback", Analyst: "asmith", Reason: "our scanner"}
		n, err := s.RecordFeedback(t.Context(), []FeedbackRecord{
			{Source: src(t.Name(), 1), Key: k1, Allow: &want},
			{Source: src(t.Name(), 2), Key: k3, Allow: &forever},
		})
		if err != nil || n != 2 {
			t.Fatalf("record = %d, %v; want 2 new", n, err)
		}
		ps, err := s.Priors(t.Context(), []string{k1, k2, k3})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 3 || ps[0].Allow == nil || ps[1].Allow != nil || ps[2].Allow == nil {
			t.Fatalf("priors = %+v, want entries for keys 1 and 3 only", ps)
		}
		if got := *ps[0].Allow; got.List != want.List || got.Analyst != want.Analyst || got.Reason != want.Reason || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("entry = %+v, want %+v", got, want)
		}
		if ps[0].HasVerdict {
			t.Errorf("prior has a verdict: %+v", ps[0])
		}
		clk.Add(time.Hour - time.Millisecond)
		if ps, err = s.Priors(t.Context(), []string{k1}); err != nil || ps[0].Allow == nil {
			t.Fatalf("1ms before expiry = %+v, %v; want the entry", ps, err)
		}
		clk.Add(time.Millisecond)
		if ps, err = s.Priors(t.Context(), []string{k1, k3}); err != nil || ps[0].Allow != nil || ps[1].Allow == nil {
			t.Fatalf("at expiry = %+v, %v; want key 1 expired, key 3 (no expiry) kept", ps, err)
		}
		// A new decision re-arms an expired entry.
		again := want
		again.ExpiresAt = clk.Now().Add(time.Hour)
		if _, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: src(t.Name(), 3), Key: k1, Allow: &again}}); err != nil {
			t.Fatal(err)
		}
		if ps, err = s.Priors(t.Context(), []string{k1}); err != nil || ps[0].Allow == nil || !ps[0].Allow.ExpiresAt.Equal(again.ExpiresAt) {
			t.Fatalf("re-armed = %+v, %v", ps, err)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		clk := &fakeClock{}
		clk.Set(t0)
		s := newStore(t, clk.Now)
		k := "ipv6:" + uniq(110)
		e := AllowEntry{List: "analyst-feedback", Analyst: "jdoe", ExpiresAt: t0.Add(time.Hour)}
		if _, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: src(t.Name(), 1), Key: k, Allow: &e}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: src(t.Name(), 2), Key: k, Revoke: true}}); err != nil {
			t.Fatal(err)
		}
		if ps, err := s.Priors(t.Context(), []string{k}); err != nil || ps[0].Allow != nil {
			t.Fatalf("after revoke = %+v, %v; want no entry", ps, err)
		}
		// Replaying the allow decision does not bring it back.
		if n, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: src(t.Name(), 1), Key: k, Allow: &e}}); err != nil || n != 0 {
			t.Fatalf("replayed allow = %d, %v; want 0 new", n, err)
		}
		if ps, err := s.Priors(t.Context(), []string{k}); err != nil || ps[0].Allow != nil {
			t.Fatalf("after replayed allow = %+v, %v; want no entry", ps, err)
		}
	})
	t.Run("replayed feedback counted once", func(t *testing.T) {
		clk := &fakeClock{}
		clk.Set(t0)
		s := newStore(t, clk.Now)
		action := fmt.Sprintf("block-%d", runID)
		k := "ipv6:" + uniq(120)
		before, err := s.KPI(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rec := FeedbackRecord{Source: src(t.Name(), 7), Key: k, FalsePositive: action, Allow: &AllowEntry{List: "analyst-feedback"}}
		other := FeedbackRecord{Source: src(t.Name(), 8), Key: k} // a score change: counted as feedback, not a false positive
		var news []int
		for _, batch := range [][]FeedbackRecord{{rec, other}, {rec}, {rec, rec, other}} {
			n, err := s.RecordFeedback(t.Context(), batch)
			if err != nil {
				t.Fatal(err)
			}
			news = append(news, n)
		}
		if news[0] != 2 || news[1] != 0 || news[2] != 0 {
			t.Errorf("new per batch = %v, want [2 0 0]", news)
		}
		after, err := s.KPI(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := after.FalsePositives[action]; got != 1 {
			t.Errorf("false positives of %s = %d, want 1", action, got)
		}
		if d := after.Feedback - before.Feedback; d < 2 {
			t.Errorf("feedback counter grew by %d, want at least 2", d)
		}
		// Without a source a record cannot be deduplicated: counted each time.
		noSrc := FeedbackRecord{Key: k, FalsePositive: action}
		if n, err := s.RecordFeedback(t.Context(), []FeedbackRecord{noSrc, noSrc}); err != nil || n != 2 {
			t.Fatalf("no source = %d, %v; want 2", n, err)
		}
		if after, err = s.KPI(t.Context()); err != nil || after.FalsePositives[action] != 3 {
			t.Errorf("false positives of %s = %d, %v; want 3", action, after.FalsePositives[action], err)
		}
	})
	t.Run("published counters and last verdicts", func(t *testing.T) {
		clk := &fakeClock{}
		clk.Set(t0)
		s := newStore(t, clk.Now)
		alert, annotate := fmt.Sprintf("alert-%d", runID), fmt.Sprintf("annotate-%d", runID)
		k := "ipv6:" + uniq(130)
		vs := []LastVerdict{
			{Key: k, Priority: 6, Level: "high", Action: alert, DecidedAt: t0, EmittedAt: t0},
			{Key: k, Priority: 7, Level: "high", Action: alert, DecidedAt: t0, EmittedAt: t0},
			{Key: "ipv6:" + uniq(131), Priority: 4, Level: "medium", Action: annotate, DecidedAt: t0, EmittedAt: t0},
		}
		if err := s.SavePublished(t.Context(), vs); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePublished(t.Context(), vs[2:]); err != nil {
			t.Fatal(err)
		}
		kpi, err := s.KPI(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if kpi.Published[alert] != 2 || kpi.Published[annotate] != 2 {
			t.Errorf("published = %d alert, %d annotate; want 2, 2", kpi.Published[alert], kpi.Published[annotate])
		}
		ps, err := s.Priors(t.Context(), []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if !ps[0].HasVerdict || ps[0].Verdict.Priority != 7 || ps[0].Verdict.Action != alert {
			t.Errorf("prior = %+v, want the last verdict (priority 7)", ps[0])
		}
	})
}
