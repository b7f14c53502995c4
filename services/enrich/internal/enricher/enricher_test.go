package enricher

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

func TestSkipsNeverReachProvider(t *testing.T) {
	ipOnly := &fakeProvider{name: "ipsrc", types: []string{events.TypeIPv4, events.TypeIPv6}}
	lenient := &fakeProvider{name: "offline"}
	suffixes, err := indicator.ParseInternalSuffixes("default,corp.example.com")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEnricher(t, setup{
		cfg: Config{InternalSuffixes: suffixes, Providers: map[string]ProviderConfig{
			"ipsrc":   enabled(ProviderConfig{}),
			"offline": enabled(ProviderConfig{AllowInternal: true, AllowAllowlisted: true}),
		}},
		provs: []provider.Provider{ipOnly, lenient},
	})
	allow := &events.ListMatch{List: "corp-allow", Reason: "ours"}
	tests := []struct {
		name        string
		obs         events.Observation
		ipsrc       string // skip reason for ipsrc ("" = queried)
		offline     string // skip reason for offline
		neverQueued bool   // the value must never reach any provider
	}{
		{"unsupported type", events.Observation{Indicator: events.Indicator{Type: events.TypeDomain, Value: "example.org"}}, ReasonUnsupported, "", false},
		{"path after ip", ip("1.2.3.4/../x"), ReasonInvalid, ReasonInvalid, true},
		{"encoded crlf domain", events.Observation{Indicator: events.Indicator{Type: events.TypeDomain, Value: "a.com%0d%0a"}}, ReasonUnsupported, ReasonInvalid, true},
		{"raw crlf domain", events.Observation{Indicator: events.Indicator{Type: events.TypeDomain, Value: "a.com\r\nX-Evil: 1"}}, ReasonUnsupported, ReasonInvalid, true},
		{"non-canonical ip", ip("001.002.003.004"), ReasonInvalid, ReasonInvalid, true},
		{"ipv4 typed as ipv6", events.Observation{Indicator: events.Indicator{Type: events.TypeIPv6, Value: "1.2.3.4"}}, ReasonInvalid, ReasonInvalid, true},
		{"allowlisted", events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "45.33.33.9"}, Allowlist: allow}, ReasonAllowlisted, "", false},
		{"internal rfc1918", ip("10.1.2.3"), ReasonInternal, "", false},
		{"internal suffix", events.Observation{Indicator: events.Indicator{Type: events.TypeDomain, Value: "fs.corp.example.com"}}, ReasonUnsupported, "", false},
		{"internal suffix for an ip-capable source", events.Observation{Indicator: events.Indicator{Type: events.TypeURL, Value: "http://fs.corp.example.com/x"}}, ReasonUnsupported, "", false},
		{"public ip", ip("45.33.32.7"), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ipOnly.count() + lenient.count()
			out := batch(t, e, tt.obs)
			for name, want := range map[string]string{"ipsrc": tt.ipsrc, "offline": tt.offline} {
				r := result(t, out[0], name)
				if want == "" {
					if r.Status != events.StatusOK {
						t.Errorf("%s: status %s (%s), want ok", name, r.Status, r.Error)
					}
					continue
				}
				if r.Status != events.StatusSkipped || r.Error != want {
					t.Errorf("%s: got %s/%s, want skipped/%s", name, r.Status, r.Error, want)
				}
			}
			if tt.neverQueued && ipOnly.count()+lenient.count() != before {
				t.Fatalf("an invalid value reached a provider")
			}
		})
	}
	for _, f := range []*fakeProvider{ipOnly, lenient} {
		for _, ind := range f.seen {
			for _, tt := range tests {
				if tt.neverQueued && ind == tt.obs.Indicator {
					t.Fatalf("%s saw %q", f.name, ind.Value)
				}
			}
		}
	}
}

