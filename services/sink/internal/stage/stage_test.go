package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

type harness struct {
	emu    *tqemu.Server
	tq     *threatq.Client
	w      *writer.Writer
	st     *Stage
	serde  *events.Serde
	triage *countRecorder
}

type countRecorder struct {
	mu  sync.Mutex
	got []time.Duration
}

func (c *countRecorder) TriageLatency(d time.Duration) {
	c.mu.Lock()
	c.got = append(c.got, d)
	c.mu.Unlock()
}

func (c *countRecorder) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

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

func newHarness(t testing.TB, mutate func(*writer.Config)) *harness {
	t.Helper()
	emu := tqemu.New(tqemu.Options{Seed: 3})
	h := &harness{emu: emu, tq: newClient(t, emu), triage: &countRecorder{}}
	cfg := writer.Config{RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond, MaxAttempts: 2,
		BreakerFailures: 50, BreakerOpenFor: 100 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := writer.New(cfg, h.tq, writer.NewMemoryStore(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	h.serde = serde
	h.st = New(w, serde, h.triage, slog.New(slog.DiscardHandler))
	return h
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func verdict(value string, prio int32) events.Verdict {
	return events.Verdict{
		Indicator: events.Indicator{Type: events.TypeIPv4, Value: value},
		Priority:  prio, Level: "high", Action: events.VerdictBlock,
		Reasons:   []events.Reason{{Code: "criminalip.inbound"}},
		Sources:   []string{"criminalip"},
		EventTime: t0.Add(-time.Minute),
		DecidedAt: t0.Add(time.Duration(prio) * time.Second),
	}
}

func (h *harness) records(t testing.TB, vs ...events.Verdict) []*kgo.Record {
	t.Helper()
	out := make([]*kgo.Record, len(vs))
	for i := range vs {
		b, err := h.serde.EncodeVerdict(&vs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &kgo.Record{Topic: "indicators.verdicts", Key: []byte(vs[i].Indicator.Key()), Value: b, Offset: int64(i)}
	}
	return out
}

func permanentClass(err error) string {
	var pe *stream.PermanentError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}

func TestHandleWritesWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	recs := h.records(t, verdict("203.0.113.1", 5), verdict("203.0.113.2", 6), verdict("203.0.113.1", 8))
	recs = append(recs, &kgo.Record{Topic: "indicators.verdicts", Value: []byte("not avro")})
	res, err := h.st.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results for 4 records", len(res))
	}
	for i := range 3 {
		if res[i].Err != nil || len(res[i].Outputs) != 0 {
			t.Errorf("result %d = %+v, want done without outputs", i, res[i])
		}
	}
	if permanentClass(res[3].Err) != ClassDecode {
		t.Errorf("garbage record: err %v, want permanent %q", res[3].Err, ClassDecode)
	}
	if n := h.emu.Stats().Indicators; n != 2 {
		t.Fatalf("emulator holds %d indicators, want 2", n)
	}
	got, _ := h.emu.Lookup("IP Address", "203.0.113.1")
	if p := got.Attr(writer.AttrPriority); len(p) != 1 || p[0] != "8" {
		t.Errorf("203.0.113.1 priority = %v, want the latest verdict's [8]", p)
	}
	if h.triage.n() != 3 {
		t.Errorf("triage latency observed %d times, want 3", h.triage.n())
	}
	d := h.st.Debug()
	if d.LastFlush == nil || d.LastFlush.Written != 2 || d.LastFlush.Decode != 1 || d.Pending != 0 || d.Breaker != "closed" {
		t.Errorf("debug = %+v last %+v", d, d.LastFlush)
	}
}

func TestHandleInvalidRecordIsPermanent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	recs := h.records(t, verdict("203.0.113.10", 5), verdict("300.1.2.3", 5), verdict("203.0.113.11", 5))
	res, err := h.st.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("valid records: %v / %v", res[0].Err, res[2].Err)
	}
	if permanentClass(res[1].Err) != ClassValidation || !strings.Contains(res[1].Err.Error(), "valid IPv4") {
		t.Fatalf("invalid record err = %v, want %s with ThreatQ's text", res[1].Err, ClassValidation)
	}
	if n := h.emu.Stats().Indicators; n != 2 {
		t.Fatalf("emulator holds %d indicators, want 2", n)
	}
}

func TestHandlePausesWhenThreatQDownAndKeepsNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *writer.Config) { c.BreakerFailures = 3 })
	recs := h.records(t, verdict("203.0.113.20", 5), verdict("203.0.113.21", 5))
	h.emu.SetFault(tqemu.Faults{Down: true})
	res, err := h.st.Handle(t.Context(), recs)
	if !errors.Is(err, stream.ErrPause) || res != nil {
		t.Fatalf("Handle while down = %v, %v; want ErrPause and no results", res, err)
	}
	if h.w.Len() != 0 || h.st.Debug().Pending != 0 {
		t.Fatalf("pending after pause: writer %d, stage %d", h.w.Len(), h.st.Debug().Pending)
	}
	// Second window: the breaker opens (3 consecutive failures); the third is refused before decoding.
	if _, err := h.st.Handle(t.Context(), recs); !errors.Is(err, stream.ErrPause) {
		t.Fatalf("second Handle = %v, want ErrPause", err)
	}
	if h.w.BreakerState() != "open" {
		t.Fatalf("breaker %s, want open", h.w.BreakerState())
	}
	calls := h.emu.Stats().Calls["POST /api/indicators/consume"]
	if _, err := h.st.Handle(t.Context(), recs); !errors.Is(err, stream.ErrPause) {
		t.Fatalf("Handle with open breaker = %v, want ErrPause", err)
	}
	if got := h.emu.Stats().Calls["POST /api/indicators/consume"]; got != calls {
		t.Fatalf("open breaker still called ThreatQ (%d -> %d)", calls, got)
	}
	if h.emu.Stats().Indicators != 0 {
		t.Fatal("indicators written while down")
	}

	// Recovery: the same records are re-delivered and written.
	h.emu.ClearFaults()
	time.Sleep(150 * time.Millisecond) // BreakerOpenFor
	res, err = h.st.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("record %d after recovery: %v", i, r.Err)
		}
	}
	if h.emu.Stats().Indicators != 2 || h.st.Debug().Pauses != 3 {
		t.Fatalf("after recovery: %d indicators, %d pauses", h.emu.Stats().Indicators, h.st.Debug().Pauses)
	}
}

