package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

type env struct {
	emu   *tqemu.Server
	tq    *threatq.Client
	store *MemoryStore
	w     *Writer
	m     *countMetrics
	mu    sync.Mutex // guards slept (calls retry concurrently)
	slept []time.Duration
}

type countMetrics struct {
	NopMetrics
	written, skipped, dead int
	states                 []string
}

func (c *countMetrics) Written(n int)                     { c.written += n }
func (c *countMetrics) Skipped(n int)                     { c.skipped += n }
func (c *countMetrics) DeadLettered(n int)                { c.dead += n }
func (c *countMetrics) BreakerState(s string)             { c.states = append(c.states, s) }
func (c *countMetrics) Call(string, time.Duration, error) {}

func newClient(t testing.TB, emu *tqemu.Server) *threatq.Client {
	t.Helper()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	o := emu.Options()
	c, err := threatq.New(threatq.Config{BaseURL: srv.URL, ClientID: o.ClientID, Email: o.Email, Password: o.Password,
		AllowInsecureHTTP: true, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func newEnv(t testing.TB, seed uint64, mutate func(*Config)) *env {
	t.Helper()
	emu := tqemu.New(tqemu.Options{Seed: seed})
	e := &env{emu: emu, tq: newClient(t, emu), store: NewMemoryStore(), m: &countMetrics{}}
	cfg := Config{RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond, BreakerOpenFor: 50 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := New(cfg, e.tq, e.store, e.m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w.sleep = func(_ context.Context, d time.Duration) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.slept = append(e.slept, d)
		return nil
	}
	e.w = w
	return e
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func verdict(value, action string, attrs ...string) events.Verdict {
	v := events.Verdict{
		Indicator: events.Indicator{Type: events.TypeIPv4, Value: value},
		Priority:  8, Level: "high", Action: action,
		Reasons:   []events.Reason{{Code: "criminalip.inbound"}},
		Sources:   []string{"criminalip"},
		Tags:      []string{"vigil"},
		DecidedAt: t0,
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		v.Attributes = append(v.Attributes, events.Attribute{Name: attrs[i], Value: attrs[i+1]})
	}
	return v
}

func flush(t *testing.T, w *Writer) FlushResult {
	t.Helper()
	res, err := w.Flush(t.Context())
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
	return res
}

func TestIdempotentAndReplacing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, nil)
	v := verdict("203.0.113.7", events.VerdictBlock, "Is VPN", "true", "Open Port", "22")
	e.w.Add(v, 1)
	res := flush(t, e.w)
	if res.Written != 1 || len(res.Acked) != 1 || res.Acked[0] != 1 {
		t.Fatalf("first flush = %+v", res)
	}
	got, ok := e.emu.Lookup("IP Address", "203.0.113.7")
	if !ok || got.Status != "Active" || strings.Join(got.Attr("Is VPN"), ",") != "Yes" || len(got.Attr(AttrReason)) != 1 {
		t.Fatalf("indicator = %+v", got)
	}
	if !slicesHas(got.Tags, "vigil") || len(got.Sources) != 2 {
		t.Fatalf("tags/sources = %v / %v", got.Tags, got.Sources)
	}

	// The same verdict again: skipped by fingerprint, no ThreatQ call.
	e.w.Add(v, 2)
	res = flush(t, e.w)
	if res.Skipped != 1 || res.Written != 0 || res.Calls != 0 || e.m.skipped != 1 {
		t.Fatalf("repeat flush = %+v (metric skipped %d)", res, e.m.skipped)
	}

	// The same verdict with the fingerprint store lost: written again, still no duplicates.
	e2, err := New(e.w.cfg, e.tq, NewMemoryStore(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e2.Add(v, 3)
	if _, err := e2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ = e.emu.Lookup("IP Address", "203.0.113.7")
	if n := len(got.Attributes); n != 6 { // Is VPN, Open Port, priority, level, action, reason
		t.Fatalf("attributes after rewrite = %d: %+v", n, got.Attributes)
	}

	// An analyst adds a note; then a fact changes: values replaced, note kept.
	id := got.ID
	if err := e.tq.AddAttribute(t.Context(), int64(id), threatq.Attribute{Name: "Analyst Note", Value: "ok", Sources: []string{"Analyst"}}); err != nil {
		t.Fatal(err)
	}
	v2 := verdict("203.0.113.7", events.VerdictBlock, "Is VPN", "false", "Open Port", "443")
	v2.DecidedAt = t0.Add(time.Minute)
	e.w.Add(v2, 4)
	res = flush(t, e.w)
	if res.Written != 1 {
		t.Fatalf("changed flush = %+v", res)
	}
	got, _ = e.emu.Lookup("IP Address", "203.0.113.7")
	if vpn, port := strings.Join(got.Attr("Is VPN"), ","), strings.Join(got.Attr("Open Port"), ","); vpn != "No" || port != "443" {
		t.Fatalf("after change: Is VPN=%s Open Port=%s", vpn, port)
	}
	if note := got.Attr("Analyst Note"); len(note) != 1 {
		t.Fatalf("foreign attribute lost: %+v", got.Attributes)
	}
	if n := len(e.emu.Indicators()); n != 1 {
		t.Fatalf("indicators = %d, want 1", n)
	}
}

func slicesHas(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestBatchWithInvalidRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2, func(c *Config) { c.BatchSize = 8 })
	for i := range 10 {
		e.w.Add(verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictAlert), i)
	}
	bad := verdict("999.1.1.1", events.VerdictAlert)
	e.w.Add(bad, "bad")
	res := flush(t, e.w)
	if len(res.Dead) != 1 || res.Dead[0].Token != "bad" || res.Dead[0].Message == "" {
		t.Fatalf("dead = %+v", res.Dead)
	}
	if !strings.Contains(res.Dead[0].Message, "value") {
		t.Fatalf("dead letter lacks ThreatQ's text: %q", res.Dead[0].Message)
	}
	if res.Written != 10 || len(res.Acked) != 10 || e.w.Len() != 0 {
		t.Fatalf("result = written %d acked %d pending %d", res.Written, len(res.Acked), e.w.Len())
	}
	if n := len(e.emu.Indicators()); n != 10 {
		t.Fatalf("stored = %d, want 10", n)
	}
	if e.m.dead != 1 || e.w.BreakerState() != "closed" {
		t.Fatalf("dead metric %d, breaker %s", e.m.dead, e.w.BreakerState())
	}
}

func TestUnknownTypeIsDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3, nil)
	v := verdict("x", events.VerdictAlert)
	v.Indicator.Type = "email"
	e.w.Add(v, "t")
	res := flush(t, e.w)
	if len(res.Dead) != 1 || res.Calls != 0 {
		t.Fatalf("result = %+v", res)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4, func(c *Config) { c.MaxAttempts = 2; c.BreakerFailures = 3 })
	e.w.Add(verdict("203.0.113.7", events.VerdictBlock), 1)
	e.emu.SetFault(tqemu.Faults{Down: true, DownMode: tqemu.DownModeUnavailable})
	var err error
	for range 3 {
		_, err = e.w.Flush(t.Context())
		if errors.Is(err, ErrPaused) {
			break
		}
		if !errors.Is(err, threatq.ErrUnavailable) {
			t.Fatalf("flush while down: %v", err)
		}
	}
	if _, err = e.w.Flush(t.Context()); !errors.Is(err, ErrPaused) {
		t.Fatalf("flush with breaker open: %v, want ErrPaused", err)
	}
	if e.w.Ready() || e.w.Len() != 1 {
		t.Fatalf("ready %v pending %d; want not ready, verdict kept", e.w.Ready(), e.w.Len())
	}
	// Still down at the half-open probe: back to open.
	time.Sleep(60 * time.Millisecond)
	if !e.w.Ready() {
		t.Fatal("not ready after open timeout (half-open)")
	}
	if err := e.w.Probe(t.Context()); err == nil {
		t.Fatal("probe succeeded while down")
	}
	if e.w.Ready() {
		t.Fatal("breaker not re-opened after failed probe")
	}
	e.emu.ClearFaults()
	time.Sleep(60 * time.Millisecond)
	if err := e.w.Probe(t.Context()); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	res := flush(t, e.w)
	if res.Written != 1 || len(res.Acked) != 1 || e.w.BreakerState() != "closed" {
		t.Fatalf("after recovery: %+v, breaker %s", res, e.w.BreakerState())
	}
	if !slicesHas(e.m.states, "open") || !slicesHas(e.m.states, "half-open") || !slicesHas(e.m.states, "closed") {
		t.Fatalf("breaker states reported = %v", e.m.states)
	}
}

func TestRetriesTransientAndHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5, nil)
	e.emu.SetFault(tqemu.Faults{PathPrefix: "/api/indicators/consume", FailNext: 1, ErrorStatus: 503, RateLimitNext: 1, RetryAfter: 2 * time.Second})
	e.w.Add(verdict("203.0.113.7", events.VerdictBlock), 1)
	res := flush(t, e.w)
	if res.Written != 1 || res.Calls < 2 {
		t.Fatalf("result = %+v", res)
	}
	if !slicesHasDur(e.slept, 2*time.Second) {
		t.Fatalf("sleeps = %v, want one of 2s (Retry-After)", e.slept)
	}
}

