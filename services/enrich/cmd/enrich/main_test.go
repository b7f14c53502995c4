package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/config"
	"github.com/vigilsec/vigil/services/enrich/internal/otelmetrics"
)

type fakeBreakers map[string]string

func (f fakeBreakers) Providers() []string {
	return []string{"abuseipdb", "criminalip"}
}
func (f fakeBreakers) Breakers() map[string]string { return f }

type fakeQuota map[string]int64

func (f fakeQuota) Remaining(_ context.Context, p string) (int64, error) {
	n, ok := f[p]
	if !ok {
		return 0, errors.New("redis down")
	}
	return n, nil
}

func TestDebugHandler(t *testing.T) {
	m, err := otelmetrics.New(noop.NewMeterProvider().Meter("t"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"hit", "hit", "negative", "miss"} {
		m.CacheResult("criminalip", r, 1)
	}
	m.CacheResult("abuseipdb", "miss", 1)
	h := debugHandler(fakeBreakers{"criminalip": "open", "abuseipdb": "closed"}, fakeQuota{"abuseipdb": 990}, m, true)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/enrich", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var st debugState
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.SharedCache || len(st.Providers) != 2 {
		t.Fatalf("state %+v", st)
	}
	ab, cip := st.Providers[0], st.Providers[1]
	if ab.Provider != "abuseipdb" || ab.Breaker != "closed" || ab.QuotaRemaining != 990 || ab.CacheHitRatio != 0 {
		t.Errorf("abuseipdb %+v", ab)
	}
	if cip.Breaker != "open" || cip.QuotaError == "" || cip.QuotaRemaining != -1 || cip.CacheHitRatio != 0.75 || cip.Cache.Hit != 2 {
		t.Errorf("criminalip %+v", cip)
	}
	if st.CacheHitRatio != 0.6 {
		t.Errorf("overall hit ratio %v, want 0.6", st.CacheHitRatio)
	}
}

// The default configuration (no keys, no Redis, no offline files) builds and enriches: InternetDB and the
// offline provider are enabled, and the offline one reports skipped/no_data without its files.
func TestBuildDefaults(t *testing.T) {
	cfg, err := config.Load(envconf.New(envconf.FromMap(map[string]string{
		"VIGIL_ENRICH_OFFLINE_DIR":         t.TempDir(),
		"VIGIL_ENRICH_INTERNETDB_BASE_URL": "http://127.0.0.1:1", // nothing listens: the call fails fast
		"VIGIL_ENRICH_RETRY_ATTEMPTS":      "1",
	})))
	if err != nil {
		t.Fatal(err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(cfg, nil, serde, noop.NewMeterProvider().Meter("t"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.close() }()
	if got := a.enr.Providers(); len(got) != 2 || got[0] != "internetdb" || got[1] != "offline" {
		t.Fatalf("providers %v", got)
	}
	if a.store.Shared() {
		t.Fatal("no Redis configured but the cache says shared")
	}
	out, err := a.enr.EnrichBatch(t.Context(), []events.Observation{{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "45.33.32.156"}}})
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]events.ProviderResult{}
	for _, r := range out[0].Results {
		st[r.Provider] = r
	}
	if r := st["offline"]; r.Status != events.StatusSkipped || r.Error != "no_data" {
		t.Errorf("offline %+v", r)
	}
	if r := st["internetdb"]; r.Status != events.StatusError {
		t.Errorf("internetdb against a closed port: %+v", r)
	}
}
