package offline

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

const fixtures = "../../../testdata/providers/offline"

// fixtureDir copies the CSV fixtures and writes MMDB fixtures into a temp dir.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{ASNv4File, ASNv6File} {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeMMDB(t, filepath.Join(dir, CountryV4File), 4, "country_code", map[netip.Prefix]string{
		netip.MustParsePrefix("1.0.0.0/24"):     "AU",
		netip.MustParsePrefix("8.8.8.0/24"):     "US",
		netip.MustParsePrefix("203.0.113.0/25"): "nl",
	})
	writeMMDB(t, filepath.Join(dir, CountryV6File), 6, "country_code", map[netip.Prefix]string{
		netip.MustParsePrefix("2001:db8::/32"): "DE",
	})
	return dir
}

func TestLookup(t *testing.T) {
	t.Parallel()
	c, err := New(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if asn, cdb := c.Loaded(); asn != 6 || cdb != 2 {
		t.Fatalf("Loaded = %d ranges, %d dbs", asn, cdb)
	}
	cases := []struct {
		ind     events.Indicator
		found   bool
		asn     int64
		asName  string
		country string
	}{
		{events.Indicator{Type: events.TypeIPv4, Value: "1.0.0.1"}, true, 13335, "Cloudflare, Inc.", "AU"},
		{events.Indicator{Type: events.TypeIPv4, Value: "1.0.0.0"}, true, 13335, "Cloudflare, Inc.", "AU"},
		{events.Indicator{Type: events.TypeIPv4, Value: "1.0.0.255"}, true, 13335, "Cloudflare, Inc.", "AU"},
		{events.Indicator{Type: events.TypeIPv4, Value: "8.8.8.8"}, true, 15169, "Google LLC", "US"},
		{events.Indicator{Type: events.TypeIPv4, Value: "9.9.9.9"}, true, 19281, "Quad9", ""},
		{events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.5"}, true, 64500, `Example "Docs" Net`, "NL"},
		{events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.200"}, false, 0, "", ""},
		{events.Indicator{Type: events.TypeIPv4, Value: "1.0.1.0"}, false, 0, "", ""},
		{events.Indicator{Type: events.TypeIPv4, Value: "0.0.0.1"}, false, 0, "", ""},
		{events.Indicator{Type: events.TypeIPv4, Value: "255.255.255.255"}, false, 0, "", ""},
		{events.Indicator{Type: events.TypeIPv6, Value: "2001:db8::1"}, true, 64501, "Example v6", "DE"},
		{events.Indicator{Type: events.TypeIPv6, Value: "2606:4700::1111"}, true, 13335, "Cloudflare, Inc.", ""},
		{events.Indicator{Type: events.TypeIPv6, Value: "2a00::1"}, false, 0, "", ""},
		{events.Indicator{Type: events.TypeIPv6, Value: "::1"}, false, 0, "", ""},
	}
	for _, tc := range cases {
		res, err := c.Lookup(t.Context(), tc.ind)
		if err != nil {
			t.Errorf("%s: %v", tc.ind.Value, err)
			continue
		}
		x := res.Exposure
		if res.Found != tc.found || x.ASN != tc.asn || x.ASName != tc.asName || x.Country != tc.country {
			t.Errorf("%s: found=%v asn=%d name=%q cc=%q; want %v %d %q %q", tc.ind.Value, res.Found, x.ASN, x.ASName, x.Country,
				tc.found, tc.asn, tc.asName, tc.country)
		}
		if tc.country != "" && res.Fields["country"] != tc.country {
			t.Errorf("%s: fields %v", tc.ind.Value, res.Fields)
		}
	}
}

func TestNoDataAndBadInput(t *testing.T) {
	t.Parallel()
	c, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup(t.Context(), events.Indicator{Type: events.TypeIPv4, Value: "8.8.8.8"})
	if !errors.Is(err, ErrNoData) {
		t.Fatalf("empty dir: err = %v, want ErrNoData", err)
	}
	c2, err := New(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	for _, ind := range []events.Indicator{
		{Type: events.TypeIPv4, Value: "008.8.8.8"},
		{Type: events.TypeIPv4, Value: "2001:db8::1"},
		{Type: events.TypeIPv6, Value: "::ffff:8.8.8.8"},
		{Type: events.TypeIPv6, Value: "2001:DB8::1"},
		{Type: events.TypeDomain, Value: "example.org"},
	} {
		if _, err := c2.Lookup(t.Context(), ind); !errors.Is(err, provider.ErrInvalidInput) {
			t.Errorf("%v: err = %v, want ErrInvalidInput", ind, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c2.Lookup(ctx, events.Indicator{Type: events.TypeIPv4, Value: "8.8.8.8"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"reversed range": "1.0.0.255,1.0.0.0,1,x\n",
		"mixed family":   "1.0.0.0,::1,1,x\n",
		"bad asn":        "1.0.0.0,1.0.0.255,-3,x\n",
		"too few fields": "1.0.0.0,1.0.0.255,3\n",
	}
	for name, body := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ASNv4File), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(dir); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CountryV4File), []byte("not an mmdb"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), CountryV4File) {
		t.Errorf("bad mmdb: err = %v", err)
	}
	// header row is accepted
	dir = t.TempDir()
	hdr := "ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization\n1.0.0.0,1.0.0.255,7,x\n"
	if err := os.WriteFile(filepath.Join(dir, ASNv4File), []byte(hdr), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Loaded(); n != 1 {
		t.Errorf("header file: %d ranges, want 1", n)
	}
}

func TestNewFromRanges(t *testing.T) {
	t.Parallel()
	r := func(a, b string, asn uint32) Range {
		return Range{Start: netip.MustParseAddr(a), End: netip.MustParseAddr(b), ASN: asn}
	}
	if _, err := NewFromRanges([]Range{r("10.0.0.0", "10.0.0.255", 1), r("10.0.0.128", "10.0.1.0", 2)}); err == nil {
		t.Error("overlap accepted")
	}
	c, err := NewFromRanges([]Range{r("10.0.1.0", "10.0.1.255", 2), r("10.0.0.0", "10.0.0.255", 1)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeIPv4, Value: "10.0.1.9"})
	if err != nil || res.Exposure.ASN != 2 {
		t.Errorf("lookup = %+v, %v", res, err)
	}
}