func slicesHasDur(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 6, nil)
	for i := range 10000 {
		v := verdict(fmt.Sprintf("192.0.2.%d", i%100), events.VerdictAlert)
		v.Priority = int32(i % 10)
		v.DecidedAt = t0.Add(time.Duration(i) * time.Millisecond)
		e.w.Add(v, i)
	}
	if !e.w.Due() || e.w.Len() != 100 {
		t.Fatalf("due %v len %d", e.w.Due(), e.w.Len())
	}
	res := flush(t, e.w)
	st := e.emu.Stats()
	if res.Written != 100 || len(res.Acked) != 10000 || st.Writes > 100 || st.Calls["POST /api/indicators/consume"] != 1 {
		t.Fatalf("written %d acked %d emulator writes %d consume calls %d", res.Written, len(res.Acked), st.Writes, st.Calls["POST /api/indicators/consume"])
	}
	// The latest verdict won: 192.0.2.5 last got i=9905, priority 5.
	got, _ := e.emu.Lookup("IP Address", "192.0.2.5")
	if p := got.Attr(AttrPriority); len(p) != 1 || p[0] != "5" {
		t.Fatalf("priority = %v, want [5]", p)
	}
}

func TestLatestByDecidedAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 7, nil)
	newer := verdict("203.0.113.7", events.VerdictBlock)
	newer.DecidedAt = t0.Add(time.Hour)
	older := verdict("203.0.113.7", events.VerdictReview)
	e.w.Add(newer, "new")
	e.w.Add(older, "old") // arrives later, decided earlier: loses
	res := flush(t, e.w)
	got, _ := e.emu.Lookup("IP Address", "203.0.113.7")
	if got.Status != "Active" || len(res.Acked) != 2 {
		t.Fatalf("status %s acked %v", got.Status, res.Acked)
	}
}

