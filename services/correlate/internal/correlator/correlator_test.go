package correlator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/assets"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

var (
	listsOnce sync.Once
	listsSet  *allowlist.Set
	listsErr  error
)

// shippedLists compiles the local test list plus every shipped warninglist once.
func shippedLists(t testing.TB) *allowlist.Holder {
	t.Helper()
	listsOnce.Do(func() {
		listsSet, listsErr = allowlist.Load(allowlist.Config{
			Warninglists: []string{allowlist.All},
			LocalFiles:   []string{"../../testdata/allow.local.yaml"},
		})
	})
	if listsErr != nil {
		t.Fatal(listsErr)
	}
	return allowlist.NewHolder(listsSet)
}

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func newCorrelator(t testing.TB) (*Correlator, *clock) {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := assets.Load("../../testdata/assets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	st, err := state.NewMemory(state.Config{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(NewPolicyHolder(p), shippedLists(t), inv, st, clk.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

var offset atomic.Int64

func obs(ip, asset string, x events.Exposure) events.Enrichment {
	typ := events.TypeIPv4
	if strings.Contains(ip, ":") {
		typ = events.TypeIPv6
	}
	if x.AbuseConfidence == 0 {
		x.AbuseConfidence = -1
	}
	return events.Enrichment{
		Observation: events.Observation{
			Indicator: events.Indicator{Type: typ, Value: ip},
			EventTime: t0,
			Producer:  events.Producer{Topic: "raw.fw", Partition: 0, Offset: offset.Add(1)},
			Sighting:  events.Sighting{AssetIP: asset, Direction: events.DirectionInbound, Action: events.ActionAlerted, Severity: 3, Count: 1},
		},
		Exposure: x,
		Results:  []events.ProviderResult{{Provider: "criminalip", Status: events.StatusOK}},
	}
}

var hostile = events.Exposure{Malicious: true, InboundScore: 5, Tor: true, Scanner: true, AbuseConfidence: 97, GreyNoiseClass: "malicious"}

// TestScenario mixes benign infrastructure (on the shipped lists, some with
// hostile-looking provider data) with malicious infrastructure: no benign
// indicator reaches block, every malicious one does.
func TestScenario(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	benign := []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "3.5.140.1", "52.95.110.1", "140.82.112.3", "13.107.42.14", "198.51.100.20"}
	malicious := []string{"45.155.205.233", "194.26.29.1", "91.92.240.10", "185.220.101.1"}
	var batch []events.Enrichment
	for round := range 3 {
		for i, ip := range benign {
			batch = append(batch, obs(ip, fmt.Sprintf("10.2.0.%d", 10+i+round), hostile))
		}
		for i, ip := range malicious {
			batch = append(batch, obs(ip, fmt.Sprintf("10.2.0.%d", 100+i+round), hostile))
		}
	}
	vs, err := c.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	final := map[string]events.Verdict{}
	for _, v := range vs {
		final[v.Indicator.Value] = v
	}
	for _, ip := range benign {
		v, ok := final[ip]
		if !ok {
			t.Errorf("%s: no verdict", ip)
			continue
		}
		if v.Action == events.VerdictBlock || v.Action == events.VerdictAlert {
			t.Errorf("benign %s reached %s (priority %d): %+v", ip, v.Action, v.Priority, v.Reasons)
		}
		if !hasCode(v, policy.CodeWarninglist) {
			t.Errorf("benign %s: warninglist not recorded as evidence", ip)
		}
	}
	for _, ip := range malicious {
		if v := final[ip]; v.Action != events.VerdictBlock {
			t.Errorf("malicious %s = %s (priority %d), want block: %+v", ip, v.Action, v.Priority, v.Reasons)
		}
	}
	if v := final["8.8.8.8"]; v.Action != events.VerdictSuppress {
		t.Errorf("8.8.8.8 = %s, want suppress", v.Action)
	}
	if v := final["198.51.100.20"]; !hasCode(v, policy.CodePartner) {
		t.Errorf("partner proxy reasons = %+v", v.Reasons)
	}
}

func hasCode(v events.Verdict, code string) bool {
	for _, r := range v.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

func TestCrownJewelNeverBlocked(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	vs, err := c.Process(t.Context(), []events.Enrichment{obs("45.155.205.233", "10.0.0.5", hostile)})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Action != events.VerdictReview || !hasCode(vs[0], policy.CodeReview) {
		t.Fatalf("verdicts = %+v", vs)
	}
}

func TestReemitOnlyOnChange(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	ctx := t.Context()
	first, err := c.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.17", hostile)})
	if err != nil || len(first) != 1 {
		t.Fatalf("first = %v, %v", first, err)
	}
	if first[0].PreviousPriority != -1 {
		t.Errorf("previous = %d, want -1", first[0].PreviousPriority)
	}
	if err := c.Ack(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A second sighting from another asset doubles count and assets: published
	// again so ThreatQ's sighting attributes follow.
	grown, err := c.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.18", hostile)})
	if err != nil || len(grown) != 1 || grown[0].Sightings.Count != 2 || grown[0].Sightings.DistinctAssets != 2 {
		t.Fatalf("doubled sightings = %+v, %v, want one verdict with 2 sightings on 2 assets", grown, err)
	}
	if err := c.Ack(ctx, grown); err != nil {
		t.Fatal(err)
	}
	// A third sighting on a known asset: same level, less than double.
	same, err := c.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.18", hostile)})
	if err != nil || len(same) != 0 {
		t.Fatalf("unchanged level re-emitted: %+v, %v", same, err)
	}
	// Without Ack, a verdict is emitted again (at-least-once).
	c2, _ := newCorrelator(t)
	a, _ := c2.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.17", hostile)})
	b, _ := c2.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.17", hostile)})
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("un-acked verdicts: %d then %d, want 1 and 1", len(a), len(b))
	}
	// Refresh interval passed: emitted again with the previous priority.
	clk.ns.Add(int64(25 * time.Hour))
	later := obs("194.26.29.1", "10.2.0.17", hostile)
	later.Observation.EventTime = clk.now()
	again, err := c.Process(ctx, []events.Enrichment{later})
	if err != nil || len(again) != 1 {
		t.Fatalf("refresh = %+v, %v", again, err)
	}
	if again[0].PreviousPriority != first[0].Priority {
		t.Errorf("previous priority = %d, want %d", again[0].PreviousPriority, first[0].Priority)
	}
	// Level change: benign classification drops it.
	if err := c.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	calm := obs("194.26.29.1", "10.2.0.17", events.Exposure{InboundScore: 2})
	calm.Observation.EventTime = clk.now()
	changed, err := c.Process(ctx, []events.Enrichment{calm})
	if err != nil || len(changed) != 1 || changed[0].Level == again[0].Level {
		t.Fatalf("level change = %+v, %v", changed, err)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	before := c.Policy().Version
	err := c.Reload("../../testdata/policy.bad.yaml")
	var ve *policy.ValidationError
	if !errors.As(err, &ve) || ve.Line != 4 || ve.Field != "levels.1.action" || !strings.Contains(err.Error(), "policy.bad.yaml") {
		t.Fatalf("bad reload err = %v", err)
	}
	if c.Policy().Version != before {
		t.Fatalf("bad policy swapped in: %s", c.Policy().Version)
	}
	if err := c.Reload("../../testdata/policy.strict.yaml"); err != nil {
		t.Fatal(err)
	}
	if c.Policy().Version != "2026.05.2-strict" {
		t.Fatalf("version = %s", c.Policy().Version)
	}
	vs, err := c.Process(t.Context(), []events.Enrichment{obs("194.26.29.1", "10.2.0.17", hostile)})
	if err != nil || len(vs) != 1 || vs[0].PolicyVersion != "2026.05.2-strict" {
		t.Fatalf("verdict after reload = %+v, %v", vs, err)
	}
}

var fbOffset atomic.Int64

// fbRec wraps analyst decisions as records of a feedback topic, each at its
// own offset.
func fbRec(fbs ...events.Feedback) []FeedbackRecord {
	out := make([]FeedbackRecord, len(fbs))
	for i, fb := range fbs {
		out[i] = FeedbackRecord{Feedback: fb, Topic: "indicators.feedback", Partition: 2, Offset: fbOffset.Add(1)}
	}
	return out
}

func whitelisted(ind events.Indicator, action string) events.Feedback {
	return events.Feedback{Indicator: ind, Kind: "status_changed", PreviousStatus: "Active", NewStatus: "Whitelisted",
		Analyst: "jdoe", Reason: "partner VPN", VigilAction: action, NewScore: -1}
}

// analystEvidence returns the analyst.allow reason of v, if any.
func analystEvidence(v events.Verdict) (string, bool) {
	for _, r := range v.Reasons {
		if r.Code == policy.CodeAnalystAllow {
			return r.Text, true
		}
	}
	return "", false
}

func TestFeedback(t *testing.T) {
	t.Parallel()
	c, clk := newCorrelator(t)
	ctx := t.Context()
	vs, _ := c.Process(ctx, []events.Enrichment{obs("45.155.205.233", "10.2.0.17", hostile)})
	if err := c.Ack(ctx, vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Action != events.VerdictBlock {
		t.Fatalf("setup verdict = %+v", vs)
	}
	recs := fbRec(whitelisted(vs[0].Indicator, events.VerdictBlock),
		events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "192.0.2.1"}, Kind: "score_changed", NewScore: 3})
	if err := c.ApplyFeedback(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// The same records again (a replay after a crash, or a redelivery) count once.
	if err := c.ApplyFeedback(ctx, recs); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.FalsePositives[events.VerdictBlock] != 1 || st.Feedback != 2 || st.Emitted[events.VerdictBlock] != 1 || st.FPRate(events.VerdictBlock) != 1 {
		t.Fatalf("stats = %+v, want 1 false positive of 1 block, 2 feedback", st)
	}
	// Never re-raised: the strongest enrichment is suppressed, with the analyst's reason as evidence.
	critical := hostile
	critical.CVEs = []events.CVE{{ID: "CVE-2026-0001", CVSS: 10}}
	vs, err = c.Process(ctx, []events.Enrichment{obs("45.155.205.233", "10.2.0.17", critical)})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictSuppress {
		t.Fatalf("after whitelist = %+v, %v; want one suppress", vs, err)
	}
	text, ok := analystEvidence(vs[0])
	if !ok || !strings.Contains(text, "jdoe") || !strings.Contains(text, "partner VPN") {
		t.Errorf("analyst evidence = %q, %v; want analyst and reason in %+v", text, ok, vs[0].Reasons)
	}
	found := false
	for _, r := range vs[0].Reasons {
		found = found || strings.Contains(r.Text, "analyst-feedback")
	}
	if !found {
		t.Errorf("analyst list not in reasons: %+v", vs[0].Reasons)
	}
	if err := c.Ack(ctx, vs); err != nil {
		t.Fatal(err)
	}
	// After the entry expires (policy allow_ttl) the indicator is evaluated on its merits again.
	clk.ns.Add(int64(c.Policy().Feedback.AllowTTL))
	vs, err = c.Process(ctx, []events.Enrichment{obs("45.155.205.233", "10.2.0.17", critical)})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictBlock {
		t.Fatalf("after expiry = %+v, %v; want a block again", vs, err)
	}
	if _, ok := analystEvidence(vs[0]); ok {
		t.Errorf("expired analyst entry still in reasons: %+v", vs[0].Reasons)
	}
}

// TestFeedbackRevoked: an analyst moving an indicator out of an allow status
// removes the entry; the revocation is not a false positive.
func TestFeedbackRevoked(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	ctx := t.Context()
	ind := events.Indicator{Type: events.TypeIPv4, Value: "45.155.205.240"}
	revoke := events.Feedback{Indicator: ind, Kind: "status_changed", PreviousStatus: "Whitelisted", NewStatus: "Active", Analyst: "asmith"}
	if err := c.ApplyFeedback(ctx, fbRec(whitelisted(ind, events.VerdictAlert), revoke)); err != nil {
		t.Fatal(err)
	}
	vs, err := c.Process(ctx, []events.Enrichment{obs(ind.Value, "10.2.0.17", hostile)})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictBlock {
		t.Fatalf("after revocation = %+v, %v; want block", vs, err)
	}
	if st, err := c.Stats(ctx); err != nil || st.FalsePositives[events.VerdictAlert] != 1 || st.Feedback != 2 {
		t.Errorf("stats = %+v, %v; want 1 false positive (the allow), 2 feedback", st, err)
	}
}

// TestFeedbackCanonical: ThreatQ's spelling of an indicator matches the
// canonical key the pipeline uses.
func TestFeedbackCanonical(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	ctx := t.Context()
	mapped := events.Indicator{Type: events.TypeIPv6, Value: "::ffff:45.155.205.241"}
	if err := c.ApplyFeedback(ctx, fbRec(whitelisted(mapped, events.VerdictBlock))); err != nil {
		t.Fatal(err)
	}
	vs, err := c.Process(ctx, []events.Enrichment{obs("45.155.205.241", "10.2.0.17", hostile)})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictSuppress {
		t.Fatalf("IPv4-mapped whitelist = %+v, %v; want suppress", vs, err)
	}
}

// TestFeedbackInvalidEntry checks that an indicator that cannot be matched
// is reported alone and does not stop the other records.
func TestFeedbackInvalidEntry(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	ctx := t.Context()
	bad := events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "not-an-ip"}, Kind: "status_changed", NewStatus: "Whitelisted"}
	empty := events.Feedback{Indicator: events.Indicator{Type: events.TypeDomain}, Kind: "status_changed", NewStatus: "Whitelisted"}
	good := events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "194.26.29.1"}, Kind: "status_changed", NewStatus: "Whitelisted"}
	err := c.ApplyFeedback(ctx, fbRec(bad, good, empty))
	var fe *FeedbackError
	if !errors.As(err, &fe) || len(fe.Indexes) != 2 || fe.Indexes[0] != 0 || fe.Indexes[1] != 2 || !errors.Is(fe.Errs[0], ErrBadIndicator) {
		t.Fatalf("err = %v, want FeedbackError for indexes 0 and 2", err)
	}
	vs, err := c.Process(ctx, []events.Enrichment{obs("194.26.29.1", "10.2.0.17", hostile)})
	if err != nil || len(vs) != 1 || vs[0].Action != events.VerdictSuppress {
		t.Fatalf("whitelisted next to bad entries = %+v, %v", vs, err)
	}
}

