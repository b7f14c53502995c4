package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/abuseipdb"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/criminalip"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/greynoise"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/internetdb"
)

// clientCase describes one client wired to the emulator and the sentinel each fault maps to.
type clientCase struct {
	name  string
	route string
	build func(t testing.TB, base, key string, timeout time.Duration) provider.Provider
	// per-mode expectations where they differ between providers
	bodyError, quota, singleCall error
	notFoundFound                bool // AbuseIPDB answers every IP
	// critical checks the mapped answer for a KindCritical address
	critical func(x events.Exposure) bool
}

func clients() []clientCase {
	return []clientCase{
		{
			name: "criminalip", route: emulator.RouteCriminalIP,
			build: func(t testing.TB, base, key string, timeout time.Duration) provider.Provider {
				c, err := criminalip.New(criminalip.Config{BaseURL: base, APIKey: key, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			bodyError: provider.ErrQuota, quota: provider.ErrQuota, singleCall: provider.ErrRateLimited,
			critical: func(x events.Exposure) bool {
				return x.Malicious && x.InboundScore == 5 && len(x.CVEs) == 2 && x.CVEs[0].CVSS == 9.4 && len(x.OpenPorts) == 3 && len(x.Country) == 2
			},
		},
		{
			name: "internetdb", route: emulator.RouteInternetDB,
			build: func(t testing.TB, base, _ string, timeout time.Duration) provider.Provider {
				c, err := internetdb.New(internetdb.Config{BaseURL: base, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			bodyError: provider.ErrBadResponse, quota: provider.ErrRateLimited, singleCall: provider.ErrRateLimited,
			critical: func(x events.Exposure) bool {
				return len(x.CVEs) == 2 && len(x.OpenPorts) == 3
			},
		},
		{
			name: "abuseipdb", route: emulator.RouteAbuseIPDB,
			build: func(t testing.TB, base, key string, timeout time.Duration) provider.Provider {
				c, err := abuseipdb.New(abuseipdb.Config{BaseURL: base, APIKey: key, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			bodyError: provider.ErrBadResponse, quota: provider.ErrQuota, singleCall: provider.ErrRateLimited,
			notFoundFound: true,
			critical:      func(x events.Exposure) bool { return x.AbuseConfidence == 100 && x.Country != "" },
		},
		{
			name: "greynoise", route: emulator.RouteGreyNoise,
			build: func(t testing.TB, base, key string, timeout time.Duration) provider.Provider {
				c, err := greynoise.New(greynoise.Config{BaseURL: base, APIKey: key, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			bodyError: provider.ErrBadResponse, quota: provider.ErrRateLimited, singleCall: provider.ErrRateLimited,
			critical: func(x events.Exposure) bool {
				return x.Malicious && x.Scanner && x.GreyNoiseClass == "malicious" && !x.LastSeen.IsZero()
			},
		},
	}
}

func httptestServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

func startEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	emu := emulator.New(emulator.Config{})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

func ipv4(kind emulator.Kind) events.Indicator {
	return events.Indicator{Type: events.TypeIPv4, Value: emulator.IPOf(kind, 0)}
}

func TestClientsAgainstEmulatorOKAndNotFound(t *testing.T) {
	t.Parallel()
	for _, cc := range clients() {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			emu, base := startEmulator(t)
			p := cc.build(t, base, emulator.DefaultAPIKey, 2*time.Second)

			res, err := p.Lookup(t.Context(), ipv4(emulator.KindCritical))
			if err != nil {
				t.Fatalf("critical: %v", err)
			}
			if !res.Found || len(res.Fields) == 0 {
				t.Fatalf("critical: found=%v fields=%v", res.Found, res.Fields)
			}
			if !cc.critical(res.Exposure) {
				t.Errorf("critical: unexpected exposure %+v", res.Exposure)
			}

			res, err = p.Lookup(t.Context(), ipv4(emulator.KindNotFound))
			if err != nil {
				t.Fatalf("not found: %v", err)
			}
			if res.Found != cc.notFoundFound {
				t.Errorf("not found: Found=%v, want %v", res.Found, cc.notFoundFound)
			}
			if got := emu.Calls(cc.route, ""); got != 2 {
				t.Errorf("route calls = %d, want 2", got)
			}
			if got := emu.Calls(cc.route, emulator.IPOf(emulator.KindCritical, 0)); got != 1 {
				t.Errorf("indicator calls = %d, want 1", got)
			}
		})
	}
}

func TestClientsAgainstEmulatorFaults(t *testing.T) {
	t.Parallel()
	for _, cc := range clients() {
		cases := []struct {
			name           string
			fault          emulator.Fault
			key            string // client key; default the emulator's
			want           error
			wantRetryAfter time.Duration // exact when > 0
			wantRetryDate  bool          // RetryAfter in (0, 30s]
		}{
			{name: "down", fault: emulator.Fault{Mode: emulator.ModeDown}, want: provider.ErrUnavailable},
			{name: "unavailable", fault: emulator.Fault{Mode: emulator.ModeUnavailable}, want: provider.ErrUnavailable},
			{name: "slow beyond timeout", fault: emulator.Fault{Mode: emulator.ModeSlow, Delay: time.Second}, want: provider.ErrUnavailable},
			{name: "error rate 1", fault: emulator.Fault{Mode: emulator.ModeErrorRate, Rate: 1}, want: provider.ErrUnavailable},
			{name: "rate limit seconds", fault: emulator.Fault{Mode: emulator.ModeRateLimit, RetryAfter: 7 * time.Second}, want: provider.ErrRateLimited, wantRetryAfter: 7 * time.Second},
			{name: "rate limit date", fault: emulator.Fault{Mode: emulator.ModeRateLimit, RetryAfter: 20 * time.Second, RetryAfterDate: true}, want: provider.ErrRateLimited, wantRetryDate: true},
			{name: "body error", fault: emulator.Fault{Mode: emulator.ModeBodyError}, want: cc.bodyError},
			{name: "invalid key fault", fault: emulator.Fault{Mode: emulator.ModeInvalidKey}, want: provider.ErrAuth},
			{name: "quota", fault: emulator.Fault{Mode: emulator.ModeQuota}, want: cc.quota},
			{name: "wrong ip", fault: emulator.Fault{Mode: emulator.ModeWrongIP}, want: provider.ErrBadResponse},
			{name: "malformed", fault: emulator.Fault{Mode: emulator.ModeMalformed}, want: provider.ErrBadResponse},
		}
		if cc.name != "internetdb" { // InternetDB takes no key
			cases = append(cases, struct {
				name           string
				fault          emulator.Fault
				key            string
				want           error
				wantRetryAfter time.Duration
				wantRetryDate  bool
			}{name: "wrong key", key: "not-the-key", want: provider.ErrAuth})
		}
		for _, tc := range cases {
			t.Run(cc.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				emu, base := startEmulator(t)
				if err := emu.SetFault(cc.route, tc.fault); err != nil {
					t.Fatal(err)
				}
				key := emulator.DefaultAPIKey
				if tc.key != "" {
					key = tc.key
				}
				p := cc.build(t, base, key, 300*time.Millisecond)
				_, err := p.Lookup(t.Context(), ipv4(emulator.KindSafe))
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				var pe *provider.Error
				if !errors.As(err, &pe) {
					t.Fatalf("err %T is not *provider.Error", err)
				}
				if tc.wantRetryAfter > 0 && pe.RetryAfter != tc.wantRetryAfter {
					t.Errorf("RetryAfter = %v, want %v", pe.RetryAfter, tc.wantRetryAfter)
				}
				if tc.wantRetryDate && (pe.RetryAfter <= 0 || pe.RetryAfter > 21*time.Second) {
					t.Errorf("RetryAfter = %v, want (0, 21s]", pe.RetryAfter)
				}
				if key != "" && len(key) > 3 && containsKey(err.Error(), key) {
					t.Errorf("error text leaks the key: %q", err)
				}
				if got := emu.Calls(cc.route, ""); got != 1 {
					t.Errorf("calls = %d, want 1", got)
				}
			})
		}
	}
}

func containsKey(s, key string) bool {
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i:i+len(key)] == key {
			return true
		}
	}
	return false
}

func TestClientsSingleCallRejectsConcurrent(t *testing.T) {
	t.Parallel()
	for _, cc := range clients() {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			emu, base := startEmulator(t)
			if err := emu.SetFault(cc.route, emulator.Fault{Mode: emulator.ModeSingleCall, Delay: 300 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			p := cc.build(t, base, emulator.DefaultAPIKey, 2*time.Second)
			first := make(chan error, 1)
			go func() {
				_, err := p.Lookup(context.Background(), ipv4(emulator.KindSafe))
				first <- err
			}()
			// wait until the first call holds the slot
			deadline := time.Now().Add(2 * time.Second)
			for emu.Calls(cc.route, "") < 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			_, err := p.Lookup(t.Context(), ipv4(emulator.KindHosting))
			if !errors.Is(err, cc.singleCall) {
				t.Errorf("concurrent call: err = %v, want %v", err, cc.singleCall)
			}
			if err := <-first; err != nil {
				t.Errorf("admitted call: %v", err)
			}
			if _, err := p.Lookup(t.Context(), ipv4(emulator.KindHosting)); err != nil {
				t.Errorf("sequential call after release: %v", err)
			}
			if got := emu.Calls(cc.route, ""); got != 3 {
				t.Errorf("calls = %d, want 3", got)
			}
		})
	}
}

func TestErrorRateIsDeterministic(t *testing.T) {
	t.Parallel()
	emu, base := startEmulator(t)
	if err := emu.SetFault(emulator.RouteInternetDB, emulator.Fault{Mode: emulator.ModeErrorRate, Rate: 0.5}); err != nil {
		t.Fatal(err)
	}
	p, err := internetdb.New(internetdb.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for range 6 {
		_, err := p.Lookup(t.Context(), ipv4(emulator.KindSafe))
		got = append(got, errors.Is(err, provider.ErrUnavailable))
	}
	want := []bool{false, true, false, true, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("failure pattern = %v, want %v", got, want)
		}
	}
}

func TestStampedeCountsExact(t *testing.T) {
	t.Parallel()
	emu, base := startEmulator(t)
	p, err := criminalip.New(criminalip.Config{BaseURL: base, APIKey: emulator.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ind := ipv4(emulator.KindVPN)
			if i%2 == 1 {
				ind = ipv4(emulator.KindTor)
			}
			if _, err := p.Lookup(context.Background(), ind); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s := emu.Stats().Routes[emulator.RouteCriminalIP]
	if s.Calls != n || s.ByIndicator[emulator.IPOf(emulator.KindVPN, 0)] != n/2 || s.ByIndicator[emulator.IPOf(emulator.KindTor, 0)] != n/2 {
		t.Fatalf("stats = %+v", s)
	}
}
