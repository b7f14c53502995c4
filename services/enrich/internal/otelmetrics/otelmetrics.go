// Package otelmetrics records the enrich service's measurements on OpenTelemetry instruments. It implements
// enricher.Metrics (cache, provider calls, quota, breaker, freshness) and counts what the stage emits
// (provider results, coverage gaps). It also keeps a small in-process summary for the /debug/enrich page.
//
// Names as exported to Prometheus (OTel counters gain the _total suffix there):
//
//	vigil_enrich_cache_total{provider,result}            batch cache lookups; result = hit | negative (a cached
//	                                                      "no data") | miss | stale (older than the configured TTL)
//	vigil_enrich_provider_calls_total{provider,status}   provider call attempts; status = ok | not_found | an error
//	                                                      class (unavailable, timeout, auth, bad_response,
//	                                                      invalid_input, rate_limited, quota_exhausted, breaker_open, …)
//	vigil_enrich_provider_latency_seconds{provider}      duration of one provider call attempt (histogram)
//	vigil_enrich_quota_remaining{provider}               calls left in the tightest quota window after the last
//	                                                      granted call (gauge; absent for providers without a quota)
//	vigil_enrich_breaker_state{provider}                 circuit breaker: 0 closed, 1 half-open, 2 open (gauge)
//	vigil_enrich_age_seconds{provider}                   age of a provider answer when it was used in an
//	                                                      enrichment: freshness at use (histogram)
//	vigil_enrich_provider_results_total{provider,status} provider results in emitted enrichments; status = ok |
//	                                                      not_found | error | skipped | breaker_open | rate_limited
//	vigil_enrich_coverage_gaps_total{provider,country}   emitted results where the provider had no data
//	                                                      (status not_found); country from the merged exposure,
//	                                                      "unknown" when no provider knew it
package otelmetrics

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
)

// Instrument names (as created on the meter; Prometheus adds _total to the counters).
const (
	NameCache           = "vigil_enrich_cache"
	NameProviderCalls   = "vigil_enrich_provider_calls"
	NameProviderLatency = "vigil_enrich_provider_latency_seconds"
	NameQuotaRemaining  = "vigil_enrich_quota_remaining"
	NameBreakerState    = "vigil_enrich_breaker_state"
	NameAge             = "vigil_enrich_age_seconds"
	NameProviderResults = "vigil_enrich_provider_results"
	NameCoverageGaps    = "vigil_enrich_coverage_gaps"
)

// Breaker state values of vigil_enrich_breaker_state.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// CountryUnknown is the country label of a coverage gap when the merged exposure has no country.
const CountryUnknown = "unknown"

// Cache lookup results (the result label of vigil_enrich_cache_total).
const (
	CacheHit      = "hit"
	CacheNegative = "negative"
	CacheMiss     = "miss"
	CacheStale    = "stale"
)

var (
	latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// seconds: 1s … 30 days; entries live up to their TTL (24h by default)
	ageBuckets = []float64{1, 10, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 24 * 3600, 30 * 24 * 3600}
)

// Metrics implements enricher.Metrics on OpenTelemetry instruments. It is safe for concurrent use.
type Metrics struct {
	cache    metric.Int64Counter
	calls    metric.Int64Counter
	latency  metric.Float64Histogram
	quota    metric.Int64Gauge
	breaker  metric.Int64Gauge
	age      metric.Float64Histogram
	results  metric.Int64Counter
	gaps     metric.Int64Counter
	attrMu   sync.RWMutex
	attrSets map[attrKey]metric.MeasurementOption

	mu    sync.Mutex
	state map[string]*providerState
}

var _ enricher.Metrics = (*Metrics)(nil)

type providerState struct {
	breaker string
	quota   int64 // -1: unknown / no quota
	cache   map[string]int64
}