func TestAnalystStatusNotOverridden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8, nil)
	e.w.Add(verdict("203.0.113.7", events.VerdictBlock), 1)
	flush(t, e.w)
	// Vigil changes its mind: it owns the status, so it updates it.
	v := verdict("203.0.113.7", events.VerdictReview)
	v.DecidedAt = t0.Add(time.Minute)
	e.w.Add(v, 2)
	flush(t, e.w)
	if got, _ := e.emu.Lookup("IP Address", "203.0.113.7"); got.Status != "Review" {
		t.Fatalf("status = %s, want Review", got.Status)
	}
	// An analyst whitelists; a later block verdict must not undo that.
	if err := e.emu.AnalystSetStatus("203.0.113.7", "Whitelisted"); err != nil {
		t.Fatal(err)
	}
	v = verdict("203.0.113.7", events.VerdictBlock, "Is VPN", "true")
	v.DecidedAt = t0.Add(2 * time.Minute)
	e.w.Add(v, 3)
	flush(t, e.w)
	if got, _ := e.emu.Lookup("IP Address", "203.0.113.7"); got.Status != "Whitelisted" {
		t.Fatalf("status = %s, want Whitelisted kept", got.Status)
	}
}

func TestManualScore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 9, nil)
	v := verdict("203.0.113.7", events.VerdictBlock)
	e.w.Add(v, 1)
	flush(t, e.w)
	if got, _ := e.emu.Lookup("IP Address", "203.0.113.7"); got.ManualScore != nil {
		t.Fatalf("manual score set without SetScore: %v", *got.ManualScore)
	}
	v.SetScore, v.Priority, v.DecidedAt = true, 9, t0.Add(time.Minute)
	e.w.Add(v, 2)
	flush(t, e.w)
	got, _ := e.emu.Lookup("IP Address", "203.0.113.7")
	if got.ManualScore == nil || *got.ManualScore != 9 {
		t.Fatalf("manual score = %v, want 9", got.ManualScore)
	}
	recs, _ := e.store.GetMany(t.Context(), []string{"ipv4:203.0.113.7"})
	if r := recs["ipv4:203.0.113.7"]; r.Score != 9 || r.Status != "Active" || r.ThreatQID != int64(got.ID) {
		t.Fatalf("record = %+v", r)
	}
}

func TestDueByTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 10, func(c *Config) { c.FlushInterval = time.Second })
	now := t0
	e.w.now = func() time.Time { return now }
	if e.w.Due() {
		t.Fatal("empty writer due")
	}
	e.w.Add(verdict("203.0.113.7", events.VerdictBlock), 1)
	if e.w.Due() {
		t.Fatal("due immediately")
	}
	now = now.Add(time.Second)
	if !e.w.Due() {
		t.Fatal("not due after interval")
	}
}

func TestFingerprintIgnoresPublishedAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 11, nil)
	a := verdict("203.0.113.7", events.VerdictBlock, "X", "1", "Y", "2")
	b := verdict("203.0.113.7", events.VerdictBlock, "Y", "2", "X", "1")
	b.DecidedAt = t0.Add(time.Hour)
	pa, _ := e.w.build(a)
	pb, _ := e.w.build(b)
	if pa.fp != pb.fp {
		t.Fatal("fingerprint depends on attribute order or published_at")
	}
	c := verdict("203.0.113.7", events.VerdictReview, "X", "1", "Y", "2")
	pc, _ := e.w.build(c)
	if pc.fp == pa.fp {
		t.Fatal("fingerprint ignores status")
	}
}

func BenchmarkWrite(b *testing.B) {
	e := newEnv(b, 42, nil)
	b.ResetTimer()
	calls, written := httpCalls(e.emu), 0
	for i := range b.N {
		for j := range 1000 {
			v := verdict(fmt.Sprintf("10.%d.%d.%d", i%250, j/250, j%250), events.VerdictAlert, "Open Port", fmt.Sprint(j))
			v.DecidedAt = t0.Add(time.Duration(i) * time.Second)
			e.w.Add(v, j)
		}
		res, err := e.w.Flush(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		written += res.Written
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "indicators/s")
	b.ReportMetric(float64(httpCalls(e.emu)-calls)/float64(b.N), "http_calls/1000verdicts")
}

// BenchmarkRewriteChanged measures updates: 1,000 known indicators whose attribute changes each round.
func BenchmarkRewriteChanged(b *testing.B) {
	e := newEnv(b, 43, nil)
	add := func(round int) {
		for j := range 1000 {
			v := verdict(fmt.Sprintf("10.9.%d.%d", j/250, j%250), events.VerdictAlert, "Open Port", fmt.Sprint(round))
			v.DecidedAt = t0.Add(time.Duration(round) * time.Second)
			e.w.Add(v, j)
		}
	}
	add(-1)
	if _, err := e.w.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	calls, written := httpCalls(e.emu), 0
	for i := range b.N {
		add(i)
		res, err := e.w.Flush(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		written += res.Written
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "indicators/s")
	b.ReportMetric(float64(httpCalls(e.emu)-calls)/float64(b.N), "http_calls/1000verdicts")
}

// httpCalls is the number of API requests the emulator served (token requests included).
func httpCalls(emu *tqemu.Server) int {
	n := 0
	for _, c := range emu.Stats().Calls {
		n += c
	}
	return n
}

func TestDiscardDropsPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 7, func(c *Config) { c.MaxPending = 2 })
	e.w.Add(verdict("203.0.113.8", events.VerdictBlock), 1)
	e.w.Add(verdict("203.0.113.9", events.VerdictBlock), 2)
	if !e.w.Due() {
		t.Fatal("two verdicts with MaxPending 2: want Due")
	}
	e.w.Discard()
	if e.w.Len() != 0 || e.w.Due() {
		t.Fatalf("after Discard: Len %d, Due %v", e.w.Len(), e.w.Due())
	}
	res := flush(t, e.w)
	if res.Calls != 0 || len(res.Acked) != 0 || e.emu.Stats().Indicators != 0 {
		t.Fatalf("flush after Discard = %+v, indicators %d", res, e.emu.Stats().Indicators)
	}
}

