package greynoise

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

func serve(t *testing.T, status int, body string, wantKey string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/community/203.0.113.9" || r.Header.Get("key") != wantKey {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: wantKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var ind = events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.9"}

func TestMapping(t *testing.T) {
	t.Parallel()
	body := `{"ip":"203.0.113.9","noise":true,"riot":false,"classification":"malicious","name":"unknown","link":"https://viz.example","last_seen":"2026-11-30","message":"Success"}`
	res, err := serve(t, 200, body, "").Lookup(t.Context(), ind)
	if err != nil {
		t.Fatal(err)
	}
	x := res.Exposure
	if !res.Found || !x.Malicious || !x.Scanner || x.GreyNoiseClass != "malicious" || x.LastSeen.Format("2006-01-02") != "2026-11-30" {
		t.Errorf("exposure: %+v", x)
	}
	if res.Fields["noise"] != "true" || res.Fields["riot"] != "false" || res.Fields["classification"] != "malicious" {
		t.Errorf("fields: %v", res.Fields)
	}
	// with a key
	if _, err := serve(t, 200, body, "gn-key").Lookup(t.Context(), ind); err != nil {
		t.Errorf("with key: %v", err)
	}
}

func TestNotObservedAndErrors(t *testing.T) {
	t.Parallel()
	res, err := serve(t, 404, `{"ip":"203.0.113.9","noise":false,"riot":false,"message":"IP not observed scanning the internet or contained in RIOT data set."}`, "").Lookup(t.Context(), ind)
	if err != nil || res.Found {
		t.Errorf("not observed: %+v %v", res, err)
	}
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{404, `not found`, provider.ErrBadResponse},
		{404, `{"ip":"203.0.113.1","noise":false,"riot":false,"message":"x"}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","noise":true,"riot":false,"classification":"evil"}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","riot":false}`, provider.ErrBadResponse},
		{200, `{"ip":"203.0.113.9","noise":true,"riot":false,"last_seen":"30/11/2026"}`, provider.ErrBadResponse},
		{400, `{"message":"Request is not a valid routable IPv4 address"}`, provider.ErrInvalidInput},
		{401, `{"message":"Unauthorized"}`, provider.ErrAuth},
		{429, `{"message":"rate"}`, provider.ErrRateLimited},
		{500, ``, provider.ErrUnavailable},
	}
	for _, tc := range cases {
		if _, err := serve(t, tc.status, tc.body, "").Lookup(t.Context(), ind); !errors.Is(err, tc.want) {
			t.Errorf("%d %s: err = %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
}