func TestDedupOneLookupPerBatch(t *testing.T) {
	a := &fakeProvider{name: "a"}
	b := &fakeProvider{name: "b"}
	cc := &countingCache{Cache: cache.New(cache.Config{}, nil, nil)}
	e, err := New(Config{Retry: fastRetry, Providers: map[string]ProviderConfig{"a": enabled(ProviderConfig{}), "b": enabled(ProviderConfig{})}},
		[]provider.Provider{a, b}, cc, limit.New(nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var obs []events.Observation
	for i := range 30 {
		obs = append(obs, ip(fmt.Sprintf("45.33.32.%d", i%3+1)))
	}
	out := batch(t, e, obs...)
	if a.count() != 3 || b.count() != 3 {
		t.Fatalf("calls a=%d b=%d, want 3 each", a.count(), b.count())
	}
	if cc.getMany != 1 {
		t.Fatalf("GetMany called %d times, want 1", cc.getMany)
	}
	for _, en := range out {
		if r := result(t, en, "a"); r.Status != events.StatusOK || r.Fields["from"] != "a" {
			t.Fatalf("result %+v", r)
		}
	}
}

func TestTTLExpiryAndRefetch(t *testing.T) {
	tests := []struct {
		name   string
		found  bool
		pc     ProviderConfig
		status string
		cacheM string
	}{
		{"hit ttl", true, ProviderConfig{TTLHit: 400 * time.Millisecond, TTLNotFound: time.Hour}, events.StatusOK, "hit"},
		{"not-found ttl", false, ProviderConfig{TTLHit: time.Hour, TTLNotFound: 400 * time.Millisecond}, events.StatusNotFound, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProvider{name: "p", fn: func(int, events.Indicator) (provider.Result, error) {
				return provider.Result{Found: tt.found, Fields: map[string]string{"k": "v"}}, nil
			}}
			e, m := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(tt.pc)}}, provs: []provider.Provider{f}})
			first := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
			if first.Status != tt.status || !first.CachedAt.IsZero() || first.FetchedAt.IsZero() {
				t.Fatalf("first: %+v", first)
			}
			second := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
			if f.count() != 1 || second.Status != tt.status || second.CachedAt.IsZero() {
				t.Fatalf("second: calls=%d %+v", f.count(), second)
			}
			if m.cache["p/"+tt.cacheM] != 1 {
				t.Fatalf("cache metrics %v", m.cache)
			}
			time.Sleep(450 * time.Millisecond)
			third := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
			if f.count() != 2 || !third.CachedAt.IsZero() {
				t.Fatalf("after ttl: calls=%d %+v", f.count(), third)
			}
		})
	}
}

func TestConfiguredTTLEnforcedOnRead(t *testing.T) {
	store := cache.New(cache.Config{}, nil, nil)
	f := &fakeProvider{name: "p"}
	e, m := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{TTLHit: 50 * time.Millisecond})}},
		provs: []provider.Provider{f}, store: store})
	ind := events.Indicator{Type: events.TypeIPv4, Value: "45.33.32.7"}
	// An entry written with a longer TTL (e.g. before a config change) is still re-fetched after TTLHit.
	old := cache.Entry{Status: events.StatusOK, FetchedAt: time.Now().Add(-80 * time.Millisecond), TTL: time.Hour}
	if err := store.Set(t.Context(), cache.Key("p", "anon", ind), old); err != nil {
		t.Fatal(err)
	}
	r := result(t, batch(t, e, events.Observation{Indicator: ind})[0], "p")
	if f.count() != 1 || !r.CachedAt.IsZero() || m.cache["p/stale"] != 1 {
		t.Fatalf("calls=%d result=%+v metrics=%v", f.count(), r, m.cache)
	}
}

func TestErrorsNotCached(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		slow   bool
		status string
		class  string
	}{
		{"unavailable", fmt.Errorf("get: %w", provider.ErrUnavailable), false, events.StatusError, ClassUnavailable},
		{"throttled", &provider.Error{Kind: provider.ErrRateLimited, Status: 429}, false, events.StatusRateLimited, ClassRateLimited},
		{"quota", &provider.Error{Kind: provider.ErrQuota, Message: "limit exceeded"}, false, events.StatusRateLimited, ClassQuota},
		{"auth", &provider.Error{Kind: provider.ErrAuth, Status: 401, Message: "invalid api key"}, false, events.StatusError, ClassAuth},
		{"bad response", provider.ErrBadResponse, false, events.StatusError, ClassBadResponse},
		{"invalid input", provider.ErrInvalidInput, false, events.StatusError, ClassInvalidInput},
		{"timeout", nil, true, events.StatusError, ClassTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProvider{name: "p", fn: func(int, events.Indicator) (provider.Result, error) { return provider.Result{}, tt.err }}
			pc := ProviderConfig{}
			if tt.slow {
				f.delay, f.fn, pc.Timeout = time.Second, nil, 20*time.Millisecond
			}
			e, _ := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(pc)}}, provs: []provider.Provider{f}})
			for i := 1; i <= 2; i++ {
				r := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
				if r.Status != tt.status || r.Error != tt.class || r.Fields != nil {
					t.Fatalf("batch %d: %+v, want %s/%s", i, r, tt.status, tt.class)
				}
				if f.count() != i {
					t.Fatalf("batch %d: %d calls: the error was cached", i, f.count())
				}
			}
		})
	}
}