func TestHandleAllUndecodable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	res, err := h.st.Handle(t.Context(), []*kgo.Record{{Value: []byte{0xC3, 0x01, 1}}})
	if err != nil || len(res) != 1 || permanentClass(res[0].Err) != ClassDecode {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	if c := h.emu.Stats().Calls["POST /api/indicators/consume"]; c != 0 {
		t.Fatalf("%d consume calls for a window without verdicts", c)
	}
}

func TestDebugHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if _, err := h.st.Handle(t.Context(), h.records(t, verdict("203.0.113.30", 5))); err != nil {
		t.Fatal(err)
	}
	rw := httptest.NewRecorder()
	h.st.DebugHandler().ServeHTTP(rw, httptest.NewRequest("GET", "/debug/sink", nil))
	var d Debug
	if err := json.Unmarshal(rw.Body.Bytes(), &d); err != nil {
		t.Fatalf("body %q: %v", rw.Body.String(), err)
	}
	if d.Breaker != "closed" || d.Flushes != 1 || d.LastFlush == nil || d.LastFlush.Written != 1 || d.LastFlush.Calls == 0 {
		t.Fatalf("debug = %+v", d)
	}
}

type fakeProducer struct {
	err  error
	recs []*kgo.Record
}

func (f *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r, Err: f.err}
	}
	if f.err == nil {
		f.recs = append(f.recs, rs...)
	}
	return out
}

type kindCounter map[string]int

func (k kindCounter) Feedback(kind string) { k[kind]++ }

