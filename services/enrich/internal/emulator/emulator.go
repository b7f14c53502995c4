// Package emulator is an HTTP stand-in for the enrichment providers. One server answers the
// Criminal IP, Shodan InternetDB, AbuseIPDB and GreyNoise Community routes under their real paths,
// so a client only swaps its base URL:
//
//	GET /v1/asset/ip/report?ip=…&full=true      criminalip         (x-api-key required)
//	GET /v1/domain/quick/hash/view?domain=…     criminalip_domain  (x-api-key required)
//	GET /{ip}                                   internetdb         (no key)
//	GET /api/v2/check?ipAddress=…               abuseipdb          (Key required)
//	GET /v3/community/{ip}                      greynoise          (key optional; a wrong one is 401)
//
// Answers are deterministic per indicator (see Profile and IPOf). Every request on a provider
// route is counted per route and per indicator (Stats, Calls, GET /_emulator/stats), and fault
// modes can be switched per route at run time (SetFault, POST /_emulator/faults).
//
// Control endpoints:
//
//	GET  /_emulator/stats   → Stats as JSON
//	GET  /_emulator/faults  → map route → fault
//	POST /_emulator/faults  ← {"route":"criminalip","mode":"rate_limit","retry_after_s":30}
//	                          (route "" or "*" = every route; mode "" clears)
//	POST /_emulator/reset   clears stats and faults
//	GET  /debug/pprof/…     the emulator's own profiles (net/http/pprof)
package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Route names (stats keys and fault targets).
const (
	RouteCriminalIP       = "criminalip"
	RouteCriminalIPDomain = "criminalip_domain"
	RouteInternetDB       = "internetdb"
	RouteAbuseIPDB        = "abuseipdb"
	RouteGreyNoise        = "greynoise"
)

// Routes lists every provider route.
var Routes = []string{RouteCriminalIP, RouteCriminalIPDomain, RouteInternetDB, RouteAbuseIPDB, RouteGreyNoise}

// DefaultAPIKey is the key the emulator expects unless Config.APIKey says otherwise.
const DefaultAPIKey = "dev-key"

// Mode is a fault mode. Each is answered in the route's native form where the provider has one.
type Mode string

// Fault modes.
const (
	ModeNone        Mode = ""            // normal answers
	ModeDown        Mode = "down"        // the connection is closed without an answer
	ModeUnavailable Mode = "unavailable" // HTTP 503
	ModeSlow        Mode = "slow"        // normal answer after Delay
	ModeErrorRate   Mode = "error_rate"  // a deterministic share Rate of calls get HTTP 500 (every 1/Rate-th call)
	ModeRateLimit   Mode = "rate_limit"  // HTTP 429 with Retry-After
	ModeBodyError   Mode = "body_error"  // HTTP 200 with {"status":Status,"message":Message} (default 403 "limit exceeded")
	ModeInvalidKey  Mode = "invalid_key" // answered as a rejected key
	ModeQuota       Mode = "quota"       // quota exhausted (Criminal IP: 200 + "limit exceeded"; AbuseIPDB: 429 + X-RateLimit-Remaining: 0)
	ModeSingleCall  Mode = "single_call" // a call arriving while another is in flight on the route is rejected ("unable to call api at the same time" / 429)
	ModeWrongIP     Mode = "wrong_ip"    // a well-formed answer about a different IP
	ModeMalformed   Mode = "malformed"   // HTTP 200 with truncated JSON
)

var modes = []Mode{ModeNone, ModeDown, ModeUnavailable, ModeSlow, ModeErrorRate, ModeRateLimit, ModeBodyError,
	ModeInvalidKey, ModeQuota, ModeSingleCall, ModeWrongIP, ModeMalformed}