func TestRetries(t *testing.T) {
	retry := RetryConfig{MaxAttempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 5 * time.Second}
	tests := []struct {
		name   string
		errs   []error // per attempt; past the end: found
		calls  int
		status string
	}{
		{"transient then ok", []error{provider.ErrUnavailable, context.DeadlineExceeded}, 3, events.StatusOK},
		{"attempts bounded", []error{provider.ErrUnavailable, provider.ErrUnavailable, provider.ErrUnavailable, provider.ErrUnavailable}, 3, events.StatusError},
		{"auth not retried", []error{provider.ErrAuth}, 1, events.StatusError},
		{"bad response not retried", []error{provider.ErrBadResponse}, 1, events.StatusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProvider{name: "p", fn: func(n int, _ events.Indicator) (provider.Result, error) {
				if n < len(tt.errs) {
					return provider.Result{}, tt.errs[n]
				}
				return provider.Result{Found: true}, nil
			}}
			e, _ := newEnricher(t, setup{cfg: Config{Retry: retry, Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})}}, provs: []provider.Provider{f}})
			r := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
			if r.Status != tt.status || f.count() != tt.calls {
				t.Fatalf("status %s (%s) after %d calls, want %s after %d", r.Status, r.Error, f.count(), tt.status, tt.calls)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := &fakeProvider{name: "p", fn: func(n int, _ events.Indicator) (provider.Result, error) {
		if n == 0 {
			return provider.Result{}, &provider.Error{Kind: provider.ErrRateLimited, Status: 429, RetryAfter: 200 * time.Millisecond}
		}
		return provider.Result{Found: true}, nil
	}}
	e, _ := newEnricher(t, setup{cfg: Config{
		Retry:     RetryConfig{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: 5 * time.Second},
		Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})},
	}, provs: []provider.Provider{f}})
	r := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
	calls := f.callTimes()
	if r.Status != events.StatusOK || len(calls) != 2 {
		t.Fatalf("status %s after %d calls", r.Status, len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < 200*time.Millisecond {
		t.Fatalf("second attempt %s after the first, want >= 200ms (Retry-After)", gap)
	}
}

func TestRetryAfterBeyondBudgetIsRateLimited(t *testing.T) {
	f := &fakeProvider{name: "p", fn: func(int, events.Indicator) (provider.Result, error) {
		return provider.Result{}, &provider.Error{Kind: provider.ErrRateLimited, RetryAfter: time.Hour}
	}}
	e, _ := newEnricher(t, setup{cfg: Config{
		Retry:     RetryConfig{MaxAttempts: 3, MaxElapsed: time.Second},
		Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})},
	}, provs: []provider.Provider{f}})
	start := time.Now()
	r := result(t, batch(t, e, ip("45.33.32.7"))[0], "p")
	if r.Status != events.StatusRateLimited || f.count() != 1 || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("status %s, %d calls, took %s", r.Status, f.count(), time.Since(start))
	}
}

func TestQuotaExhaustionWaitsThenProceeds(t *testing.T) {
	const win = 300 * time.Millisecond
	f := &fakeProvider{name: "p"}
	e, m := newEnricher(t, setup{cfg: Config{Concurrency: 1, Providers: map[string]ProviderConfig{
		"p": enabled(ProviderConfig{Quotas: []limit.Quota{{Window: win, Limit: 2}}, MaxWait: 2 * time.Second}),
	}}, provs: []provider.Provider{f}})
	time.Sleep(win - time.Duration(time.Now().UnixNano()%int64(win)) + 5*time.Millisecond)
	start := time.Now()
	out := batch(t, e, ip("45.33.32.1"), ip("45.33.32.2"), ip("45.33.32.3"))
	for _, en := range out {
		if r := result(t, en, "p"); r.Status != events.StatusOK {
			t.Fatalf("%s: %s (%s)", en.Observation.Indicator.Value, r.Status, r.Error)
		}
	}
	calls := f.callTimes()
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	if calls[2].UnixNano()/int64(win) == start.UnixNano()/int64(win) {
		t.Fatalf("third call in the exhausted window: it did not wait")
	}
	if _, ok := m.quota["p"]; !ok {
		t.Fatal("quota metric not reported")
	}
}

