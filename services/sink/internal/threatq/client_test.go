package threatq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

// clock is a settable clock shared by the emulator and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	emu   *tqemu.Server
	srv   *httptest.Server
	c     *Client
	clock *clock
}

func newEnv(t *testing.T, seed uint64, mutate func(*Config)) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	emu := tqemu.New(tqemu.Options{Seed: seed, Now: clk.Now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	o := emu.Options()
	cfg := Config{BaseURL: srv.URL, ClientID: o.ClientID, Email: o.Email, Password: o.Password,
		AllowInsecureHTTP: true, Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	c.now = clk.Now
	if err := c.Resolve(t.Context()); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	return &env{emu: emu, srv: srv, c: c, clock: clk}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := Config{BaseURL: "https://tq.example", ClientID: "id", Email: "a@b", Password: "p"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{"password grant", func(*Config) {}, false},
		{"client credentials", func(c *Config) { c.Email, c.Password, c.ClientSecret = "", "", "s" }, false},
		{"no base url", func(c *Config) { c.BaseURL = "" }, true},
		{"http refused", func(c *Config) { c.BaseURL = "http://tq.example" }, true},
		{"http allowed", func(c *Config) { c.BaseURL, c.AllowInsecureHTTP = "http://127.0.0.1:1", true }, false},
		{"no client id", func(c *Config) { c.ClientID = "" }, true},
		{"no credentials", func(c *Config) { c.Password = "" }, true},
		{"bad scheme", func(c *Config) { c.BaseURL = "ftp://x" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg := Config{BaseURL: "https://tq", ClientID: "cid-secret-1", Email: "a@b", Password: "pw-secret-2", ClientSecret: "cs-secret-3"}
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("cfg", "threatq", cfg)
	outs := []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%+v", cfg), buf.String()}
	for _, out := range outs {
		for _, secret := range []string{"cid-secret-1", "pw-secret-2", "cs-secret-3"} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q leaked in %q", secret, out)
			}
		}
	}
	if !strings.Contains(buf.String(), redacted) {
		t.Fatalf("log output lacks redaction marker: %s", buf.String())
	}
}

func TestResolveUsesInstanceIDs(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{3, 4} {
		e := newEnv(t, seed, nil)
		for _, name := range []string{"IP Address", "FQDN", "SHA-256"} {
			want, _ := e.emu.TypeID(name)
			got, err := e.c.TypeID(name)
			if err != nil || got != int64(want) {
				t.Fatalf("seed %d TypeID(%q) = %d, %v; want %d", seed, name, got, err, want)
			}
		}
		for _, name := range []string{"Active", "Review", "Whitelisted"} {
			want, _ := e.emu.StatusID(name)
			got, err := e.c.StatusID(name)
			if err != nil || got != int64(want) {
				t.Fatalf("seed %d StatusID(%q) = %d, %v; want %d", seed, name, got, err, want)
			}
		}
	}
	e := newEnv(t, 5, nil)
	if _, err := e.c.TypeID("IPv4 Address"); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("unknown type: err = %v, want ErrUnresolved", err)
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 6, func(c *Config) {
		c.Email, c.Password, c.ClientSecret = "", "", tqemu.DefaultClientSecret
	})
	if err := e.c.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	emu := tqemu.New(tqemu.Options{Seed: 7, Now: clk.Now})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, ClientID: "x", Email: "a@b", Password: "wrong-pass", AllowInsecureHTTP: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Resolve(t.Context())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-pass") {
		t.Fatalf("password in error: %v", err)
	}
}

func TestReauthOn401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8, nil)
	before := e.emu.Stats().TokensIssued
	e.emu.ExpireTokens() // server forgets every access token
	if err := e.c.Ping(t.Context()); err != nil {
		t.Fatalf("ping after server-side expiry: %v", err)
	}
	st := e.emu.Stats()
	if st.Responses[http.StatusUnauthorized] != 1 {
		t.Fatalf("401 responses = %d, want exactly 1 (one retry after re-auth)", st.Responses[http.StatusUnauthorized])
	}
	if st.TokensIssued != before+1 {
		t.Fatalf("tokens issued = %d, want %d", st.TokensIssued, before+1)
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 9, nil)
	old := e.c.access
	// The emulator's token lives 3600s; 59m30s later the client is inside its 60s margin.
	e.clock.Add(59*time.Minute + 30*time.Second)
	if err := e.c.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if e.c.access == old {
		t.Fatal("token was not refreshed before expiry")
	}
	if n := e.emu.Stats().Responses[http.StatusUnauthorized]; n != 0 {
		t.Fatalf("401 responses = %d, want 0 (refresh must happen before expiry)", n)
	}
	// Well past expiry (and past the refresh token's life) it logs in again.
	e.clock.Add(48 * time.Hour)
	if err := e.c.Ping(t.Context()); err != nil {
		t.Fatalf("ping after long idle: %v", err)
	}
}