func TestFeedbackPublisher(t *testing.T) {
	t.Parallel()
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	fbs := []events.Feedback{
		{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.7"}, Kind: "status_changed", NewStatus: "Whitelisted", NewScore: -1, ChangedAt: t0},
		{Indicator: events.Indicator{Type: events.TypeDomain, Value: "example.org"}, Kind: "score_changed", NewScore: 2, ChangedAt: t0},
	}
	p, kinds := &fakeProducer{}, kindCounter{}
	if err := FeedbackPublisher(p, "indicators.feedback", serde, kinds)(t.Context(), fbs); err != nil {
		t.Fatal(err)
	}
	if len(p.recs) != 2 || string(p.recs[0].Key) != "ipv4:203.0.113.7" || p.recs[1].Topic != "indicators.feedback" {
		t.Fatalf("produced %+v", p.recs)
	}
	got, err := serde.DecodeFeedback(t.Context(), p.recs[0].Value)
	if err != nil || got.NewStatus != "Whitelisted" || got.Kind != "status_changed" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if kinds["status_changed"] != 1 || kinds["score_changed"] != 1 {
		t.Fatalf("kinds = %v", kinds)
	}

	failing, none := &fakeProducer{err: fmt.Errorf("broker down")}, kindCounter{}
	if err := FeedbackPublisher(failing, "t", serde, none)(t.Context(), fbs); err == nil || len(none) != 0 {
		t.Fatalf("failed produce: err %v, counted %v", err, none)
	}
}

func TestMetricsNamesAndValues(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m, err := NewMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	m.Written(3)
	m.Skipped(2)
	m.DeadLettered(1)
	m.Call("consume", 10*time.Millisecond, nil)
	m.Call("consume", 10*time.Millisecond, &threatq.APIError{Op: "consume", Status: 503})
	m.Call("consume", 20*time.Millisecond, nil) // a repeat takes the cached attribute sets
	m.Call("delete_attribute", 5*time.Millisecond, nil)
	m.BreakerState("open")
	m.Feedback("status_changed")
	m.TriageLatency(90 * time.Second)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			got[mt.Name] = mt.Data
		}
	}
	sum := func(name string) int64 {
		s, ok := got[name].(metricdata.Sum[int64])
		if !ok {
			t.Fatalf("%s missing or not an int64 sum", name)
		}
		var n int64
		for _, dp := range s.DataPoints {
			n += dp.Value
		}
		return n
	}
	want := map[string]int64{MetricWrites: 3, MetricNoopSkips: 2, MetricDeadLettered: 1, MetricCalls: 4, MetricFeedback: 1}
	for name, n := range want {
		if g := sum(name); g != n {
			t.Errorf("%s = %d, want %d", name, g, n)
		}
	}
	calls := got[MetricCalls].(metricdata.Sum[int64])
	results := map[string]bool{}
	for _, dp := range calls.DataPoints {
		v, _ := dp.Attributes.Value("result")
		results[v.AsString()] = true
	}
	if !results["ok"] || !results["unavailable"] {
		t.Errorf("call results = %v", results)
	}
	per := map[string]int64{}
	for _, dp := range calls.DataPoints {
		op, _ := dp.Attributes.Value("op")
		res, _ := dp.Attributes.Value("result")
		per[op.AsString()+"/"+res.AsString()] += dp.Value
	}
	if want := map[string]int64{"consume/ok": 2, "consume/unavailable": 1, "delete_attribute/ok": 1}; !maps.Equal(per, want) {
		t.Errorf("calls by op/result = %v, want %v", per, want)
	}
	g, ok := got[MetricBreakerState].(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value != 2 {
		t.Errorf("breaker gauge = %+v", got[MetricBreakerState])
	}
	for _, name := range []string{MetricLatency, MetricTriageLatency} {
		hist, ok := got[name].(metricdata.Histogram[float64])
		if !ok || len(hist.DataPoints) == 0 || hist.DataPoints[0].Count == 0 {
			t.Errorf("%s = %+v", name, got[name])
		}
	}
}

func TestCallResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&threatq.APIError{Status: 400}, "validation"},
		{&threatq.APIError{Status: 401}, "unauthorized"},
		{&threatq.APIError{Status: 429}, "rate_limited"},
		{&threatq.APIError{Status: 0}, "unavailable"},
		{&threatq.APIError{Status: 502}, "unavailable"},
		{fmt.Errorf("x: %w", context.Canceled), "canceled"},
		{errors.New("boom"), "error"},
	}
	for _, tt := range tests {
		if got := CallResult(tt.err); got != tt.want {
			t.Errorf("CallResult(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// BenchmarkMetricsCall measures recording one ThreatQ call (counter and
// latency histogram) with a real SDK meter provider.
func BenchmarkMetricsCall(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	m, err := NewMetrics(mp.Meter("bench"))
	if err != nil {
		b.Fatal(err)
	}
	ops := []string{"consume", "delete_attribute", "set_score"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Call(ops[i%len(ops)], time.Millisecond, nil)
		i++
	}
}
