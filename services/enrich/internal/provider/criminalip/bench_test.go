package criminalip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

// BenchmarkDecodeReport decodes and converts full reports as the emulator serves them in the benchmark.
func BenchmarkDecodeReport(b *testing.B) {
	h := emulator.New(emulator.Config{}).Handler()
	var bodies [][]byte
	var addrs []netip.Addr
	for _, ip := range []string{"45.33.37.1", "45.33.37.2", "45.33.37.3", "45.33.37.4", "45.33.37.5", "45.33.37.6", "8.8.4.4", "1.2.3.4", "93.184.216.34", "185.220.101.1"} {
		req := httptest.NewRequest(http.MethodGet, "/v1/asset/ip/report?ip="+ip+"&full=true", nil)
		req.Header.Set("X-Api-Key", emulator.DefaultAPIKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var r report
		if decodeStrict(rec.Body.Bytes(), &r) != nil || r.IP == "" {
			continue // the emulator has no data on this one
		}
		bodies = append(bodies, rec.Body.Bytes())
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	if len(bodies) == 0 {
		b.Fatal("no full report among the sample addresses")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var r report
		if err := decodeStrict(bodies[i%len(bodies)], &r); err != nil {
			b.Fatal(err)
		}
		if _, err := convertReport(addrs[i%len(addrs)], &r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
