package tqemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func TestFaultModes(t *testing.T) {
	tests := []struct {
		name       string
		fault      tqemu.Faults
		wantCode   int
		wantHeader [2]string
	}{
		{"down 503", tqemu.Faults{Down: true}, 503, [2]string{}},
		{"error rate 1", tqemu.Faults{ErrorRate: 1}, 500, [2]string{}},
		{"error rate with status", tqemu.Faults{ErrorRate: 1, ErrorStatus: 502}, 502, [2]string{}},
		{"fail next", tqemu.Faults{FailNext: 1, ErrorStatus: 504}, 504, [2]string{}},
		{"rate limit", tqemu.Faults{RateLimitRate: 1, RetryAfter: 7 * time.Second}, 429, [2]string{"Retry-After", "7"}},
		{"rate limit next, default retry-after", tqemu.Faults{RateLimitNext: 1}, 429, [2]string{"Retry-After", "1"}},
		{"other prefix untouched", tqemu.Faults{Down: true, PathPrefix: "/api/indicators/consume"}, 200, [2]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tqemu.Options{})
			f.emu.SetFault(tc.fault)
			r := f.call("GET", "/api/indicator/types", nil)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d", r.code, tc.wantCode)
			}
			if tc.wantHeader[0] != "" && r.hdr.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Fatalf("%s = %q, want %q", tc.wantHeader[0], r.hdr.Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
			if tc.wantCode != 200 && r.json(t)["errors"] == nil {
				t.Fatalf("fault body %s lacks errors", r.body)
			}
		})
	}
}