// Fault configures one route's failure behaviour.
type Fault struct {
	Mode           Mode
	Delay          time.Duration // slow: delay before answering; single_call: how long an admitted call is held; other modes: extra delay
	Rate           float64       // error_rate: share of calls failed, 0–1
	RetryAfter     time.Duration // rate_limit / quota / single_call (non-Criminal IP): Retry-After value; default 30s
	RetryAfterDate bool          // send Retry-After as an HTTP date instead of seconds
	Status         int           // body_error: status inside the body (default 403)
	Message        string        // body_error: message (default "limit exceeded")
}

// FaultRequest is the JSON body of POST /_emulator/faults.
type FaultRequest struct {
	Route          string  `json:"route"`
	Mode           Mode    `json:"mode"`
	DelayMS        int64   `json:"delay_ms,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	RetryAfterS    int64   `json:"retry_after_s,omitempty"`
	RetryAfterDate bool    `json:"retry_after_date,omitempty"`
	Status         int     `json:"status,omitempty"`
	Message        string  `json:"message,omitempty"`
}

// Fault converts the request to a Fault.
func (r FaultRequest) Fault() Fault {
	return Fault{Mode: r.Mode, Delay: time.Duration(r.DelayMS) * time.Millisecond, Rate: r.Rate,
		RetryAfter: time.Duration(r.RetryAfterS) * time.Second, RetryAfterDate: r.RetryAfterDate,
		Status: r.Status, Message: r.Message}
}

// RouteStats counts calls on one route.
type RouteStats struct {
	Calls       int64            `json:"calls"`
	ByIndicator map[string]int64 `json:"by_indicator"`
}

// Stats is a snapshot of all call counters.
type Stats struct {
	Routes map[string]RouteStats `json:"routes"`
}

// Config configures an Emulator.
type Config struct {
	APIKey string       // expected key for Criminal IP, AbuseIPDB and (when sent) GreyNoise; default DefaultAPIKey
	Logger *slog.Logger // optional; default discards
}

type faultState struct {
	Fault
	n        int64 // calls answered under this fault
	inFlight int
}

// Emulator is the provider emulator. It is safe for concurrent use.
type Emulator struct {
	key string
	log *slog.Logger

	bodies templates // pre-rendered normal answers

	mu     sync.Mutex
	stats  map[string]*RouteStats
	faults map[string]*faultState
}

// New returns an Emulator.
func New(cfg Config) *Emulator {
	if cfg.APIKey == "" {
		cfg.APIKey = DefaultAPIKey
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{key: cfg.APIKey, log: cfg.Logger}
	e.Reset()
	return e
}

// Reset clears all counters and faults.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = map[string]*RouteStats{}
	e.faults = map[string]*faultState{}
}

// ErrUnknownRoute is returned by SetFault for a route not in Routes.
var ErrUnknownRoute = errors.New("unknown route")

// ErrUnknownMode is returned by SetFault for a mode that is not one of the Mode constants.
var ErrUnknownMode = errors.New("unknown fault mode")

// SetFault switches a route's fault mode; route "" or "*" means every route, ModeNone clears.
func (e *Emulator) SetFault(route string, f Fault) error {
	if !slices.Contains(modes, f.Mode) {
		return fmt.Errorf("set fault %q: %w", f.Mode, ErrUnknownMode)
	}
	if f.Rate < 0 || f.Rate > 1 {
		return errors.New("set fault: rate must be in [0,1]")
	}
	targets := []string{route}
	if route == "" || route == "*" {
		targets = Routes
	} else if !slices.Contains(Routes, route) {
		return fmt.Errorf("set fault on %q: %w", route, ErrUnknownRoute)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range targets {
		if f.Mode == ModeNone && f.Delay == 0 {
			delete(e.faults, r)
			continue
		}
		e.faults[r] = &faultState{Fault: f}
	}
	return nil
}

// ClearFaults returns every route to normal answers.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = map[string]*faultState{}
}

// Faults returns the active faults per route.
func (e *Emulator) Faults() map[string]Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Fault, len(e.faults))
	for r, f := range e.faults {
		out[r] = f.Fault
	}
	return out
}

// Stats returns a snapshot of the call counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Routes: make(map[string]RouteStats, len(e.stats))}
	for r, rs := range e.stats {
		s.Routes[r] = RouteStats{Calls: rs.Calls, ByIndicator: maps.Clone(rs.ByIndicator)}
	}
	return s
}

// Calls returns how many requests reached route for indicator (as sent by the client); indicator ""
// returns the route total. Faulted and rejected requests count too.
func (e *Emulator) Calls(route, indicator string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.stats[route]
	if rs == nil {
		return 0
	}
	if indicator == "" {
		return rs.Calls
	}
	return rs.ByIndicator[indicator]
}

// Handler returns the HTTP handler serving the provider and control routes.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/asset/ip/report", e.route(RouteCriminalIP, fromQuery("ip"), e.criminalIP))
	mux.HandleFunc("GET /v1/domain/quick/hash/view", e.route(RouteCriminalIPDomain, fromQuery("domain"), e.criminalIPDomain))
	mux.HandleFunc("GET /api/v2/check", e.route(RouteAbuseIPDB, fromQuery("ipAddress"), e.abuseIPDB))
	mux.HandleFunc("GET /v3/community/{ip}", e.route(RouteGreyNoise, fromPath("ip"), e.greyNoise))
	mux.HandleFunc("GET /{ip}", e.route(RouteInternetDB, fromPath("ip"), e.internetDB))
	mux.HandleFunc("GET /_emulator/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, e.Stats()) })
	mux.HandleFunc("GET /_emulator/faults", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]FaultRequest{}
		for r, f := range e.Faults() {
			out[r] = FaultRequest{Route: r, Mode: f.Mode, DelayMS: f.Delay.Milliseconds(), Rate: f.Rate,
				RetryAfterS: int64(f.RetryAfter / time.Second), RetryAfterDate: f.RetryAfterDate, Status: f.Status, Message: f.Message}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("POST /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		var req FaultRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"error": "bad fault request: " + err.Error()})
			return
		}
		if err := e.SetFault(req.Route, req.Fault()); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		e.log.Info("fault set", "route", req.Route, "mode", string(req.Mode))
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /_emulator/reset", func(w http.ResponseWriter, _ *http.Request) {
		e.Reset()
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	// Profiles of the emulator itself (it listens on loopback only), for benchmark runs.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

// Serve answers on ln until ctx is done, then shuts the server down (bounded by 5 s).
func (e *Emulator) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func fromQuery(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.URL.Query().Get(name) }
}

func fromPath(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.PathValue(name) }
}

// answerFunc writes the normal answer of a route.
type answerFunc func(w http.ResponseWriter, r *http.Request, indicator string, f Fault)

// nativeKind names an error that each route renders in its provider's own form.
type nativeKind int

const (
	nativeInvalidKey nativeKind = iota
	nativeQuota
	nativeBusy
)

// admit counts the call and, for single_call, takes the in-flight slot. It returns the fault in
// force, the call's number under that fault, whether it was admitted, and a release func.
func (e *Emulator) admit(route, indicator string) (Fault, int64, bool, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.stats[route]
	if rs == nil {
		rs = &RouteStats{ByIndicator: map[string]int64{}}
		e.stats[route] = rs
	}
	rs.Calls++
	rs.ByIndicator[indicator]++
	fs := e.faults[route]
	if fs == nil {
		return Fault{}, 0, true, func() {}
	}
	fs.n++
	if fs.Mode == ModeSingleCall {
		if fs.inFlight > 0 {
			return fs.Fault, fs.n, false, func() {}
		}
		fs.inFlight++
		return fs.Fault, fs.n, true, func() {
			e.mu.Lock()
			fs.inFlight--
			e.mu.Unlock()
		}
	}
	return fs.Fault, fs.n, true, func() {}
}

func (e *Emulator) route(name string, indicator func(*http.Request) string, answer answerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ind := indicator(r)
		f, n, admitted, release := e.admit(name, ind)
		defer release()
		if !admitted {
			e.native(w, name, nativeBusy, f)
			return
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		switch f.Mode {
		case ModeDown:
			closeConn(w)
			return
		case ModeUnavailable:
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": 503, "message": "service unavailable"})
			return
		case ModeErrorRate:
			if hit(n, f.Rate) {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"status": 500, "message": "internal server error"})
				return
			}
		case ModeRateLimit:
			setRetryAfter(w, f)
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"status": 429, "message": "too many requests"})
			return
		case ModeBodyError:
			status, msg := f.Status, f.Message
			if status == 0 {
				status = 403
			}
			if msg == "" {
				msg = "limit exceeded"
			}
			writeJSON(w, http.StatusOK, map[string]any{"status": status, "message": msg})
			return
		case ModeInvalidKey:
			e.native(w, name, nativeInvalidKey, f)
			return
		case ModeQuota:
			e.native(w, name, nativeQuota, f)
			return
		case ModeMalformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":200,"ip":"`))
			return
		}
		if !e.authorized(name, r) {
			e.native(w, name, nativeInvalidKey, f)
			return
		}
		answer(w, r, ind, f)
	}
}

