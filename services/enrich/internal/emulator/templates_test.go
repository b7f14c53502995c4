package emulator

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestTemplatesMatchDirectRendering: every IP route serves byte for byte what encoding the answer for that
// address directly gives, for addresses of every profile (IPv4 and IPv6).
func TestTemplatesMatchDirectRendering(t *testing.T) {
	e := New(Config{})
	var ips []string
	for k := range Kind(len(kindNames)) {
		for n := range 3 {
			ips = append(ips, IPOf(k, n))
		}
	}
	ips = append(ips, "2001:db8::7", "2001:db8::8")
	routes := []struct {
		name  string
		serve answerFunc
		want  func(a netip.Addr) any
	}{
		{RouteCriminalIP, e.criminalIP, func(a netip.Addr) any {
			ip := a.String()
			if Profile(ip) == KindNotFound {
				return map[string]any{"status": 404, "message": "no data"}
			}
			return criminalIPReport(ip, Profile(ip), asOf(ip, Profile(ip)))
		}},
		{RouteInternetDB, e.internetDB, func(a netip.Addr) any {
			ip := a.String()
			if Profile(ip) == KindNotFound {
				return map[string]any{"detail": "No information available"}
			}
			return internetDBAnswer(ip, Profile(ip))
		}},
		{RouteAbuseIPDB, e.abuseIPDB, func(a netip.Addr) any {
			ip := a.String()
			return map[string]any{"data": abuseIPDBData(ip, a.Is4(), Profile(ip), asOf(ip, Profile(ip)))}
		}},
		{RouteGreyNoise, e.greyNoise, func(a netip.Addr) any {
			v, _ := greyNoiseAnswer(a.String(), Profile(a.String()))
			return v
		}},
	}
	for _, r := range routes {
		for _, ip := range ips {
			a := netip.MustParseAddr(ip)
			if r.name == RouteGreyNoise && !a.Is4() {
				continue
			}
			for range 2 { // the second answer comes from the cached template
				w := httptest.NewRecorder()
				r.serve(w, httptest.NewRequest("GET", "/", nil), ip, Fault{})
				if got, want := w.Body.String(), string(mustJSON(r.want(a))); got != want {
					t.Fatalf("%s %s:\n got %s\nwant %s", r.name, ip, got, want)
				}
				if w.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("%s %s: content type %q", r.name, ip, w.Header().Get("Content-Type"))
				}
			}
		}
	}
}