func TestQuotaBeyondMaxWaitIsRateLimited(t *testing.T) {
	f := &fakeProvider{name: "p"}
	e, _ := newEnricher(t, setup{cfg: Config{Concurrency: 1, Providers: map[string]ProviderConfig{
		"p": enabled(ProviderConfig{Quotas: []limit.Quota{{Window: time.Hour, Limit: 1}}, MaxWait: 20 * time.Millisecond}),
	}}, provs: []provider.Provider{f}})
	out := batch(t, e, ip("45.33.32.1"), ip("45.33.32.2"))
	if r := result(t, out[1], "p"); r.Status != events.StatusRateLimited || r.Error != ClassQuota {
		t.Fatalf("second: %+v", r)
	}
	if f.count() != 1 {
		t.Fatalf("%d calls, want 1", f.count())
	}
}

// breakerSetup: provider "flaky" fails until healed; "steady" always answers.
func breakerSetup(t *testing.T, required bool) (*Enricher, *fakeMetrics, *fakeProvider) {
	flaky := &fakeProvider{name: "flaky", fn: func(int, events.Indicator) (provider.Result, error) {
		return provider.Result{}, provider.ErrUnavailable
	}}
	steady := &fakeProvider{name: "steady"}
	e, m := newEnricher(t, setup{cfg: Config{
		Concurrency: 1,
		Breaker:     BreakerConfig{Failures: 3, OpenFor: 200 * time.Millisecond},
		Providers: map[string]ProviderConfig{
			"flaky":  enabled(ProviderConfig{Required: required}),
			"steady": enabled(ProviderConfig{}),
		},
	}, provs: []provider.Provider{flaky, steady}})
	return e, m, flaky
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	e, m, flaky := breakerSetup(t, false)
	var obs []events.Observation
	for i := range 6 {
		obs = append(obs, ip(fmt.Sprintf("45.33.32.%d", i+1)))
	}
	out := batch(t, e, obs...)
	var open, failed int
	for _, en := range out {
		switch r := result(t, en, "flaky"); r.Status {
		case events.StatusBreakerOpen:
			open++
		case events.StatusError:
			failed++
		default:
			t.Fatalf("flaky: %+v", r)
		}
		if r := result(t, en, "steady"); r.Status != events.StatusOK {
			t.Fatalf("steady provider not enriched: %+v", r)
		}
		if en.Exposure.InboundScore != 3 {
			t.Fatalf("partial enrichment lost the steady provider's exposure: %+v", en.Exposure)
		}
	}
	if failed != 3 || open != 3 || flaky.count() != 3 {
		t.Fatalf("failed=%d open=%d calls=%d, want 3/3/3", failed, open, flaky.count())
	}
	if m.lastBreaker("flaky") != "open" {
		t.Fatalf("breaker metric %v", m.breakers)
	}

	flaky.setFn(nil) // provider recovers
	time.Sleep(250 * time.Millisecond)
	r := result(t, batch(t, e, ip("45.33.33.1"))[0], "flaky")
	if r.Status != events.StatusOK {
		t.Fatalf("half-open probe: %+v", r)
	}
	if m.lastBreaker("flaky") != "closed" {
		t.Fatalf("breaker metric %v, want closed after a good probe", m.breakers)
	}
	r = result(t, batch(t, e, ip("45.33.33.2"))[0], "flaky")
	if r.Status != events.StatusOK {
		t.Fatalf("after recovery: %+v", r)
	}
}