func TestFaultCountersRunOut(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.emu.SetFault(tqemu.Faults{FailNext: 2, RateLimitNext: 1})
	var codes []int
	for range 4 {
		codes = append(codes, f.call("GET", "/api/indicator/statuses", nil).code)
	}
	want := []int{429, 500, 500, 200}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	st := f.emu.Stats()
	if st.FaultsInjected != 3 || st.Responses[429] != 1 || st.Responses[500] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultAppliesToTokenEndpoint(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.emu.SetFault(tqemu.Faults{FailNext: 1, ErrorStatus: 503})
	r := tokenRequest(t, f, "?grant_type=client_credentials", "", "", "vigil-dev:vigil-dev-secret")
	if r.code != 503 {
		t.Fatalf("token under fault: %d", r.code)
	}
	if r := tokenRequest(t, f, "?grant_type=client_credentials", "", "", "vigil-dev:vigil-dev-secret"); r.code != 200 {
		t.Fatalf("token after fault: %d", r.code)
	}
}

func TestDownCloseDropsConnection(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.emu.SetFault(tqemu.Faults{Down: true, DownMode: tqemu.DownModeClose})
	req, _ := http.NewRequest("GET", f.url+"/api/indicators", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("got response %d, want a dropped connection", res.StatusCode)
	}
	// the drop is counted before the connection closes
	st := f.emu.Stats()
	if st.Responses[0] == 0 || st.Responses[200] != 0 {
		t.Fatalf("dropped connection not counted as code 0: %v", st.Responses)
	}
}

func TestSlowFault(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.emu.SetFault(tqemu.Faults{Delay: 150 * time.Millisecond})
	start := time.Now()
	if r := f.call("GET", "/api/indicator/types", nil); r.code != 200 {
		t.Fatalf("slow request: %d", r.code)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered after %v, want ≥150ms", d)
	}
	// A client deadline shorter than the delay times out.
	f.emu.SetFault(tqemu.Faults{Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/api/indicator/types", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	got := f.mustCall("POST", "/_emulator/faults", `{"rate_limit_next":1,"retry_after_s":3,"delay_ms":1,"path_prefix":"/api/indicators"}`, 200)
	if num(got["rate_limit_next"]) != 1 || num(got["retry_after_s"]) != 3 || num(got["delay_ms"]) != 1 {
		t.Fatalf("echo = %v", got)
	}
	cur := f.emu.CurrentFaults()
	if cur.RetryAfter != 3*time.Second || cur.Delay != time.Millisecond || cur.PathPrefix != "/api/indicators" {
		t.Fatalf("CurrentFaults = %+v", cur)
	}
	if r := f.call("GET", "/api/indicators", nil); r.code != 429 || r.hdr.Get("Retry-After") != "3" {
		t.Fatalf("after POST faults: %d %q", r.code, r.hdr.Get("Retry-After"))
	}
	f.mustCall("POST", "/_emulator/faults", `{"expire_tokens":true}`, 200)
	if r := f.call("GET", "/api/indicators", nil); r.code != 401 {
		t.Fatalf("after expire_tokens: %d", r.code)
	}
	f.token = f.emu.IssueToken()
	f.mustCall("POST", "/_emulator/faults", `{"down":true}`, 200)
	f.mustCall("DELETE", "/_emulator/faults", nil, http.StatusNoContent)
	if r := f.call("GET", "/api/indicators", nil); r.code != 200 {
		t.Fatalf("after DELETE faults: %d", r.code)
	}
	for _, bad := range []string{`{"down_mode":"explode"}`, `{"error_rate":2}`, `{"error_status":404}`, `{"unknown":1}`} {
		if r := f.call("POST", "/_emulator/faults", bad); r.code != 400 {
			t.Fatalf("%s: %d, want 400", bad, r.code)
		}
	}
}

func TestStatsDumpResetPage(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), 200)
	f.mustCall("POST", "/api/indicators/consume", f.fixtureFile("consume_sdk.json"), 200)
	if err := f.emu.AnalystSetStatus("203.0.113.7", "Whitelisted"); err != nil {
		t.Fatal(err)
	}

	var st tqemu.Stats
	if err := json.Unmarshal(f.call("GET", "/_emulator/stats", nil).body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Calls["POST /api/indicators/consume"] != 2 || st.Created != 2 || st.Updated != 1 || st.Writes != 3 || st.Indicators != 2 || st.TokensIssued != 1 {
		t.Fatalf("stats = %+v", st)
	}

	var d tqemu.Dump
	if err := json.Unmarshal(f.call("GET", "/_emulator/dump", nil).body, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Indicators) != 2 || d.Indicators[0].Status != "Whitelisted" || d.Indicators[0].Type != "IP Address" || len(d.Types) == 0 {
		t.Fatalf("dump = %+v", d.Indicators)
	}
	if d.Indicators[0].Attr("Is VPN")[0] != "Yes" || d.Indicators[0].UpdatedAt.IsZero() {
		t.Fatalf("dump attributes/updated_at = %+v", d.Indicators[0])
	}

	page := f.call("GET", "/", nil)
	html := string(page.body)
	if page.code != 200 || !strings.Contains(html, "203.0.113.7") || !strings.Contains(html, `http-equiv="refresh"`) || !strings.Contains(html, "Open Port=22") {
		t.Fatalf("page %d: %s", page.code, html)
	}

	f.mustCall("POST", "/_emulator/reset", nil, http.StatusNoContent)
	if n := len(f.emu.Indicators()); n != 0 {
		t.Fatalf("%d indicators after reset", n)
	}
	if r := f.call("GET", "/api/indicators", nil); r.code != 401 {
		t.Fatalf("token survived reset: %d", r.code)
	}
}

func TestAnalystHelpersErrors(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	f.mustCall("POST", "/api/indicators", `[{"value":"10","type":"ASN"},{"value":"10","type":"String"}]`, 201)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown value", f.emu.AnalystSetStatus("192.0.2.99", "Active"), tqemu.ErrNotFound},
		{"ambiguous value", f.emu.AnalystSetStatus("10", "Active"), tqemu.ErrAmbiguous},
		{"unknown status", f.emu.AnalystSetStatus("10", "Malicious"), tqemu.ErrUnknownStatus},
		{"score out of range", f.emu.AnalystSetScore("10", new(11)), tqemu.ErrBadScore},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}