// New creates the instruments on meter.
func New(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{state: map[string]*providerState{}, attrSets: map[attrKey]metric.MeasurementOption{}}
	var err error
	if m.cache, err = meter.Int64Counter(NameCache, metric.WithDescription("Enrichment cache lookups per provider: hit, negative (cached no-data), miss, stale.")); err != nil {
		return nil, err
	}
	if m.calls, err = meter.Int64Counter(NameProviderCalls, metric.WithDescription("Provider call attempts by outcome: ok, not_found or an error class.")); err != nil {
		return nil, err
	}
	if m.latency, err = meter.Float64Histogram(NameProviderLatency, metric.WithDescription("Duration of one provider call attempt."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return nil, err
	}
	if m.quota, err = meter.Int64Gauge(NameQuotaRemaining, metric.WithDescription("Calls left in the provider's tightest quota window after the last granted call.")); err != nil {
		return nil, err
	}
	if m.breaker, err = meter.Int64Gauge(NameBreakerState, metric.WithDescription("Provider circuit breaker state: 0 closed, 1 half-open, 2 open.")); err != nil {
		return nil, err
	}
	if m.age, err = meter.Float64Histogram(NameAge, metric.WithDescription("Age of a provider answer when used in an enrichment (freshness at use)."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(ageBuckets...)); err != nil {
		return nil, err
	}
	if m.results, err = meter.Int64Counter(NameProviderResults, metric.WithDescription("Provider results in emitted enrichments, by status.")); err != nil {
		return nil, err
	}
	if m.gaps, err = meter.Int64Counter(NameCoverageGaps, metric.WithDescription("Emitted provider results without data (not_found), by provider and country of the indicator.")); err != nil {
		return nil, err
	}
	return m, nil
}

// attrKey identifies one cached attribute option (a comparable struct: looking it up allocates nothing).
type attrKey struct{ provider, key, value string }

// attrs returns the (cached) attribute option {provider, key=value}; key "" means provider only.
func (m *Metrics) attrs(provider, key, value string) metric.MeasurementOption {
	id := attrKey{provider, key, value}
	m.attrMu.RLock()
	o, ok := m.attrSets[id]
	m.attrMu.RUnlock()
	if ok {
		return o
	}
	kvs := []attribute.KeyValue{attribute.String("provider", provider)}
	if key != "" {
		kvs = append(kvs, attribute.String(key, value))
	}
	o = metric.WithAttributeSet(attribute.NewSet(kvs...))
	m.attrMu.Lock()
	m.attrSets[id] = o
	m.attrMu.Unlock()
	return o
}

// stateOf returns the provider's summary; the caller holds m.mu.
func (m *Metrics) stateOf(provider string) *providerState {
	s, ok := m.state[provider]
	if !ok {
		s = &providerState{quota: -1, cache: map[string]int64{}}
		m.state[provider] = s
	}
	return s
}

// CacheResult implements enricher.Metrics.
func (m *Metrics) CacheResult(provider, result string, n int64) {
	if n <= 0 {
		return
	}
	m.cache.Add(context.Background(), n, m.attrs(provider, "result", result))
	m.mu.Lock()
	m.stateOf(provider).cache[result] += n
	m.mu.Unlock()
}

// ProviderCall implements enricher.Metrics.
func (m *Metrics) ProviderCall(provider, status string, d time.Duration) {
	ctx := context.Background()
	m.calls.Add(ctx, 1, m.attrs(provider, "status", status))
	m.latency.Record(ctx, d.Seconds(), m.attrs(provider, "", ""))
}

// Quota implements enricher.Metrics.
func (m *Metrics) Quota(provider string, remaining int64) {
	m.quota.Record(context.Background(), remaining, m.attrs(provider, "", ""))
	m.mu.Lock()
	m.stateOf(provider).quota = remaining
	m.mu.Unlock()
}

// Breaker implements enricher.Metrics.
func (m *Metrics) Breaker(provider, state string) {
	v := int64(BreakerClosed)
	switch state {
	case "half-open":
		v = BreakerHalfOpen
	case "open":
		v = BreakerOpen
	}
	m.breaker.Record(context.Background(), v, m.attrs(provider, "", ""))
	m.mu.Lock()
	m.stateOf(provider).breaker = state
	m.mu.Unlock()
}

// Age implements enricher.Metrics.
func (m *Metrics) Age(provider string, d time.Duration) {
	m.age.Record(context.Background(), max(0, d.Seconds()), m.attrs(provider, "", ""))
}

// Enriched counts the provider results and coverage gaps of a batch of emitted enrichments. Counts are
// summed per label set first, so the instruments see one Add per (provider, status) and (provider,
// country) of the batch rather than one per result.
func (m *Metrics) Enriched(ctx context.Context, ens []events.Enrichment) {
	type label struct{ provider, key, value string }
	type count struct {
		label
		n int64
	}
	var buf [32]count
	counts := buf[:0]
	add := func(l label) {
		for i := range counts {
			if counts[i].label == l {
				counts[i].n++
				return
			}
		}
		counts = append(counts, count{l, 1})
	}
	for i := range ens {
		en := &ens[i]
		country := en.Exposure.Country
		if country == "" {
			country = CountryUnknown
		}
		for j := range en.Results {
			r := &en.Results[j]
			add(label{r.Provider, "status", r.Status})
			if r.Status == events.StatusNotFound {
				add(label{r.Provider, "country", country})
			}
		}
	}
	for _, c := range counts {
		inst := m.results
		if c.key == "country" {
			inst = m.gaps
		}
		inst.Add(ctx, c.n, m.attrs(c.provider, c.key, c.value))
	}
}

// EnrichedRepeats counts n results of provider with status, in emitted enrichments whose exposure country is
// country (records the enrich stage served from its record cache), as Enriched counts them one by one.
func (m *Metrics) EnrichedRepeats(ctx context.Context, provider, status, country string, n int64) {
	if n <= 0 {
		return
	}
	m.results.Add(ctx, n, m.attrs(provider, "status", status))
	if status == events.StatusNotFound {
		if country == "" {
			country = CountryUnknown
		}
		m.gaps.Add(ctx, n, m.attrs(provider, "country", country))
	}
}

// CacheCounts are a provider's cache lookups since start, by result.
type CacheCounts struct {
	Hit      int64 `json:"hit"`
	Negative int64 `json:"negative"`
	Miss     int64 `json:"miss"`
	Stale    int64 `json:"stale"`
}

// HitRatio is (hit + negative) / all lookups, 0 when there were none.
func (c CacheCounts) HitRatio() float64 {
	total := c.Hit + c.Negative + c.Miss + c.Stale
	if total == 0 {
		return 0
	}
	return float64(c.Hit+c.Negative) / float64(total)
}

// ProviderSummary is one provider's state as last reported to this process.
type ProviderSummary struct {
	Provider string      `json:"provider"`
	Breaker  string      `json:"breaker"`         // last reported breaker state
	Quota    int64       `json:"quota_remaining"` // -1: no quota or no call yet
	Cache    CacheCounts `json:"cache"`
}

// Summary returns every provider's state seen by this process, sorted by provider.
func (m *Metrics) Summary() []ProviderSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ProviderSummary, 0, len(m.state))
	for name, s := range m.state {
		out = append(out, ProviderSummary{Provider: name, Breaker: s.breaker, Quota: s.quota, Cache: CacheCounts{
			Hit: s.cache[CacheHit], Negative: s.cache[CacheNegative], Miss: s.cache[CacheMiss], Stale: s.cache[CacheStale],
		}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}
