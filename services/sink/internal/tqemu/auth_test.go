package tqemu_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func tokenRequest(t *testing.T, f *fixture, query, contentType, body, basic string) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/api/token"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: b}
}

func TestTokenGrants(t *testing.T) {
	const js = "application/json"
	tests := []struct {
		name        string
		query       string
		contentType string
		body        string
		basic       string
		wantCode    int
	}{
		{"password: client id in query, credentials in body (SDK)", "?grant_type=password&client_id=vigil-dev", js,
			`{"email":"analyst@vigil.local","password":"vigil-dev"}`, "", 200},
		{"password: all four fields in body (XSOAR, Kibana)", "", js,
			`{"email":"analyst@vigil.local","password":"vigil-dev","grant_type":"password","client_id":"vigil-dev"}`, "", 200},
		{"password: form body", "", "application/x-www-form-urlencoded",
			"grant_type=password&client_id=vigil-dev&email=analyst%40vigil.local&password=vigil-dev", "", 200},
		{"password: JSON body labelled as a form (curl -d)", "", "application/x-www-form-urlencoded",
			`{"email":"analyst@vigil.local","password":"vigil-dev","grant_type":"password","client_id":"vigil-dev"}`, "", 200},
		{"password: all in query", "?grant_type=password&client_id=vigil-dev&email=analyst@vigil.local&password=vigil-dev", "", "", "", 200},
		{"password: wrong password", "?grant_type=password&client_id=vigil-dev", js,
			`{"email":"analyst@vigil.local","password":"nope"}`, "", 400},
		{"password: wrong client id", "?grant_type=password&client_id=other", js,
			`{"email":"analyst@vigil.local","password":"vigil-dev"}`, "", 400},
		{"password: missing email", "?grant_type=password&client_id=vigil-dev", js, `{"password":"vigil-dev"}`, "", 400},
		{"client_credentials: basic auth", "?grant_type=client_credentials", "", "", "vigil-dev:vigil-dev-secret", 200},
		{"client_credentials: wrong secret", "?grant_type=client_credentials", "", "", "vigil-dev:nope", 400},
		{"client_credentials: no basic auth", "?grant_type=client_credentials", "", "", "", 400},
		{"missing grant type", "", js, `{"email":"analyst@vigil.local","password":"vigil-dev"}`, "", 400},
		{"unknown grant type", "?grant_type=implicit", "", "", "", 400},
		{"refresh: unknown refresh token", "?grant_type=refresh_token&refresh_token=nope", "", "", "", 400},
		{"malformed JSON body", "?grant_type=password", js, `{`, "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tqemu.Options{TokenTTL: 30 * time.Minute})
			r := tokenRequest(t, f, tc.query, tc.contentType, tc.body, tc.basic)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", r.code, tc.wantCode, r.body)
			}
			m := r.json(t)
			if tc.wantCode != 200 {
				if m["error"] == nil || m["access_token"] != nil {
					t.Fatalf("error body %v: want an error and no access_token", m)
				}
				return
			}
			if m["token_type"] != "bearer" || num(m["expires_in"]) != 1800 {
				t.Fatalf("token_type/expires_in = %v/%v, want bearer/1800", m["token_type"], m["expires_in"])
			}
			for _, k := range []string{"access_token", "refresh_token"} {
				if s, _ := m[k].(string); s == "" {
					t.Fatalf("%s missing in %v", k, m)
				}
			}
			if got := f.callAuth("GET", "/api/indicator/statuses", nil, "Bearer "+m["access_token"].(string)).code; got != 200 {
				t.Fatalf("issued token rejected: %d", got)
			}
		})
	}
}

func TestRefreshTokenRotates(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	first := tokenRequest(t, f, "?grant_type=client_credentials", "", "", "vigil-dev:vigil-dev-secret").json(t)
	rt := first["refresh_token"].(string)
	q := "?grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt)
	second := tokenRequest(t, f, q, "", "", "")
	if second.code != 200 {
		t.Fatalf("refresh: %d %s", second.code, second.body)
	}
	m := second.json(t)
	if m["access_token"] == first["access_token"] || m["refresh_token"] == rt {
		t.Fatalf("refresh returned the old tokens: %v", m)
	}
	if again := tokenRequest(t, f, q, "", "", ""); again.code != 400 {
		t.Fatalf("reusing a rotated refresh token: %d, want 400", again.code)
	}
}

func TestBearerCheck(t *testing.T) {
	f := newFixture(t, tqemu.Options{TokenTTL: time.Hour})
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"capital Bearer", "Bearer " + f.token, 200},
		{"lowercase bearer is rejected", "bearer " + f.token, 401},
		{"upper-case BEARER is rejected", "BEARER " + f.token, 401},
		{"no header", "", 401},
		{"unknown token", "Bearer deadbeef", 401},
		{"basic scheme", "Basic dmlnaWwtZGV2OnZpZ2lsLWRldg==", 401},
		{"empty token", "Bearer ", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.callAuth("GET", "/api/indicator/types", nil, tc.auth)
			if r.code != tc.want {
				t.Fatalf("status %d, want %d", r.code, tc.want)
			}
			if tc.want == 401 {
				if errs, ok := r.json(t)["errors"].([]any); !ok || len(errs) == 0 {
					t.Fatalf("401 body %s lacks errors list", r.body)
				}
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t, tqemu.Options{TokenTTL: 10 * time.Minute})
	if r := f.call("GET", "/api/indicators", nil); r.code != 200 {
		t.Fatalf("fresh token: %d", r.code)
	}
	f.clock.Advance(9*time.Minute + 59*time.Second)
	if r := f.call("GET", "/api/indicators", nil); r.code != 200 {
		t.Fatalf("token before expiry: %d", r.code)
	}
	f.clock.Advance(time.Second)
	if r := f.call("GET", "/api/indicators", nil); r.code != 401 {
		t.Fatalf("expired token: %d, want 401", r.code)
	}
}

func TestExpireTokensStorm(t *testing.T) {
	f := newFixture(t, tqemu.Options{})
	tok := tokenRequest(t, f, "?grant_type=client_credentials", "", "", "vigil-dev:vigil-dev-secret").json(t)
	f.emu.ExpireTokens()
	if r := f.call("GET", "/api/indicators", nil); r.code != 401 {
		t.Fatalf("after storm: %d, want 401", r.code)
	}
	// Refresh tokens survive the storm.
	r := tokenRequest(t, f, "?grant_type=refresh_token&refresh_token="+tok["refresh_token"].(string), "", "", "")
	if r.code != 200 {
		t.Fatalf("refresh after storm: %d %s", r.code, r.body)
	}
	if got := f.callAuth("GET", "/api/indicators", nil, "Bearer "+r.json(t)["access_token"].(string)).code; got != 200 {
		t.Fatalf("new token after storm: %d", got)
	}
}