// TestFeedbackStoreError: a store failure fails the call (the stage retries
// the batch; the records are deduplicated then).
func TestFeedbackStoreError(t *testing.T) {
	t.Parallel()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := state.NewMemory(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(NewPolicyHolder(p), nil, nil, failingFeedback{mem}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ApplyFeedback(t.Context(), fbRec(whitelisted(events.Indicator{Type: events.TypeIPv4, Value: "192.0.2.9"}, events.VerdictBlock)))
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("err = %v, want the store error", err)
	}
	if _, err := c.Stats(t.Context()); !errors.Is(err, errStoreDown) {
		t.Fatalf("stats err = %v, want the store error", err)
	}
}

var errStoreDown = errors.New("store down")

type failingFeedback struct{ *state.Memory }

func (failingFeedback) RecordFeedback(context.Context, []state.FeedbackRecord) (int, error) {
	return 0, errStoreDown
}
func (failingFeedback) KPI(context.Context) (state.KPI, error) { return state.KPI{}, errStoreDown }

func TestDryRun(t *testing.T) {
	t.Parallel()
	a, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, err := policy.Load("../../testdata/policy.strict.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := assets.Load("../../testdata/assets.yaml")
	f, err := os.Open("../../testdata/dryrun.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := DryRun(t.Context(), a, b, shippedLists(t), inv, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %d", len(rows))
	}
	// 45.155.205.233 scores 7: alert under A (block >= 8), block under B (block >= 7).
	if r := rows[0]; r.A.Action != events.VerdictAlert || r.B.Action != events.VerdictBlock || !r.Changed {
		t.Errorf("row 1 = %s/%s changed=%v", r.A.Action, r.B.Action, r.Changed)
	}
	if r := rows[1]; r.Changed || r.A.Action != events.VerdictSuppress {
		t.Errorf("row 2 (8.8.8.8) = %+v", r.A.Action)
	}
	var buf bytes.Buffer
	if err := WriteDryRunTable(&buf, rows, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "3 records, 1 differ") || !strings.Contains(buf.String(), "ipv4:45.155.205.233") {
		t.Errorf("table:\n%s", buf.String())
	}
	if _, err := DryRun(t.Context(), a, b, nil, nil, strings.NewReader("{not json}\n")); err == nil {
		t.Error("bad JSONL accepted")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, nil, nil, nil, nil, nil); !errors.Is(err, ErrNilDependency) {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultPolicyFileInSync(t *testing.T) {
	t.Parallel()
	disk, err := os.ReadFile(filepath.Join("..", "..", "policy.default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, policy.DefaultYAML()) {
		t.Fatal("services/correlate/policy.default.yaml differs from internal/policy/policy.default.yaml (embedded); copy it over")
	}
}

func BenchmarkProcess500(b *testing.B) {
	c, _ := newCorrelator(b)
	ctx := context.Background()
	batch := make([]events.Enrichment, 500)
	for i := range batch {
		batch[i] = obs(fmt.Sprintf("203.0.%d.%d", i/250, i%250), "10.2.0.17", hostile)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range batch {
			batch[i].Observation.Producer.Offset = offset.Add(1)
		}
		vs, err := c.Process(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Ack(ctx, vs); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	_ Store  = (*state.Redis)(nil)
	_ Store  = (*state.Memory)(nil)
	_ Lists  = (*allowlist.Holder)(nil)
	_ Assets = (*assets.Inventory)(nil)
)

// TestBatchVerdictCountsEverySighting reproduces the end-to-end finding: two
// sightings of one indicator (different hosts, actions and raw records) in
// one batch must both be in the published verdict, not only the first.
func TestBatchVerdictCountsEverySighting(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	a := obs("141.98.10.26", "10.20.30.11", hostile)
	a.Observation.Sighting.Action = events.ActionAllowed
	b := obs("141.98.10.26", "10.20.30.18", hostile)
	b.Observation.Sighting.Action = events.ActionBlocked
	vs, err := c.Process(t.Context(), []events.Enrichment{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d verdicts for one indicator in one batch, want 1: %+v", len(vs), vs)
	}
	s := vs[0].Sightings
	if s.Count != 2 || s.DistinctAssets != 2 || s.Allowed != 1 || s.Blocked != 1 {
		t.Errorf("published sightings = %+v, want count 2, 2 assets, 1 allowed, 1 blocked", s)
	}
}

// TestDecayFromObservation: priority decays from when Vigil received the
// last sighting, not from the raw event time.
func TestDecayFromObservation(t *testing.T) {
	t.Parallel()
	eight := events.Exposure{Malicious: true, InboundScore: 5, Scanner: true, AbuseConfidence: -1} // scores 8
	tests := []struct {
		name     string
		event    time.Time
		ingest   time.Time
		wantPrio int32
		decayed  bool
	}{
		{"old log replayed now is fresh", t0.AddDate(-3, 0, 0), t0, 8, false},
		{"old log, no ingest time: received now", t0.AddDate(-3, 0, 0), time.Time{}, 8, false},
		{"received two half-lives ago (backlog): quartered", t0.Add(-144 * time.Hour), t0.Add(-144 * time.Hour), 2, true},
		{"fresh event received two half-lives ago: quartered", t0, t0.Add(-144 * time.Hour), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCorrelator(t)
			e := obs("45.155.205.233", "10.2.0.40", eight)
			e.Observation.EventTime, e.Observation.IngestTime = tt.event, tt.ingest
			e.Observation.Sighting.Severity = 0
			vs, err := c.Process(t.Context(), []events.Enrichment{e})
			if err != nil || len(vs) != 1 {
				t.Fatalf("verdicts = %+v, %v", vs, err)
			}
			v := vs[0]
			if v.Priority != tt.wantPrio || hasCode(v, policy.CodeDecay) != tt.decayed {
				t.Errorf("priority %d, decay reason %v; want %d, %v (reasons %+v)", v.Priority, hasCode(v, policy.CodeDecay), tt.wantPrio, tt.decayed, v.Reasons)
			}
			if !v.Sightings.LastSeen.Equal(tt.event) {
				t.Errorf("last seen = %v, want the event time %v", v.Sightings.LastSeen, tt.event)
			}
		})
	}
}

// TestCorrelateAcksWithBatch: verdicts acked through Correlate count as
// published before the batch is judged (one store round trip), and each
// output names the record it was decided on.
func TestCorrelateAcksWithBatch(t *testing.T) {
	t.Parallel()
	c, _ := newCorrelator(t)
	ctx := t.Context()
	first, err := c.Correlate(ctx, nil, []events.Enrichment{obs("194.26.29.9", "10.2.0.17", hostile), obs("194.26.29.8", "10.2.0.17", hostile),
		obs("194.26.29.9", "10.2.0.17", hostile)})
	if err != nil || len(first) != 2 || first[0].Record != 1 || first[1].Record != 2 || first[1].Verdict.Sightings.Count != 2 {
		t.Fatalf("first = %+v, %v; want verdicts on records 1 and 2 (last of each indicator)", first, err)
	}
	acked := []Published{{Verdict: first[0].Verdict}, {Verdict: first[1].Verdict}}
	again, err := c.Correlate(ctx, acked, []events.Enrichment{obs("194.26.29.9", "10.2.0.17", hostile)})
	if err != nil || len(again) != 0 {
		t.Fatalf("after acking with the batch: %+v, %v; want nothing new to publish", again, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Emitted[first[0].Verdict.Action] != 2 {
		t.Fatalf("published count = %v, %v; want 2", st.Emitted, err)
	}
}