// TestUpdateWithoutAttributeRead: a changed indicator gets its stale values deleted using the
// attribute ids consume returned, with no read-back, and ends up exactly as the new verdict says.
func TestUpdateWithoutAttributeRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 21, nil)
	v1 := verdict("203.0.113.7", events.VerdictAlert, "Open Port", "22", "Open Port", "80", "Country", "DE")
	e.w.Add(v1, 1)
	flush(t, e.w)
	v2 := verdict("203.0.113.7", events.VerdictAlert, "Open Port", "80", "Open Port", "443", "Country", "DE")
	v2.Priority, v2.Level = 9, "critical"
	v2.DecidedAt = t0.Add(time.Minute)
	e.w.Add(v2, 2)
	before := e.emu.Stats().Calls
	res := flush(t, e.w)
	after := e.emu.Stats().Calls
	if res.Written != 1 || len(res.Acked) != 1 {
		t.Fatalf("update flush = %+v", res)
	}
	if n := after["GET /api/indicators/{id}/attributes"]; n != 0 {
		t.Fatalf("attribute reads = %d, want 0", n)
	}
	// Stale: Open Port 22, Vigil Priority 8, Vigil Level high.
	if n := after["DELETE /api/indicators/{id}/attributes/{aid}"] - before["DELETE /api/indicators/{id}/attributes/{aid}"]; n != 3 {
		t.Fatalf("attribute deletes = %d, want 3", n)
	}
	total := 0
	for route, n := range after {
		total += n - before[route]
	}
	if total != 4 {
		t.Fatalf("API calls = %d, want consume + 3 deletes", total)
	}
	got, _ := e.emu.Lookup("IP Address", "203.0.113.7")
	for name, want := range map[string]string{"Open Port": "80,443", "Country": "DE", AttrPriority: "9", AttrLevel: "critical", AttrAction: "alert"} {
		if g := strings.Join(got.Attr(name), ","); g != want {
			t.Errorf("%s = %q, want %q", name, g, want)
		}
	}
}

// stripWith serves the emulator but drops ?with= from consume, like a server that ignores it.
type stripWith struct{ emu *tqemu.Server }

func (s stripWith) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/consume") {
		q := r.URL.Query()
		q.Del("with")
		r.URL.RawQuery = q.Encode()
	}
	s.emu.ServeHTTP(w, r)
}

func TestUpdateReadsAttributesWhenConsumeOmitsThem(t *testing.T) {
	t.Parallel()
	emu := tqemu.New(tqemu.Options{Seed: 22})
	srv := httptest.NewServer(stripWith{emu})
	t.Cleanup(srv.Close)
	o := emu.Options()
	tq, err := threatq.New(threatq.Config{BaseURL: srv.URL, ClientID: o.ClientID, Email: o.Email, Password: o.Password,
		AllowInsecureHTTP: true, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tq.Resolve(t.Context()); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{}, tq, NewMemoryStore(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(verdict("203.0.113.7", events.VerdictAlert, "Open Port", "22"), 1)
	flush(t, w)
	v2 := verdict("203.0.113.7", events.VerdictAlert, "Open Port", "443")
	v2.DecidedAt = t0.Add(time.Minute)
	w.Add(v2, 2)
	flush(t, w)
	if n := emu.Stats().Calls["GET /api/indicators/{id}/attributes"]; n != 1 {
		t.Fatalf("attribute reads = %d, want 1 (fallback)", n)
	}
	got, _ := emu.Lookup("IP Address", "203.0.113.7")
	if g := strings.Join(got.Attr("Open Port"), ","); g != "443" {
		t.Fatalf("Open Port = %q, want 443", g)
	}
}

// TestParallelUpdatesPartialFailure: indicators are finished in parallel; the ones whose calls
// fail stay pending while the others are acknowledged, and the next Flush completes them.
func TestParallelUpdatesPartialFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 23, func(c *Config) { c.MaxAttempts = 1; c.BreakerFailures = 100; c.Concurrency = 4 })
	e.emu.SetFault(tqemu.Faults{PathPrefix: "/api/indicator/", FailNext: 2, ErrorStatus: 503})
	for i := range 20 {
		v := verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictBlock)
		v.SetScore = true
		e.w.Add(v, i)
	}
	res, err := e.w.Flush(t.Context())
	if err == nil {
		t.Fatal("flush with two failing score calls: want an error")
	}
	if res.Written != 18 || len(res.Acked) != 18 || e.w.Len() != 2 {
		t.Fatalf("first flush = written %d acked %d pending %d, want 18/18/2", res.Written, len(res.Acked), e.w.Len())
	}
	res = flush(t, e.w)
	if res.Written != 2 || e.w.Len() != 0 {
		t.Fatalf("second flush = %+v, pending %d", res, e.w.Len())
	}
	for i := range 20 {
		got, ok := e.emu.Lookup("IP Address", fmt.Sprintf("198.51.100.%d", i+1))
		if !ok || got.ManualScore == nil || *got.ManualScore != 8 {
			t.Fatalf("indicator %d = %+v, want manual score 8", i+1, got)
		}
	}
}

