package emulator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// field walks a dotted path ("score.inbound", "port.data.0.socket").
func field(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			var i int
			if _, err := fmt.Sscanf(p, "%d", &i); err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func get(t *testing.T, url string, header map[string]string) (int, any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return resp.StatusCode, v
}

// TestRouteShapes pins each route's field names and JSON types to providers-api.md.
func TestRouteShapes(t *testing.T) {
	t.Parallel()
	_, base := startEmulator(t)
	crit := emulator.IPOf(emulator.KindCritical, 0)
	scan := emulator.IPOf(emulator.KindScanner, 0)
	nf := emulator.IPOf(emulator.KindNotFound, 0)
	cip := map[string]string{"x-api-key": emulator.DefaultAPIKey}
	abuse := map[string]string{"Key": emulator.DefaultAPIKey, "Accept": "application/json"}

	cases := []struct {
		name       string
		url        string
		header     map[string]string
		wantStatus int
		fields     map[string]string // path → JSON type
	}{
		{
			name: "criminalip report critical", url: base + "/v1/asset/ip/report?full=true&ip=" + crit, header: cip, wantStatus: 200,
			fields: map[string]string{
				"ip": "string", "status": "number", "user_search_count": "number",
				"score.inbound": "string", "score.outbound": "string",
				"issues.is_vpn": "bool", "issues.is_cloud": "bool", "issues.is_tor": "bool", "issues.is_proxy": "bool",
				"issues.is_hosting": "bool", "issues.is_mobile": "bool", "issues.is_darkweb": "bool",
				"issues.is_scanner": "bool", "issues.is_snort": "bool", "issues.is_anonymous_vpn": "bool",
				"port.count": "number", "port.data.0.app_name": "string", "port.data.0.app_version": "string",
				"port.data.0.open_port_no": "number", "port.data.0.protocol": "string", "port.data.0.socket": "string",
				"port.data.0.tags": "array", "port.data.0.is_vulnerability": "bool", "port.data.0.banner": "string",
				"port.data.0.confirmed_time": "string", "port.data.0.port_status": "string",
				"vulnerability.count": "number", "vulnerability.data.0.cve_id": "string",
				"vulnerability.data.0.cvssv3_score": "number", "vulnerability.data.0.cvssv2_score": "number",
				"vulnerability.data.0.open_port_no.0.port": "number", "vulnerability.data.0.open_port_no.0.socket": "string",
				"vulnerability.data.0.open_port_no_list.TCP": "array",
				"whois.count": "number", "whois.data.0.as_name": "string", "whois.data.0.as_no": "number",
				"whois.data.0.org_name": "string", "whois.data.0.org_country_code": "string", "whois.data.0.confirmed_time": "string",
				"ids.count": "number", "ids.data.0.classification": "string", "ids.data.0.message": "string",
				"honeypot.data": "array", "vpn.data": "array", "anonymous_vpn.data": "array", "ip_category.data": "array",
				"protected_ip.count": "number", "domain.data": "array", "hostname.data": "array", "webcam.data": "array", "mobile.data": "array",
			},
		},
		{
			name: "criminalip report scanner", url: base + "/v1/asset/ip/report?full=true&ip=" + scan, header: cip, wantStatus: 200,
			fields: map[string]string{
				"honeypot.data.0.ip_address": "string", "honeypot.data.0.dst_port": "number", "honeypot.data.0.log_date": "string",
				"honeypot.data.0.protocol_type": "string", "ip_category.data.0.type": "string", "ip_category.data.0.detect_info": "object",
			},
		},
		{
			name: "criminalip bad key", url: base + "/v1/asset/ip/report?ip=" + crit, header: map[string]string{"x-api-key": "nope"}, wantStatus: 200,
			fields: map[string]string{"status": "number", "message": "string"},
		},
		{
			name: "criminalip domain", url: base + "/v1/domain/quick/hash/view?domain=example.org", header: cip, wantStatus: 200,
			fields: map[string]string{"status": "number", "message": "string", "data": "object"},
		},
		{
			name: "internetdb", url: base + "/" + crit, wantStatus: 200,
			fields: map[string]string{"ip": "string", "ports": "array", "ports.0": "number", "hostnames": "array",
				"cpes": "array", "cpes.0": "string", "tags": "array", "vulns": "array", "vulns.0": "string"},
		},
		{
			name: "internetdb not found", url: base + "/" + nf, wantStatus: 404,
			fields: map[string]string{"detail": "string"},
		},
		{
			name: "abuseipdb", url: base + "/api/v2/check?maxAgeInDays=90&ipAddress=" + crit, header: abuse, wantStatus: 200,
			fields: map[string]string{"data.ipAddress": "string", "data.isPublic": "bool", "data.ipVersion": "number",
				"data.isWhitelisted": "bool", "data.abuseConfidenceScore": "number", "data.countryCode": "string",
				"data.usageType": "string", "data.isp": "string", "data.domain": "string", "data.hostnames": "array",
				"data.isTor": "bool", "data.totalReports": "number", "data.numDistinctUsers": "number", "data.lastReportedAt": "string"},
		},
		{
			name: "abuseipdb bad key", url: base + "/api/v2/check?ipAddress=" + crit, wantStatus: 401,
			fields: map[string]string{"errors": "array", "errors.0.detail": "string", "errors.0.status": "number"},
		},
		{
			name: "greynoise", url: base + "/v3/community/" + crit, wantStatus: 200,
			fields: map[string]string{"ip": "string", "noise": "bool", "riot": "bool", "classification": "string",
				"name": "string", "link": "string", "last_seen": "string", "message": "string"},
		},
		{
			name: "greynoise not observed", url: base + "/v3/community/" + nf, wantStatus: 404,
			fields: map[string]string{"ip": "string", "noise": "bool", "riot": "bool", "message": "string"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, tc.url, tc.header)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", status, tc.wantStatus)
			}
			for path, want := range tc.fields {
				v, ok := field(body, path)
				if !ok {
					t.Errorf("missing %s", path)
					continue
				}
				if got := jsonType(v); got != want {
					t.Errorf("%s: type %s, want %s", path, got, want)
				}
			}
		})
	}
}

