package abuseipdb

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

const key = "abuse-key-42"

func serve(t *testing.T, status int, header http.Header, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/v2/check" || q.Get("ipAddress") != "203.0.113.9" || q.Get("maxAgeInDays") != "30" || r.Header.Get("Key") != key {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: key, MaxAgeInDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var ind = events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.9"}

const good = `{"data":{"ipAddress":"203.0.113.9","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":87,
"countryCode":"NL","usageType":"Data Center/Web Hosting/Transit","isp":"Example BV","domain":"example.nl","hostnames":[],
"isTor":true,"totalReports":12,"numDistinctUsers":5,"lastReportedAt":"2026-11-30T10:00:00+01:00"}}`

func TestMapping(t *testing.T) {
	t.Parallel()
	res, err := serve(t, 200, nil, good).Lookup(t.Context(), ind)
	if err != nil {
		t.Fatal(err)
	}
	x := res.Exposure
	if !res.Found || x.AbuseConfidence != 87 || x.Country != "NL" || !x.Tor || !x.Hosting || !x.LastSeen.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("exposure: %+v", x)
	}
	if res.Fields["abuse_confidence_score"] != "87" || res.Fields["total_reports"] != "12" || res.Fields["usage_type"] == "" {
		t.Errorf("fields: %v", res.Fields)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   error
		ra     time.Duration
	}{
		{"score range", 200, nil, strings.Replace(good, `87`, `101`, 1), provider.ErrBadResponse, 0},
		{"wrong ip", 200, nil, strings.Replace(good, `"203.0.113.9"`, `"203.0.113.8"`, 1), provider.ErrBadResponse, 0},
		{"wrong version", 200, nil, strings.Replace(good, `"ipVersion":4`, `"ipVersion":6`, 1), provider.ErrBadResponse, 0},
		{"no score", 200, nil, strings.Replace(good, `"abuseConfidenceScore":87,`, ``, 1), provider.ErrBadResponse, 0},
		{"bad country", 200, nil, strings.Replace(good, `"NL"`, `"nld"`, 1), provider.ErrBadResponse, 0},
		{"bad time", 200, nil, strings.Replace(good, `2026-11-30T10:00:00+01:00`, `yesterday`, 1), provider.ErrBadResponse, 0},
		{"no data", 200, nil, `{"errors":[]}`, provider.ErrBadResponse, 0},
		{"auth", 401, nil, `{"errors":[{"detail":"Authentication failed.","status":401}]}`, provider.ErrAuth, 0},
		{"rate", 429, http.Header{"Retry-After": {"15"}}, `{"errors":[{"detail":"Too many","status":429}]}`, provider.ErrRateLimited, 15 * time.Second},
		{"quota", 429, http.Header{"Retry-After": {"3600"}, "X-Ratelimit-Remaining": {"0"}}, `{"errors":[{"detail":"Daily rate limit","status":429}]}`, provider.ErrQuota, time.Hour},
		{"invalid", 422, nil, `{"errors":[{"detail":"bad ip","status":422}]}`, provider.ErrInvalidInput, 0},
		{"down", 502, nil, ``, provider.ErrUnavailable, 0},
	}
	for _, tc := range cases {
		_, err := serve(t, tc.status, tc.header, tc.body).Lookup(t.Context(), ind)
		var pe *provider.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &pe) || pe.RetryAfter != tc.ra {
			t.Errorf("%s: err = %#v, want %v (retry %v)", tc.name, err, tc.want, tc.ra)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no key":  {},
		"max age": {APIKey: "k", MaxAgeInDays: 400},
		"bad url": {APIKey: "k", BaseURL: "127.0.0.1:80"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}