func TestBearerHeaderCapitalised(t *testing.T) {
	t.Parallel()
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/token" {
			_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"bearer","expires_in":3600}`))
			return
		}
		got = r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{"data":[]}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/api/", ClientID: "x", Email: "a", Password: "b", AllowInsecureHTTP: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer tok" {
		t.Fatalf("Authorization = %q, want %q", got, "Bearer tok")
	}
}

func ip(v string) Indicator {
	return Indicator{Value: v, Type: "IP Address", Status: "Active", Sources: []Source{{Name: "Vigil", TLP: "AMBER"}}}
}

func TestConsumeExistingFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 10, nil)
	ctx := t.Context()
	first, err := e.c.Consume(ctx, []Indicator{ip("203.0.113.7"), ip("203.0.113.8")})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if first[0].Existing || first[1].Existing || first[0].ID == first[1].ID {
		t.Fatalf("first consume results = %+v", first)
	}
	second, err := e.c.Consume(ctx, []Indicator{ip("203.0.113.8"), ip("203.0.113.9")})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if !second[0].Existing || second[0].ID != first[1].ID || second[1].Existing {
		t.Fatalf("second consume results = %+v (first %+v)", second, first)
	}
	if second[0].Status != "Active" {
		t.Fatalf("status echoed = %q, want Active", second[0].Status)
	}
	if n := e.emu.Stats().Indicators; n != 3 {
		t.Fatalf("indicators stored = %d, want 3", n)
	}
	got, err := e.c.Get(ctx, "203.0.113.8", "IP Address")
	if err != nil || got.ID != first[1].ID || !got.HasSource("Vigil") {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := e.c.Get(ctx, "198.51.100.1", "IP Address"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
}

func TestConsumeValidationError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 11, nil)
	_, err := e.c.Consume(t.Context(), []Indicator{ip("203.0.113.7"), ip("not-an-ip")})
	if !errors.Is(err, ErrValidation) {
		t.Fatalf("err = %v, want ErrValidation", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "value") {
		t.Fatalf("APIError = %+v, want 400 with ThreatQ's text", ae)
	}
	if Retryable(err) {
		t.Fatal("validation error reported retryable")
	}
}

func TestUnavailableAndRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 12, nil)
	e.emu.SetFault(tqemu.Faults{Down: true, DownMode: tqemu.DownModeUnavailable})
	if err := e.c.Ping(t.Context()); !errors.Is(err, ErrUnavailable) || !Retryable(err) {
		t.Fatalf("down: err = %v, want ErrUnavailable", err)
	}
	e.emu.SetFault(tqemu.Faults{Down: true, DownMode: tqemu.DownModeClose})
	if err := e.c.Ping(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed conn: err = %v, want ErrUnavailable", err)
	}
	e.emu.SetFault(tqemu.Faults{RateLimitNext: 1, RetryAfter: 7 * time.Second})
	err := e.c.Ping(t.Context())
	if !errors.Is(err, ErrRateLimited) || RetryAfter(err) != 7*time.Second {
		t.Fatalf("rate limited: err = %v, retry after %s", err, RetryAfter(err))
	}
	e.emu.ClearFaults()
	if err := e.c.Ping(t.Context()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.c.Ping(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled: err = %v, want context.Canceled only", err)
	}
}

func TestReplaceAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 13, nil)
	ctx := t.Context()
	in := ip("203.0.113.7")
	in.Attributes = []Attribute{{Name: "Open Port", Value: "22", Sources: []string{"Vigil"}}, {Name: "Open Port", Value: "80", Sources: []string{"Vigil"}}}
	res, err := e.c.Consume(ctx, []Indicator{in})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].ID
	// An analyst's attribute on a name Vigil does not own, and one on a name it owns.
	if err := e.c.AddAttribute(ctx, id, Attribute{Name: "Analyst Note", Value: "seen in IR-12", Sources: []string{"Analyst"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.AddAttribute(ctx, id, Attribute{Name: "Open Port", Value: "8443", Sources: []string{"Analyst"}}); err != nil {
		t.Fatal(err)
	}
	want := []Attribute{{Name: "Open Port", Value: "80"}, {Name: "Open Port", Value: "443"}, {Name: "Is VPN", Value: "Yes"}}
	owned := []string{"Open Port", "Is VPN"}
	ch, err := e.c.ReplaceAttributes(ctx, id, "Vigil", owned, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Added != 2 || ch.Deleted != 1 || ch.Kept != 1 {
		t.Fatalf("changes = %+v, want added 2 deleted 1 kept 1", ch)
	}
	// Idempotent: the same call changes nothing.
	ch, err = e.c.ReplaceAttributes(ctx, id, "Vigil", owned, want, nil)
	if err != nil || ch.Added != 0 || ch.Deleted != 0 || ch.Kept != 3 {
		t.Fatalf("second replace = %+v, %v; want no change", ch, err)
	}
	got, _ := e.emu.Lookup("IP Address", "203.0.113.7")
	if ports := strings.Join(got.Attr("Open Port"), ","); ports != "80,8443,443" {
		t.Fatalf("Open Port values = %s, want 80,8443,443", ports)
	}
	if note := got.Attr("Analyst Note"); len(note) != 1 {
		t.Fatalf("foreign attribute touched: %v", note)
	}
	if vpn := got.Attr("Is VPN"); len(vpn) != 1 || vpn[0] != "Yes" {
		t.Fatalf("Is VPN = %v", vpn)
	}
}

func TestPlanAttributes(t *testing.T) {
	t.Parallel()
	cur := []Attribute{
		{ID: 1, Name: "A", Value: "1", Sources: []string{"Vigil"}},
		{ID: 2, Name: "A", Value: "1", Sources: []string{"Vigil"}}, // duplicate
		{ID: 3, Name: "A", Value: "2"},                             // no source info
		{ID: 4, Name: "B", Value: "x", Sources: []string{"Other"}},
		{ID: 5, Name: "C", Value: "old", Sources: []string{"vigil"}},
	}
	p := PlanAttributes("Vigil", []string{"C"}, []Attribute{{Name: "A", Value: "1"}, {Name: "A", Value: "3"}}, cur)
	var del []int64
	for _, a := range p.Delete {
		del = append(del, a.ID)
	}
	if fmt.Sprint(del) != "[2 3 5]" || len(p.Add) != 1 || p.Add[0].Value != "3" || p.Kept != 1 {
		t.Fatalf("plan = delete %v add %+v kept %d", del, p.Add, p.Kept)
	}
}

func TestSetStatusAndScore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 14, nil)
	ctx := t.Context()
	res, err := e.c.Consume(ctx, []Indicator{ip("203.0.113.7")})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].ID
	if err := e.c.SetStatus(ctx, id, "Review"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.SetScore(ctx, id, 7); err != nil {
		t.Fatal(err)
	}
	got, err := e.c.GetByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "Review" || got.Score.Manual != 7 || got.Score.Effective() != 7 {
		t.Fatalf("indicator = status %q score %+v", got.Status, got.Score)
	}
	if err := e.c.SetScore(ctx, id, -1); err != nil {
		t.Fatal(err)
	}
	if got, _ = e.c.GetByID(ctx, id); got.Score.Manual != -1 {
		t.Fatalf("cleared manual score = %v", got.Score.Manual)
	}
	if err := e.c.SetStatus(ctx, id, "Bogus"); !errors.Is(err, ErrUnresolved) {
		t.Fatalf("bogus status: %v", err)
	}
}

func TestQueryUpdatedSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 15, nil)
	ctx := t.Context()
	t0 := e.clock.Now()
	for i := range 5 {
		if _, err := e.c.Consume(ctx, []Indicator{ip(fmt.Sprintf("203.0.113.%d", i+1))}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Second)
	}
	page, total, err := e.c.QueryUpdatedSince(ctx, t0.Add(2*time.Second), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(page) != 2 || page[0].Value != "203.0.113.3" || page[1].Value != "203.0.113.4" {
		t.Fatalf("page = %+v total %d", page, total)
	}
	if !page[0].UpdatedAt.Equal(t0.Add(2*time.Second)) || page[0].Status != "Active" || !page[0].HasSource("Vigil") {
		t.Fatalf("decoded = %+v", page[0])
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{`{"data":{"errors":{"value":["The value is invalid."]}}}`, "value: The value is invalid."},
		{`{"errors":["First Error",["Part 1","Part 2"]]}`, "First Error; Part 1; Part 2"},
		{`{"message":"Unauthenticated."}`, "Unauthenticated."},
		{`plain text`, "plain text"},
		{``, ""},
	}
	for _, tt := range tests {
		if got := errorText([]byte(tt.body)); got != tt.want {
			t.Errorf("errorText(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestConsumeWithAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 14, nil)
	ctx := t.Context()
	in := ip("203.0.113.7")
	in.Attributes = []Attribute{{Name: "Open Port", Value: "22", Sources: []string{"Vigil"}}}
	plain, err := e.c.Consume(ctx, []Indicator{in})
	if err != nil {
		t.Fatal(err)
	}
	if plain[0].AttributesKnown || plain[0].Attributes != nil {
		t.Fatalf("plain consume reported attributes: %+v", plain[0])
	}
	in.Attributes = []Attribute{{Name: "Open Port", Value: "80", Sources: []string{"Vigil"}}}
	res, err := e.c.ConsumeWithAttributes(ctx, []Indicator{in, ip("203.0.113.8")})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].AttributesKnown || len(res[0].Attributes) != 2 {
		t.Fatalf("merged attributes = %+v, want the old and the appended value", res[0])
	}
	for _, a := range res[0].Attributes {
		if a.ID == 0 || a.Name != "Open Port" || len(a.Sources) != 1 || a.Sources[0] != "Vigil" {
			t.Fatalf("attribute = %+v, want id, name and source", a)
		}
	}
	if !res[1].AttributesKnown || len(res[1].Attributes) != 0 {
		t.Fatalf("indicator without attributes = %+v, want known and empty", res[1])
	}
	// The ids are usable: deleting the old value through them leaves exactly the new one.
	plan := PlanAttributes("Vigil", []string{"Open Port"}, in.Attributes, res[0].Attributes)
	if len(plan.Delete) != 1 || plan.Delete[0].Value != "22" {
		t.Fatalf("plan = %+v", plan)
	}
	if _, err := e.c.ReplaceAttributes(ctx, res[0].ID, "Vigil", []string{"Open Port"}, in.Attributes, res[0].Attributes); err != nil {
		t.Fatal(err)
	}
	got, _ := e.emu.Lookup("IP Address", "203.0.113.7")
	if ports := strings.Join(got.Attr("Open Port"), ","); ports != "80" {
		t.Fatalf("Open Port = %s, want 80", ports)
	}
	if n := e.emu.Stats().Calls["GET /api/indicators/{id}/attributes"]; n != 0 {
		t.Fatalf("attribute reads = %d, want 0", n)
	}
}

func TestEmbeddedErrorsFastPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body, want string
	}{
		{`{"data":[{"id":1,"value":"x"}]}`, ""},
		{`{"data":[],"errors":["boom"]}`, "boom"},
		{`{"data":[{"value":"errors"}]}`, ""},
	}
	for _, c := range cases {
		if got := embeddedErrors([]byte(c.body)); got != c.want {
			t.Errorf("embeddedErrors(%s) = %q, want %q", c.body, got, c.want)
		}
	}
}
