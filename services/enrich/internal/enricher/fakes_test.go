package enricher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// fakeProvider counts calls and answers through fn (default: found with a small exposure).
type fakeProvider struct {
	name  string
	types []string // nil: every type
	delay time.Duration

	mu    sync.Mutex
	fn    func(n int, ind events.Indicator) (provider.Result, error)
	calls []time.Time
	seen  []events.Indicator
}

func (f *fakeProvider) Name() string { return f.name }

func (f *fakeProvider) Supports(t string) bool {
	if f.types == nil {
		return true
	}
	for _, x := range f.types {
		if x == t {
			return true
		}
	}
	return false
}

func (f *fakeProvider) Lookup(ctx context.Context, ind events.Indicator) (provider.Result, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, time.Now())
	f.seen = append(f.seen, ind)
	fn := f.fn
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return provider.Result{}, fmt.Errorf("lookup: %w", ctx.Err())
		}
	}
	if fn == nil {
		return provider.Result{Found: true, Fields: map[string]string{"from": f.name}, Exposure: events.Exposure{InboundScore: 3}}, nil
	}
	return fn(n, ind)
}

func (f *fakeProvider) setFn(fn func(n int, ind events.Indicator) (provider.Result, error)) {
	f.mu.Lock()
	f.fn = fn
	f.mu.Unlock()
}

func (f *fakeProvider) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeProvider) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// fakeMetrics records every measurement.
type fakeMetrics struct {
	mu       sync.Mutex
	cache    map[string]int // provider/result
	calls    map[string]int // provider/status
	quota    map[string]int64
	breakers []string // provider/state in order
	ages     map[string][]time.Duration
}

func newFakeMetrics() *fakeMetrics {
	return &fakeMetrics{cache: map[string]int{}, calls: map[string]int{}, quota: map[string]int64{}, ages: map[string][]time.Duration{}}
}

func (m *fakeMetrics) CacheResult(p, r string, n int64) {
	m.mu.Lock()
	m.cache[p+"/"+r] += int(n)
	m.mu.Unlock()
}
func (m *fakeMetrics) ProviderCall(p, s string, _ time.Duration) {
	m.mu.Lock()
	m.calls[p+"/"+s]++
	m.mu.Unlock()
}
func (m *fakeMetrics) Quota(p string, n int64) { m.mu.Lock(); m.quota[p] = n; m.mu.Unlock() }
func (m *fakeMetrics) Breaker(p, s string) {
	m.mu.Lock()
	m.breakers = append(m.breakers, p+"/"+s)
	m.mu.Unlock()
}
func (m *fakeMetrics) Age(p string, d time.Duration) {
	m.mu.Lock()
	m.ages[p] = append(m.ages[p], d)
	m.mu.Unlock()
}

func (m *fakeMetrics) lastBreaker(p string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.breakers) - 1; i >= 0; i-- {
		if s, ok := strings.CutPrefix(m.breakers[i], p+"/"); ok {
			return s
		}
	}
	return ""
}

// countingCache wraps a Cache and counts batch lookups.
type countingCache struct {
	Cache
	mu      sync.Mutex
	getMany int
}

func (c *countingCache) GetMany(ctx context.Context, keys []string) (map[string]cache.Entry, error) {
	c.mu.Lock()
	c.getMany++
	c.mu.Unlock()
	return c.Cache.GetMany(ctx, keys)
}

func ip(v string) events.Observation {
	return events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: v}}
}

// fastRetry keeps unit tests quick.
var fastRetry = RetryConfig{MaxAttempts: 1, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 5 * time.Second}

type setup struct {
	cfg     Config
	provs   []provider.Provider
	store   *cache.Store
	metrics *fakeMetrics
}

func newEnricher(t *testing.T, s setup) (*Enricher, *fakeMetrics) {
	t.Helper()
	if s.store == nil {
		s.store = cache.New(cache.Config{L1Size: 1000}, nil, nil)
	}
	if s.metrics == nil {
		s.metrics = newFakeMetrics()
	}
	if s.cfg.Retry == (RetryConfig{}) {
		s.cfg.Retry = fastRetry
	}
	e, err := New(s.cfg, s.provs, s.store, limit.New(nil), nil, s.metrics)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return e, s.metrics
}

func enabled(pc ProviderConfig) ProviderConfig { pc.Enabled = true; return pc }

func result(t *testing.T, en events.Enrichment, name string) events.ProviderResult {
	t.Helper()
	for _, r := range en.Results {
		if r.Provider == name {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", name, en.Results)
	return events.ProviderResult{}
}

func batch(t *testing.T, e *Enricher, obs ...events.Observation) []events.Enrichment {
	t.Helper()
	out, err := e.EnrichBatch(t.Context(), obs)
	if err != nil {
		t.Fatalf("enrich: %v", err)
	}
	if len(out) != len(obs) {
		t.Fatalf("%d enrichments for %d observations", len(out), len(obs))
	}
	return out
}
