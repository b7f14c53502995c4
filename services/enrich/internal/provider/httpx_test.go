package provider

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		" 5 ":                           5 * time.Second,
		"0":                             0,
		"-4":                            0,
		"abc":                           0,
		"99999999":                      0,
		"Tue, 01 Dec 2026 12:01:30 GMT": 90 * time.Second,
		"Tue, 01 Dec 2026 11:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStatusError(t *testing.T) {
	t.Parallel()
	h := http.Header{"Retry-After": {"12"}}
	cases := []struct {
		status int
		want   error
		ra     time.Duration
	}{
		{401, ErrAuth, 0}, {403, ErrAuth, 0}, {429, ErrRateLimited, 12 * time.Second},
		{500, ErrUnavailable, 12 * time.Second}, {503, ErrUnavailable, 12 * time.Second},
		{400, ErrInvalidInput, 0}, {422, ErrInvalidInput, 0}, {404, ErrBadResponse, 0}, {301, ErrBadResponse, 0},
	}
	for _, tc := range cases {
		e := StatusError(tc.status, h, "")
		if !errors.Is(e, tc.want) || e.RetryAfter != tc.ra || e.Status != tc.status || e.Message == "" {
			t.Errorf("%d: %+v", tc.status, e)
		}
	}
}

func TestCanonicalIP(t *testing.T) {
	t.Parallel()
	ok := []events.Indicator{
		{Type: events.TypeIPv4, Value: "203.0.113.7"},
		{Type: events.TypeIPv6, Value: "2001:db8::7"},
	}
	bad := []events.Indicator{
		{Type: events.TypeIPv4, Value: "203.0.113.07"},
		{Type: events.TypeIPv4, Value: "2001:db8::7"},
		{Type: events.TypeIPv6, Value: "203.0.113.7"},
		{Type: events.TypeIPv6, Value: "::ffff:203.0.113.7"},
		{Type: events.TypeIPv6, Value: "2001:0db8::7"},
		{Type: events.TypeIPv6, Value: "fe80::1%eth0"},
		{Type: events.TypeDomain, Value: "203.0.113.7"},
		{Type: events.TypeIPv4, Value: ""},
	}
	for _, ind := range ok {
		if _, err := CanonicalIP(ind); err != nil {
			t.Errorf("%v: %v", ind, err)
		}
	}
	for _, ind := range bad {
		if _, err := CanonicalIP(ind); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%v: err = %v, want ErrInvalidInput", ind, err)
		}
	}
}

func TestCanonicalDomain(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"example.org": true, "xn--bcher-kva.de": true, "a-b.c.example.com": true, "bad.example": false,
		"Example.org": false, "example.org.": false, "localhost": false, "-a.example": false,
		"a..example": false, "exa_mple.org": false, "": false,
	} {
		_, err := CanonicalDomain(events.Indicator{Type: events.TypeDomain, Value: v})
		if (err == nil) != want {
			t.Errorf("%q: err = %v, want ok=%v", v, err, want)
		}
	}
}