// TestRouteValues pins documented values: score names, lower-case country, status 200, messages.
func TestRouteValues(t *testing.T) {
	t.Parallel()
	_, base := startEmulator(t)
	cip := map[string]string{"x-api-key": emulator.DefaultAPIKey}
	scores := map[string]bool{"Safe": true, "Low": true, "Moderate": true, "Dangerous": true, "Critical": true}
	for _, k := range emulator.Kinds {
		if k == emulator.KindNotFound {
			continue
		}
		ip := emulator.IPOf(k, 1)
		_, body := get(t, base+"/v1/asset/ip/report?full=true&ip="+ip, cip)
		in, _ := field(body, "score.inbound")
		out, _ := field(body, "score.outbound")
		cc, _ := field(body, "whois.data.0.org_country_code")
		st, _ := field(body, "status")
		gotIP, _ := field(body, "ip")
		if s, _ := in.(string); !scores[s] {
			t.Errorf("%s: inbound %v", k, in)
		}
		if s, _ := out.(string); !scores[s] {
			t.Errorf("%s: outbound %v", k, out)
		}
		if s, _ := cc.(string); s == "" || s != strings.ToLower(s) {
			t.Errorf("%s: country %v not lower-case", k, cc)
		}
		if st != 200.0 || gotIP != ip {
			t.Errorf("%s: status %v ip %v", k, st, gotIP)
		}
	}
	_, body := get(t, base+"/v1/asset/ip/report?ip=not-an-ip", cip)
	if msg, _ := field(body, "message"); msg != "Invalid IP Address." {
		t.Errorf("invalid ip message = %v", msg)
	}
	_, body = get(t, base+"/v1/asset/ip/report?ip=1.2.3.4", map[string]string{"x-api-key": "bad"})
	if msg, _ := field(body, "message"); msg != "invalid api key" {
		t.Errorf("bad key message = %v", msg)
	}
	_, body = get(t, base+"/v3/community/"+emulator.IPOf(emulator.KindNotFound, 0), nil)
	if msg, _ := field(body, "message"); msg != "IP not observed scanning the internet or contained in RIOT data set." {
		t.Errorf("greynoise 404 message = %v", msg)
	}
}

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	emu, base := startEmulator(t)
	post := func(path, body string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/_emulator/faults", `{"route":"abuseipdb","mode":"rate_limit","retry_after_s":9}`); code != 200 {
		t.Fatalf("set fault: %d", code)
	}
	f := emu.Faults()[emulator.RouteAbuseIPDB]
	if f.Mode != emulator.ModeRateLimit || f.RetryAfter.Seconds() != 9 {
		t.Fatalf("fault = %+v", f)
	}
	for _, bad := range []string{`{"route":"nope","mode":"down"}`, `{"route":"abuseipdb","mode":"explode"}`, `{"route":"x","bogus":1}`} {
		if code := post("/_emulator/faults", bad); code != 400 {
			t.Errorf("%s: status %d, want 400", bad, code)
		}
	}
	get(t, base+"/"+emulator.IPOf(emulator.KindSafe, 0), nil)
	get(t, base+"/"+emulator.IPOf(emulator.KindSafe, 0), nil)
	_, stats := get(t, base+"/_emulator/stats", nil)
	if n, _ := field(stats, "routes.internetdb.calls"); n != 2.0 {
		t.Errorf("stats calls = %v, want 2", n)
	}
	byInd, _ := field(stats, "routes.internetdb.by_indicator")
	if m, _ := byInd.(map[string]any); m[emulator.IPOf(emulator.KindSafe, 0)] != 2.0 {
		t.Errorf("stats by_indicator = %v", byInd)
	}
	if code := post("/_emulator/faults", `{"route":"*","mode":""}`); code != 200 || len(emu.Faults()) != 0 {
		t.Errorf("clear all: code %d faults %v", code, emu.Faults())
	}
	if code := post("/_emulator/reset", ``); code != 200 || emu.Calls(emulator.RouteInternetDB, "") != 0 {
		t.Errorf("reset: code %d calls %d", code, emu.Calls(emulator.RouteInternetDB, ""))
	}
}

func TestProfileAndIPOf(t *testing.T) {
	t.Parallel()
	counts := map[emulator.Kind]int{}
	for i := range 4096 {
		counts[emulator.Profile(fmt.Sprintf("10.%d.%d.1", i/256, i%256))]++
	}
	for _, k := range emulator.Kinds {
		if counts[k] == 0 {
			t.Errorf("kind %s never assigned", k)
		}
		for n := range 3 {
			ip := emulator.IPOf(k, n)
			if ip == "" || emulator.Profile(ip) != k {
				t.Errorf("IPOf(%s,%d) = %q with profile %s", k, n, ip, emulator.Profile(ip))
			}
		}
		if emulator.IPOf(k, 0) == emulator.IPOf(k, 1) {
			t.Errorf("IPOf(%s) not distinct", k)
		}
	}
	if emulator.Profile("::ffff:198.18.0.7") != emulator.Profile("198.18.0.7") {
		t.Error("mapped IPv6 must share the IPv4 profile")
	}
	if emulator.IPOf(emulator.Kind(99), 0) != "" {
		t.Error("invalid kind must give empty IP")
	}
}