// hit reports whether call n (1-based) is one of the failed share rate: call n fails when
// floor(n·rate) > floor((n−1)·rate), e.g. rate 0.5 fails calls 2, 4, 6….
func hit(n int64, rate float64) bool {
	return int64(float64(n)*rate) > int64(float64(n-1)*rate)
}

func closeConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func setRetryAfter(w http.ResponseWriter, f Fault) {
	ra := f.RetryAfter
	if ra <= 0 {
		ra = 30 * time.Second
	}
	if f.RetryAfterDate {
		w.Header().Set("Retry-After", time.Now().Add(ra).UTC().Format(http.TimeFormat))
		return
	}
	w.Header().Set("Retry-After", strconv.FormatInt(int64(ra/time.Second), 10))
}

func (e *Emulator) authorized(route string, r *http.Request) bool {
	switch route {
	case RouteCriminalIP, RouteCriminalIPDomain:
		return r.Header.Get("x-api-key") == e.key
	case RouteAbuseIPDB:
		return r.Header.Get("Key") == e.key
	case RouteGreyNoise:
		k := r.Header.Get("key")
		return k == "" || k == e.key
	}
	return true
}

// native writes an error in the provider's own form.
func (e *Emulator) native(w http.ResponseWriter, route string, kind nativeKind, f Fault) {
	switch route {
	case RouteCriminalIP, RouteCriminalIPDomain:
		switch kind {
		case nativeInvalidKey:
			writeJSON(w, 200, map[string]any{"status": 401, "message": "invalid api key"})
		case nativeQuota:
			writeJSON(w, 200, map[string]any{"status": 403, "message": "limit exceeded"})
		case nativeBusy:
			writeJSON(w, 200, map[string]any{"status": 403, "message": "unable to call api at the same time"})
		}
	case RouteAbuseIPDB:
		switch kind {
		case nativeInvalidKey:
			writeJSON(w, 401, abuseErr(401, "Authentication failed. Your API key is either missing, incorrect, or revoked."))
		case nativeQuota:
			setRetryAfter(w, f)
			w.Header().Set("X-RateLimit-Limit", "1000")
			w.Header().Set("X-RateLimit-Remaining", "0")
			writeJSON(w, 429, abuseErr(429, "Daily rate limit of 1000 requests exceeded for this endpoint."))
		case nativeBusy:
			setRetryAfter(w, f)
			writeJSON(w, 429, abuseErr(429, "Too many concurrent requests."))
		}
	default: // internetdb, greynoise
		switch kind {
		case nativeInvalidKey:
			writeJSON(w, 401, map[string]any{"message": "Unauthorized", "detail": "Unauthorized"})
		case nativeQuota, nativeBusy:
			setRetryAfter(w, f)
			writeJSON(w, 429, map[string]any{"message": "Too many requests", "detail": "Too many requests"})
		}
	}
}

func abuseErr(status int, detail string) map[string]any {
	return map[string]any{"errors": []map[string]any{{"detail": detail, "status": status}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