// gatedConsume wraps the ThreatQ client: every consume call waits (up to a bound) until `want`
// consumes are in flight at once, records the highest concurrency seen, and can fail one call.
type gatedConsume struct {
	ThreatQ
	want              int32
	inFlight, maxSeen atomic.Int32
	calls             atomic.Int32
	failCall          int32 // 1-based consume call that fails permanently; 0 none
}

func (g *gatedConsume) gate(ctx context.Context) error {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for g.maxSeen.Load() < g.want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if g.calls.Add(1) == g.failCall {
		return &threatq.APIError{Status: http.StatusForbidden, Message: "forbidden by the test"}
	}
	return nil
}

func (g *gatedConsume) Consume(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error) {
	if err := g.gate(ctx); err != nil {
		return nil, err
	}
	return g.ThreatQ.Consume(ctx, ins)
}

func (g *gatedConsume) ConsumeWithAttributes(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error) {
	if err := g.gate(ctx); err != nil {
		return nil, err
	}
	return g.ThreatQ.ConsumeWithAttributes(ctx, ins)
}

func TestChunkConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		parallel int
		wantMax  int32
	}{
		{"sequential", 1, 1},
		{"four at a time", 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 31, nil)
			g := &gatedConsume{ThreatQ: e.tq, want: tc.wantMax}
			w, err := New(Config{BatchSize: 5, ChunkConcurrency: tc.parallel}, g, e.store, e.m, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 40 {
				w.Add(verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictAlert), i)
			}
			res := flush(t, w)
			if res.Written != 40 || len(res.Acked) != 40 || w.Len() != 0 {
				t.Fatalf("written %d acked %d pending %d, want 40/40/0", res.Written, len(res.Acked), w.Len())
			}
			if got := g.maxSeen.Load(); got != tc.wantMax {
				t.Fatalf("consume calls in flight at most %d, want %d", got, tc.wantMax)
			}
			if n := len(e.emu.Indicators()); n != 40 {
				t.Fatalf("stored = %d, want 40", n)
			}
		})
	}
}

func TestFailedChunkStaysPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 32, nil)
	g := &gatedConsume{ThreatQ: e.tq, failCall: 2}
	w, err := New(Config{BatchSize: 5, ChunkConcurrency: 1, MaxAttempts: 1, BreakerFailures: 100},
		g, e.store, e.m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		w.Add(verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictAlert), i)
	}
	res, err := w.Flush(t.Context())
	if err == nil {
		t.Fatal("flush with a failing consume: want an error")
	}
	// chunk 1 written, chunk 2 failed, chunk 3 not started after the failure
	if res.Written != 5 || len(res.Acked) != 5 || len(res.Dead) != 0 || w.Len() != 10 {
		t.Fatalf("first flush = written %d acked %d dead %d pending %d, want 5/5/0/10",
			res.Written, len(res.Acked), len(res.Dead), w.Len())
	}
	res = flush(t, w)
	if res.Written != 10 || len(res.Acked) != 10 || w.Len() != 0 {
		t.Fatalf("second flush = written %d acked %d pending %d, want 10/10/0", res.Written, len(res.Acked), w.Len())
	}
	if n := len(e.emu.Indicators()); n != 15 {
		t.Fatalf("stored = %d, want 15", n)
	}
}

