package criminalip

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

const testKey = "secret-key-123"

// fakeServer answers every request with status and body, and records the last request.
type fakeServer struct {
	status int
	body   string
	hits   atomic.Int64
	last   atomic.Pointer[http.Request]
}

func (f *fakeServer) start(t *testing.T) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		f.last.Store(r)
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL + "/", APIKey: testKey, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/providers/criminalip/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func v4(s string) events.Indicator { return events.Indicator{Type: events.TypeIPv4, Value: s} }

func TestFullReportMapping(t *testing.T) {
	t.Parallel()
	f := &fakeServer{status: 200, body: fixture(t, "report_full.json")}
	c := f.start(t)
	res, err := c.Lookup(t.Context(), v4("198.51.100.23"))
	if err != nil {
		t.Fatal(err)
	}
	r := f.last.Load()
	if r.URL.Path != "/v1/asset/ip/report" || r.URL.Query().Get("ip") != "198.51.100.23" || r.URL.Query().Get("full") != "true" {
		t.Errorf("request = %s", r.URL)
	}
	if r.Header.Get("x-api-key") != testKey {
		t.Errorf("x-api-key header missing")
	}
	x := res.Exposure
	if !res.Found || !x.Malicious || x.InboundScore != 5 || x.OutboundScore != 3 {
		t.Errorf("scores: %+v", x)
	}
	if !x.VPN || !x.Proxy || x.Tor || !x.Hosting || !x.Cloud || !x.Scanner || x.Mobile || x.Darkweb {
		t.Errorf("flags: %+v", x)
	}
	if x.ASN != 64496 || x.ASName != "EXAMPLE-TRANSIT" || x.Org != "Example Transit BV" || x.Country != "BE" {
		t.Errorf("whois: %d %q %q %q", x.ASN, x.ASName, x.Org, x.Country)
	}
	wantPorts := []events.Port{
		{Port: 443, Protocol: "tcp", Service: "nginx", Version: "1.14.0", Vulnerable: true, Tags: []string{"Data Leak", "DevOps"}},
		{Port: 53, Protocol: "udp", Service: "dns", Version: "", Vulnerable: false, Tags: []string{"Resolver"}},
	}
	if len(x.OpenPorts) != 2 {
		t.Fatalf("ports: %+v", x.OpenPorts)
	}
	for i, w := range wantPorts {
		g := x.OpenPorts[i]
		if g.Port != w.Port || g.Protocol != w.Protocol || g.Service != w.Service || g.Version != w.Version ||
			g.Vulnerable != w.Vulnerable || !slices.Equal(g.Tags, w.Tags) {
			t.Errorf("port %d = %+v, want %+v", i, g, w)
		}
	}
	if len(x.CVEs) != 1 || x.CVEs[0].ID != "CVE-2021-23017" || x.CVEs[0].CVSS != 7.7 || !slices.Equal(x.CVEs[0].Ports, []int32{443, 8443}) {
		t.Errorf("cves: %+v", x.CVEs)
	}
	wantCats := []string{"hosting", "MISP", "ids:botcc", "honeypot"}
	if !slices.Equal(x.Categories, wantCats) {
		t.Errorf("categories = %v, want %v", x.Categories, wantCats)
	}
	wantFields := map[string]string{
		"inbound_score": "Critical", "outbound_score": "Moderate", "is_malicious": "true", "is_vpn": "false",
		"is_anonymous_vpn": "true", "is_snort": "true", "asn": "64496", "country": "BE", "open_ports": "443/tcp,53/udp",
		"open_port_count": "40", "cves": "CVE-2021-23017", "max_cvss": "7.7", "ids_count": "2", "honeypot_count": "1",
		"protected_ip_count": "1", "ids_classifications": "botcc", "vpn_names": "examplevpn",
	}
	for k, v := range wantFields {
		if res.Fields[k] != v {
			t.Errorf("Fields[%s] = %q, want %q", k, res.Fields[k], v)
		}
	}
}

func TestLegacyReport(t *testing.T) {
	t.Parallel()
	f := &fakeServer{status: 200, body: fixture(t, "report_legacy.json")}
	c := f.start(t)
	res, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeIPv6, Value: "2001:db8::23"})
	if err != nil {
		t.Fatal(err)
	}
	x := res.Exposure
	if x.InboundScore != 5 || x.OutboundScore != 3 || !x.VPN || !x.Tor || !x.Darkweb || x.Country != "JP" || !x.Malicious {
		t.Errorf("legacy: %+v", x)
	}
	if res.Fields["inbound_score"] != "Critical" || res.Fields["outbound_score"] != "Moderate" {
		t.Errorf("legacy fields: %v", res.Fields)
	}
}

func TestBodyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body string
		want error
	}{
		{`{"status":401,"message":"invalid api key"}`, provider.ErrAuth},
		{`{"status":403,"message":"limit exceeded"}`, provider.ErrQuota},
		{`{"status":403,"message":"Exceeded your API request limit"}`, provider.ErrQuota},
		{`{"status":403,"message":"unable to call api at the same time"}`, provider.ErrRateLimited},
		{`{"status":400,"message":"Invalid IP Address."}`, provider.ErrInvalidInput},
		{`{"status":500,"message":"unexpected error"}`, provider.ErrUnavailable},
		{`{"status":403,"message":"forbidden"}`, provider.ErrAuth},
		{`{"status":429,"message":"slow down"}`, provider.ErrRateLimited},
		{`{"status":414,"message":"uri too long"}`, provider.ErrInvalidInput},
		{`{"status":418,"message":"teapot"}`, provider.ErrBadResponse},
		{`{"status":403,"message":"invalid api key ` + testKey + `"}`, provider.ErrAuth},
	}
	for _, tc := range cases {
		f := &fakeServer{status: 200, body: tc.body}
		c := f.start(t)
		_, err := c.Lookup(t.Context(), v4("198.51.100.23"))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.body, err, tc.want)
		}
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Status == 0 {
			t.Errorf("%s: want *provider.Error with status, got %#v", tc.body, err)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: key leaked in %q", tc.body, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
	}{
		{404, `{"status":404,"message":"no data"}`},
		{404, ``},
		{200, `{"status":404,"message":"no data"}`},
	} {
		f := &fakeServer{status: tc.status, body: tc.body}
		res, err := f.start(t).Lookup(t.Context(), v4("198.51.100.23"))
		if err != nil || res.Found {
			t.Errorf("%d %s: found=%v err=%v", tc.status, tc.body, res.Found, err)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	full := fixture(t, "report_full.json")
	cases := map[string]string{
		"not json":         `<html>`,
		"array":            `[]`,
		"missing status":   strings.Replace(full, `"status": 200`, `"status_x": 200`, 1),
		"wrong ip":         strings.Replace(full, `"ip": "198.51.100.23"`, `"ip": "198.51.100.24"`, 1),
		"missing ip":       strings.Replace(full, `"ip": "198.51.100.23"`, `"ipx": "198.51.100.23"`, 1),
		"unknown score":    strings.Replace(full, `"critical"`, `"Extreme"`, 1),
		"score range":      strings.Replace(full, `"critical"`, `7`, 1),
		"score float":      strings.Replace(full, `"critical"`, `2.5`, 1),
		"missing score":    strings.Replace(full, `"score":`, `"scorex":`, 1),
		"missing issues":   strings.Replace(full, `"issues":`, `"issuesx":`, 1),
		"port range":       strings.Replace(full, `"open_port_no": 443,`, `"open_port_no": 70000,`, 1),
		"port socket":      strings.Replace(full, `"socket": "tcp", "tags"`, `"socket": "sctp", "tags"`, 1),
		"cvss range":       strings.Replace(full, `"cvssv3_score": 7.7`, `"cvssv3_score": 11`, 1),
		"cve id":           strings.Replace(full, `"cve_id": "CVE-2021-23017"`, `"cve_id": "nginx-bug"`, 1),
		"count below data": strings.Replace(full, `"ids": {"count": 2`, `"ids": {"count": 1`, 1),
		"country":          strings.Replace(full, `"org_country_code": "be"`, `"org_country_code": "bel"`, 1),
		"as_no negative":   strings.Replace(full, `"as_no": 64496`, `"as_no": -1`, 1),
		"flag type":        strings.Replace(full, `"is_tor": false`, `"is_tor": "no"`, 1),
		"vuln port range":  strings.Replace(full, `{"port": 8443, "socket": "tcp"}`, `{"port": 0, "socket": "tcp"}`, 1),
	}
	for name, body := range cases {
		if body == full && name != "" {
			t.Fatalf("%s: replacement did not apply", name)
		}
		f := &fakeServer{status: 200, body: body}
		_, err := f.start(t).Lookup(t.Context(), v4("198.51.100.23"))
		if !errors.Is(err, provider.ErrBadResponse) {
			t.Errorf("%s: err = %v, want ErrBadResponse", name, err)
		}
	}
}

func TestRefusesNonCanonical(t *testing.T) {
	t.Parallel()
	f := &fakeServer{status: 200, body: `{}`}
	c := f.start(t)
	for _, ind := range []events.Indicator{
		v4("198.051.100.23"), v4(" 198.51.100.23"), v4("198.51.100.23&full=false"), v4("::ffff:198.51.100.23"),
		{Type: events.TypeIPv6, Value: "2001:DB8::1"}, {Type: events.TypeIPv6, Value: "fe80::1%eth0"},
		{Type: events.TypeDomain, Value: "Example.org"}, {Type: events.TypeDomain, Value: "example.org."},
		{Type: events.TypeDomain, Value: "exa mple.org"}, {Type: events.TypeSHA256, Value: "ab"},
	} {
		if _, err := c.Lookup(t.Context(), ind); !errors.Is(err, provider.ErrInvalidInput) {
			t.Errorf("%v: err = %v, want ErrInvalidInput", ind, err)
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("server was called %d times", n)
	}
}

func TestDomainQuick(t *testing.T) {
	t.Parallel()
	f := &fakeServer{status: 200, body: `{"status":200,"message":"api success","data":{"domain":"bad-site.com","type":"domain","result":"Malicious","reg_dtime":"2026-01-01 00:00:00","call_count":3}}`}
	c := f.start(t)
	res, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeDomain, Value: "bad-site.com"})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.last.Load(); r.URL.Path != "/v1/domain/quick/hash/view" || r.URL.Query().Get("domain") != "bad-site.com" {
		t.Errorf("request = %s", r.URL)
	}
	if !res.Found || !res.Exposure.Malicious || res.Fields["domain_result"] != "Malicious" {
		t.Errorf("domain: %+v", res)
	}
	f.body = `{"status":200,"message":"api success","data":{"domain":"other-site.com","result":"safe"}}`
	if _, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeDomain, Value: "bad-site.com"}); !errors.Is(err, provider.ErrBadResponse) {
		t.Errorf("wrong domain: err = %v", err)
	}
	f.body = `{"status":200,"message":"api success","data":{}}`
	if res, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeDomain, Value: "bad-site.com"}); err != nil || res.Found {
		t.Errorf("empty data: %+v %v", res, err)
	}
}

func TestHTTPStatusErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		want   error
	}{
		{401, provider.ErrAuth}, {403, provider.ErrAuth}, {429, provider.ErrRateLimited},
		{500, provider.ErrUnavailable}, {502, provider.ErrUnavailable}, {400, provider.ErrInvalidInput}, {302, provider.ErrBadResponse},
	} {
		f := &fakeServer{status: tc.status, body: `{"status":0}`}
		if _, err := f.start(t).Lookup(t.Context(), v4("198.51.100.23")); !errors.Is(err, tc.want) {
			t.Errorf("HTTP %d: err = %v, want %v", tc.status, err, tc.want)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no key":       {BaseURL: "http://127.0.0.1:1"},
		"blank key":    {BaseURL: "http://127.0.0.1:1", APIKey: "  "},
		"bad scheme":   {BaseURL: "ftp://x", APIKey: "k"},
		"query in url": {BaseURL: "http://x/?a=1", APIKey: "k"},
		"credentials":  {BaseURL: "http://u:p@x/", APIKey: "k"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	c, err := New(Config{APIKey: "k"})
	if err != nil || c.base.String() != DefaultBaseURL || c.timeout != provider.DefaultTimeout {
		t.Errorf("defaults: %v %+v", err, c)
	}
	if !c.Supports(events.TypeIPv4) || !c.Supports(events.TypeIPv6) || !c.Supports(events.TypeDomain) || c.Supports(events.TypeURL) {
		t.Error("Supports")
	}
}

func TestScoreUnmarshal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Score{
		`"Safe"`: 1, `"low"`: 2, `"MODERATE"`: 3, `"Dangerous"`: 4, `"critical"`: 5, `1`: 1, `5`: 5, `null`: 0,
		`" Low "`: 2, `"\u0053afe"`: 1, `"Crit\u0069cal"`: 5,
	} {
		var s Score
		if err := s.UnmarshalJSON([]byte(in)); err != nil || s != want {
			t.Errorf("%s: %v %v, want %v", in, s, err, want)
		}
	}
	for _, in := range []string{`"High"`, `0`, `6`, `3.5`, `true`, `{}`, `""`, `"\u0048igh"`} {
		var s Score
		if err := s.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s: want error", in)
		}
	}
}
