package internetdb

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

func serve(t *testing.T, status int, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/203.0.113.9" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var ind = events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.9"}

func TestMapping(t *testing.T) {
	t.Parallel()
	c := serve(t, 200, `{"ip":"203.0.113.9","ports":[22,8080],"hostnames":["h.example"],"cpes":["cpe:/a:x"],"tags":["vpn","c2","Cloud"],"vulns":["CVE-2020-1234"]}`)
	res, err := c.Lookup(t.Context(), ind)
	if err != nil {
		t.Fatal(err)
	}
	x := res.Exposure
	if !res.Found || len(x.OpenPorts) != 2 || x.OpenPorts[1].Port != 8080 || len(x.CVEs) != 1 || !x.VPN || !x.Cloud || !x.Malicious {
		t.Errorf("exposure: %+v", x)
	}
	if res.Fields["open_ports"] != "22,8080" || res.Fields["tags"] != "vpn,c2,cloud" || res.Fields["hostnames"] != "h.example" {
		t.Errorf("fields: %v", res.Fields)
	}
}

func TestNotFoundAndErrors(t *testing.T) {
	t.Parallel()
	res, err := serve(t, 404, `{"detail":"No information available"}`).Lookup(t.Context(), ind)
	if err != nil || res.Found {
		t.Errorf("documented 404: %+v %v", res, err)
	}
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{404, `404 page not found`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.10","ports":[],"hostnames":[],"cpes":[],"tags":[],"vulns":[]}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","ports":[70000],"hostnames":[],"cpes":[],"tags":[],"vulns":[]}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","ports":["22"],"hostnames":[],"cpes":[],"tags":[],"vulns":[]}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","ports":[],"hostnames":[],"cpes":[],"tags":[],"vulns":["bad"]}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9"}`, provider.ErrBadResponse},
		{429, `{"detail":"slow"}`, provider.ErrRateLimited},
		{503, ``, provider.ErrUnavailable},
	}
	for _, tc := range cases {
		if _, err := serve(t, tc.status, tc.body).Lookup(t.Context(), ind); !errors.Is(err, tc.want) {
			t.Errorf("%d %s: err = %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
	c := serve(t, 200, `{}`)
	if _, err := c.Lookup(t.Context(), events.Indicator{Type: events.TypeIPv6, Value: "2001:db8::1"}); !errors.Is(err, provider.ErrInvalidInput) {
		t.Errorf("ipv6: %v", err)
	}
	if c.Supports(events.TypeIPv6) || !c.Supports(events.TypeIPv4) {
		t.Error("Supports")
	}
}