// consumeLog records the size of every consume call, by whether it asked for attributes.
type consumeLog struct {
	ThreatQ
	mu          sync.Mutex
	plain, with []int
}

func (c *consumeLog) Consume(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error) {
	c.mu.Lock()
	c.plain = append(c.plain, len(ins))
	c.mu.Unlock()
	return c.ThreatQ.Consume(ctx, ins)
}

func (c *consumeLog) ConsumeWithAttributes(ctx context.Context, ins []threatq.Indicator) ([]threatq.Result, error) {
	c.mu.Lock()
	c.with = append(c.with, len(ins))
	c.mu.Unlock()
	return c.ThreatQ.ConsumeWithAttributes(ctx, ins)
}

// TestAttributeReadBackOnlyForReplacingUpdates: in a window that mixes new indicators and updates
// that change attributes, only the updates' consume asks ThreatQ for the attributes.
func TestAttributeReadBackOnlyForReplacingUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 33, nil)
	log := &consumeLog{ThreatQ: e.tq}
	w, err := New(Config{}, log, e.store, e.m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Add(verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictAlert, "Country", "DE"), i)
	}
	flush(t, w)
	for i := range 10 { // 5 updates with a new attribute value, 5 new indicators
		w.Add(verdict(fmt.Sprintf("198.51.100.%d", i+1), events.VerdictAlert, "Country", "NL"), i)
	}
	res := flush(t, w)
	if res.Written != 10 {
		t.Fatalf("written %d, want 10", res.Written)
	}
	if fmt.Sprint(log.plain) != "[5 5]" || fmt.Sprint(log.with) != "[5]" {
		t.Fatalf("consume sizes plain %v with attributes %v, want [5 5] and [5]", log.plain, log.with)
	}
	for i := range 10 {
		got, ok := e.emu.Lookup("IP Address", fmt.Sprintf("198.51.100.%d", i+1))
		if !ok {
			t.Fatalf("indicator %d missing", i+1)
		}
		var countries []string
		for _, a := range got.Attributes {
			if a.Name == "Country" {
				countries = append(countries, a.Value)
			}
		}
		if fmt.Sprint(countries) != "[NL]" {
			t.Fatalf("indicator %d Country = %v, want [NL] (stale value replaced)", i+1, countries)
		}
	}
}

// TestOmitAttributes: omitted names (any case) are not written, and the values an earlier write
// without the option left under them are deleted at the next update; other sources' values under
// an omitted name stay.
func TestOmitAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 7, nil)
	v := verdict("203.0.113.9", events.VerdictAlert, "Sightings", "3", "Sightings 24h", "3", "Country", "NL")
	e.w.Add(v, 1)
	flush(t, e.w)
	got, _ := e.emu.Lookup("IP Address", "203.0.113.9")
	if len(got.Attr("Sightings 24h")) != 1 {
		t.Fatalf("setup: %+v", got.Attributes)
	}
	if err := e.tq.AddAttribute(t.Context(), int64(got.ID), threatq.Attribute{Name: "Sightings 24h", Value: "99", Sources: []string{"Other Feed"}}); err != nil {
		t.Fatal(err)
	}

	// the same store and ThreatQ, a writer configured to omit two names
	w, err := New(Config{OmitAttributes: []string{"sightings 24h", " Vigil Reason "}}, e.tq, e.store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2 := verdict("203.0.113.9", events.VerdictAlert, "Sightings", "5", "Sightings 24h", "5", "Country", "NL")
	v2.DecidedAt = t0.Add(time.Minute)
	w.Add(v2, 2)
	if _, err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ = e.emu.Lookup("IP Address", "203.0.113.9")
	for name, want := range map[string]string{"Sightings": "5", "Sightings 24h": "99", AttrReason: "", "Country": "NL", AttrLevel: "high"} {
		if g := strings.Join(got.Attr(name), ","); g != want {
			t.Errorf("%s = %q, want %q", name, g, want)
		}
	}
}