func TestBreakerIgnoresNotFoundAndInvalidInput(t *testing.T) {
	f := &fakeProvider{name: "p", fn: func(n int, _ events.Indicator) (provider.Result, error) {
		if n%2 == 0 {
			return provider.Result{}, provider.ErrInvalidInput
		}
		return provider.Result{Found: false}, nil
	}}
	e, m := newEnricher(t, setup{cfg: Config{Concurrency: 1, Breaker: BreakerConfig{Failures: 2},
		Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})}}, provs: []provider.Provider{f}})
	var obs []events.Observation
	for i := range 8 {
		obs = append(obs, ip(fmt.Sprintf("45.33.32.%d", i+1)))
	}
	for _, en := range batch(t, e, obs...) {
		if r := result(t, en, "p"); r.Status == events.StatusBreakerOpen {
			t.Fatalf("breaker opened on not-found / invalid input")
		}
	}
	if f.count() != 8 || m.lastBreaker("p") != "closed" {
		t.Fatalf("calls=%d breaker=%v", f.count(), m.breakers)
	}
}

func TestRequiredProviderDown(t *testing.T) {
	e, _, _ := breakerSetup(t, true)
	var obs []events.Observation
	for i := range 5 {
		obs = append(obs, ip(fmt.Sprintf("45.33.32.%d", i+1)))
	}
	out, err := e.EnrichBatch(t.Context(), obs)
	if !errors.Is(err, ErrRequiredProviderDown) || out != nil {
		t.Fatalf("err = %v, out = %d", err, len(out))
	}
	// A record the required provider does not need (skipped) still goes through.
	if _, err := e.EnrichBatch(t.Context(), []events.Observation{ip("10.0.0.1")}); err != nil {
		t.Fatalf("internal-only batch: %v", err)
	}
}

func TestCanceledBatchReturnsError(t *testing.T) {
	f := &fakeProvider{name: "p", delay: time.Second}
	e, _ := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})}}, provs: []provider.Provider{f}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := e.EnrichBatch(ctx, []events.Observation{ip("45.33.32.7")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestAgeRecorded(t *testing.T) {
	store := cache.New(cache.Config{}, nil, nil)
	f := &fakeProvider{name: "p"}
	e, m := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{})}}, provs: []provider.Provider{f}, store: store})
	ind := events.Indicator{Type: events.TypeIPv4, Value: "45.33.32.7"}
	if err := store.Set(t.Context(), cache.Key("p", "anon", ind), cache.Entry{Status: events.StatusOK, FetchedAt: time.Now().Add(-time.Hour), TTL: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	batch(t, e, events.Observation{Indicator: ind}, events.Observation{Indicator: ind})
	ages := m.ages["p"]
	if len(ages) != 2 || ages[0] < time.Hour || f.count() != 0 {
		t.Fatalf("ages %v calls %d", ages, f.count())
	}
}

func TestCredentialSeparatesCache(t *testing.T) {
	store := cache.New(cache.Config{}, nil, nil)
	f1, f2 := &fakeProvider{name: "p"}, &fakeProvider{name: "p"}
	mk := func(f *fakeProvider, secret string) *Enricher {
		e, _ := newEnricher(t, setup{cfg: Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{CredentialFingerprint: cache.Fingerprint(secret)})}},
			provs: []provider.Provider{f}, store: store})
		return e
	}
	batch(t, mk(f1, "account-1"), ip("45.33.32.7"))
	batch(t, mk(f2, "account-2"), ip("45.33.32.7"))
	if f1.count() != 1 || f2.count() != 1 {
		t.Fatalf("calls %d/%d: two accounts shared a cache entry", f1.count(), f2.count())
	}
}

func TestNewValidation(t *testing.T) {
	f := &fakeProvider{name: "p"}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"provider without config", Config{Providers: map[string]ProviderConfig{}}},
		{"secret as fingerprint", Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{CredentialFingerprint: "sk_live_0123456789abcdef"})}}},
		{"negative rate", Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{Rate: -1})}}},
		{"bad quota", Config{Providers: map[string]ProviderConfig{"p": enabled(ProviderConfig{Quotas: []limit.Quota{{Window: time.Hour}}})}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, []provider.Provider{f}, cache.New(cache.Config{}, nil, nil), limit.New(nil), nil, nil); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	e, err := New(Config{Providers: map[string]ProviderConfig{"p": {Enabled: false}}}, []provider.Provider{f}, cache.New(cache.Config{}, nil, nil), limit.New(nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := batch(t, e, ip("45.33.32.7"))
	if len(out[0].Results) != 0 || f.count() != 0 {
		t.Fatalf("disabled provider used: %+v", out[0].Results)
	}
}
