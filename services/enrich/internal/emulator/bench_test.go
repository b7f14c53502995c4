package emulator_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

// BenchmarkRoundTrip measures client → emulator → validated Result per provider (reports calls/s).
func BenchmarkRoundTrip(b *testing.B) {
	for _, cc := range clients() {
		b.Run(cc.name, func(b *testing.B) {
			emu := emulator.New(emulator.Config{})
			srv := newBenchServer(b, emu.Handler())
			p := cc.build(b, srv, emulator.DefaultAPIKey, 5*time.Second)
			ind := ipv4(emulator.KindCritical)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Lookup(ctx, ind); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			if got := emu.Calls(cc.route, ""); got != int64(b.N) {
				b.Errorf("emulator saw %d calls, want %d", got, b.N)
			}
		})
	}
}

func newBenchServer(b *testing.B, h http.Handler) string {
	b.Helper()
	srv := httptestServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}
