package enricher

import (
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// benchBatch is a poll-sized batch of 500 records over 250 distinct public IPs.
func benchBatch() []events.Observation {
	obs := make([]events.Observation, 500)
	for i := range obs {
		obs[i] = ip(fmt.Sprintf("45.33.%d.%d", 40+i%250/200, i%250%200+1))
	}
	return obs
}

// runWarm enriches the batch once to fill the cache, then measures warm batches and reports records/s.
func runWarm(b *testing.B, store *cache.Store) {
	provs := []provider.Provider{&fakeProvider{name: "criminalip"}, &fakeProvider{name: "internetdb"}, &fakeProvider{name: "offline"}}
	cfg := Config{Providers: map[string]ProviderConfig{}}
	for _, p := range provs {
		cfg.Providers[p.Name()] = ProviderConfig{Enabled: true}
	}
	e, err := New(cfg, provs, store, limit.New(nil), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	obs := benchBatch()
	if _, err := e.EnrichBatch(b.Context(), obs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.EnrichBatch(b.Context(), obs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(obs))/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkEnrichBatchWarmL1(b *testing.B) {
	runWarm(b, cache.New(cache.Config{}, nil, nil))
}
