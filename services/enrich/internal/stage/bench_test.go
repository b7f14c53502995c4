package stage

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// BenchmarkHandleWarmCache measures the handler alone (decode, one EnrichBatch served from the in-process
// cache, merge, encode) for 500-record batches over 200 distinct IPs and three providers.
func BenchmarkHandleWarmCache(b *testing.B) {
	s := testSerde(b)
	provs := []provider.Provider{&fakeProvider{name: "criminalip"}, &fakeProvider{name: "internetdb"}, &fakeProvider{name: "offline"}}
	h := New(Config{OutTopic: "indicators.enriched"}, newEnricher(b, nil, provs...), s, &recorder{}, nil)
	recs := make([]*kgo.Record, 500)
	for i := range recs {
		recs[i] = record(b, s, observation(fmt.Sprintf("45.33.%d.%d", i%200/100, i%200%100+1)), int64(i))
	}
	if _, err := h.Handle(b.Context(), recs); err != nil { // warm the cache
		b.Fatal(err)
	}
	calls := provs[0].(*fakeProvider).total()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err := h.Handle(b.Context(), recs)
		if err != nil || len(res) != len(recs) || len(res[0].Outputs) != 1 {
			b.Fatalf("handle: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/time.Since(start).Seconds(), "records/s")
	if got := provs[0].(*fakeProvider).total(); got != calls {
		b.Fatalf("warm cache still called the provider: %d -> %d", calls, got)
	}
}
