package otelmetrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/vigilsec/vigil/pkg/events"
)

// newProm returns Metrics exported to a fresh Prometheus registry, as the service does.
func newProm(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(t.Context()) })
	m, err := New(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// sample finds the metric family name with exactly the given labels and returns its value (counter,
// gauge, or histogram sample count).
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mm := range f.GetMetric() {
			if !sameLabels(mm.GetLabel(), labels) {
				continue
			}
			switch {
			case mm.Counter != nil:
				return mm.Counter.GetValue(), true
			case mm.Gauge != nil:
				return mm.Gauge.GetValue(), true
			case mm.Histogram != nil:
				return float64(mm.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, l := range got {
		if strings.HasPrefix(l.GetName(), "otel_") {
			continue
		}
		n++
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return n == len(want)
}

func TestExportedNamesAndValues(t *testing.T) {
	m, reg := newProm(t)
	m.CacheResult("criminalip", CacheHit, 1)
	m.CacheResult("criminalip", CacheHit, 1)
	m.CacheResult("criminalip", CacheMiss, 1)
	m.ProviderCall("criminalip", "ok", 120*time.Millisecond)
	m.ProviderCall("criminalip", "unavailable", 2*time.Second)
	m.Quota("abuseipdb", 997)
	m.Breaker("criminalip", "closed")
	m.Breaker("criminalip", "open")
	m.Breaker("internetdb", "half-open")
	m.Age("internetdb", 90*time.Minute)
	m.Enriched(t.Context(), []events.Enrichment{{
		Results: []events.ProviderResult{
			{Provider: "criminalip", Status: events.StatusOK},
			{Provider: "internetdb", Status: events.StatusNotFound},
			{Provider: "greynoise", Status: events.StatusNotFound},
		},
		Exposure: events.Exposure{Country: "DE"},
	}, {Results: []events.ProviderResult{{Provider: "internetdb", Status: events.StatusNotFound}}}})
	// record-cache repeats add to the same series
	m.EnrichedRepeats(t.Context(), "criminalip", events.StatusOK, "", 5)
	m.EnrichedRepeats(t.Context(), "greynoise", events.StatusNotFound, "DE", 3)
	m.EnrichedRepeats(t.Context(), "greynoise", events.StatusNotFound, "", 0)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vigil_enrich_cache_total", map[string]string{"provider": "criminalip", "result": "hit"}, 2},
		{"vigil_enrich_cache_total", map[string]string{"provider": "criminalip", "result": "miss"}, 1},
		{"vigil_enrich_provider_calls_total", map[string]string{"provider": "criminalip", "status": "unavailable"}, 1},
		{"vigil_enrich_provider_latency_seconds", map[string]string{"provider": "criminalip"}, 2},
		{"vigil_enrich_quota_remaining", map[string]string{"provider": "abuseipdb"}, 997},
		{"vigil_enrich_breaker_state", map[string]string{"provider": "criminalip"}, BreakerOpen},
		{"vigil_enrich_breaker_state", map[string]string{"provider": "internetdb"}, BreakerHalfOpen},
		{"vigil_enrich_age_seconds", map[string]string{"provider": "internetdb"}, 1},
		{"vigil_enrich_provider_results_total", map[string]string{"provider": "internetdb", "status": "not_found"}, 2},
		{"vigil_enrich_provider_results_total", map[string]string{"provider": "criminalip", "status": "ok"}, 6},
		{"vigil_enrich_provider_results_total", map[string]string{"provider": "greynoise", "status": "not_found"}, 4},
		{"vigil_enrich_coverage_gaps_total", map[string]string{"provider": "internetdb", "country": "DE"}, 1},
		{"vigil_enrich_coverage_gaps_total", map[string]string{"provider": "internetdb", "country": CountryUnknown}, 1},
		{"vigil_enrich_coverage_gaps_total", map[string]string{"provider": "greynoise", "country": "DE"}, 4},
	}
	for _, tt := range tests {
		got, ok := sample(t, reg, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v not exported", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := sample(t, reg, "vigil_enrich_coverage_gaps_total", map[string]string{"provider": "criminalip", "country": "DE"}); ok {
		t.Error("an ok result counted as a coverage gap")
	}
}

func TestSummary(t *testing.T) {
	m, _ := newProm(t)
	m.Breaker("internetdb", "closed")
	m.CacheResult("internetdb", CacheHit, 1)
	m.CacheResult("internetdb", CacheNegative, 1)
	m.CacheResult("internetdb", CacheMiss, 1)
	m.CacheResult("internetdb", CacheStale, 1)
	m.Breaker("criminalip", "open")
	m.Quota("criminalip", 5)
	s := m.Summary()
	if len(s) != 2 || s[0].Provider != "criminalip" || s[1].Provider != "internetdb" {
		t.Fatalf("summary %+v", s)
	}
	if s[0].Breaker != "open" || s[0].Quota != 5 || s[1].Quota != -1 {
		t.Fatalf("summary %+v", s)
	}
	if r := s[1].Cache.HitRatio(); r != 0.5 {
		t.Fatalf("hit ratio %v, want 0.5", r)
	}
	if r := (CacheCounts{}).HitRatio(); r != 0 {
		t.Fatalf("empty hit ratio %v", r)
	}
}
