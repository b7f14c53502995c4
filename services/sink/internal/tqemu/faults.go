package tqemu

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Down modes for Faults.DownMode.
const (
	DownModeUnavailable = "503"   // answer 503 with an error body
	DownModeClose       = "close" // close the connection without a response
)

// Faults describes failures injected into /api/ requests (including
// /api/token) before authentication. The zero value injects nothing. The real
// server documents no 429 or rate limit [U]; these exist to test clients.
type Faults struct {
	// PathPrefix limits faults to requests whose path has this prefix
	// (default: every /api/ path).
	PathPrefix string `json:"path_prefix,omitempty"`
	// Down makes matching requests fail as DownMode says.
	Down     bool   `json:"down,omitempty"`
	DownMode string `json:"down_mode,omitempty"`
	// Delay is added before answering (slow server); it stops early when
	// the client gives up.
	Delay time.Duration `json:"-"`
	// ErrorRate is the fraction (0–1) of requests answered with ErrorStatus.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// FailNext answers the next N matching requests with ErrorStatus.
	FailNext int `json:"fail_next,omitempty"`
	// ErrorStatus is the 5xx code to use (default 500).
	ErrorStatus int `json:"error_status,omitempty"`
	// RateLimitRate is the fraction (0–1) of requests answered 429.
	RateLimitRate float64 `json:"rate_limit_rate,omitempty"`
	// RateLimitNext answers the next N matching requests 429.
	RateLimitNext int `json:"rate_limit_next,omitempty"`
	// RetryAfter is sent in the Retry-After header of a 429, in whole
	// seconds (default 1s).
	RetryAfter time.Duration `json:"-"`
}

// faultsJSON is the wire form of Faults for /_emulator/faults.
type faultsJSON struct {
	Faults
	DelayMS      int64 `json:"delay_ms,omitempty"`
	RetryAfterS  int64 `json:"retry_after_s,omitempty"`
	ExpireTokens bool  `json:"expire_tokens,omitempty"`
}

// SetFault replaces the whole fault configuration.
func (s *Server) SetFault(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() { s.SetFault(Faults{}) }

// CurrentFaults returns the fault configuration, with counters as they are now.
func (s *Server) CurrentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// injectFault applies the configured faults to r. It reports whether the
// request was answered (or dropped) and must not be handled further.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := &s.faults
	if f.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
		s.mu.Unlock()
		return false
	}
	down, mode, delay := f.Down, f.DownMode, f.Delay
	var limited, failed bool
	switch {
	case f.RateLimitNext > 0:
		f.RateLimitNext--
		limited = true
	case f.RateLimitRate > 0 && s.rng.Float64() < f.RateLimitRate:
		limited = true
	}
	if !limited {
		switch {
		case f.FailNext > 0:
			f.FailNext--
			failed = true
		case f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate:
			failed = true
		}
	}
	retryAfter, errStatus := f.RetryAfter, f.ErrorStatus
	if down || limited || failed {
		s.stats.FaultsInjected++
	}
	s.mu.Unlock()

	if down {
		if mode == DownModeClose {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				// counted before the close, so the client never sees the drop first
				markDropped(w)
				_ = conn.Close()
				return true
			}
			// cannot hijack (HTTP/2): answer 503 instead
		}
		writeError(w, http.StatusServiceUnavailable, "Service Unavailable")
		return true
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			markDropped(w)
			return true
		}
	}
	if limited {
		secs := int(retryAfter / time.Second)
		if secs <= 0 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "Too Many Requests")
		return true
	}
	if failed {
		if errStatus < 500 || errStatus > 599 {
			errStatus = http.StatusInternalServerError
		}
		writeError(w, errStatus, http.StatusText(errStatus))
		return true
	}
	return false
}

// markDropped records "no response" (code 0 in Stats.Responses).
func markDropped(w http.ResponseWriter) {
	if sr, ok := w.(*statusRecorder); ok && !sr.counted {
		sr.code = 0
		sr.count()
	}
}

// Stats counts what the emulator has served.
type Stats struct {
	// Calls counts requests per route pattern, e.g. "POST /api/indicators/consume".
	Calls map[string]int `json:"calls"`
	// Responses counts responses per status code across /api/ routes;
	// code 0 counts dropped connections and clients that gave up.
	Responses map[int]int `json:"responses"`
	// Created counts indicators created; Updated counts changes to
	// existing indicators (status, score, attributes, …); Writes is both.
	Created int `json:"created"`
	Updated int `json:"updated"`
	Writes  int `json:"writes"`
	// TokensIssued counts access tokens handed out.
	TokensIssued int `json:"tokens_issued"`
	// FaultsInjected counts requests that got an injected fault.
	FaultsInjected int `json:"faults_injected"`
	// Indicators is the number of stored indicators.
	Indicators int `json:"indicators"`
	// AttributesDeleted counts attribute values deleted, by attribute name (emulator-only: shows
	// which facts cost a client the most calls when they change).
	AttributesDeleted map[string]int `json:"attributes_deleted"`
}

func (s *Server) recordCall(pattern string) {
	s.countMu.Lock()
	s.calls[pattern]++
	s.countMu.Unlock()
}

func (s *Server) recordResponse(code int) {
	s.countMu.Lock()
	s.responses[code]++
	s.countMu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	s.countMu.Lock()
	out.Calls = maps.Clone(s.calls)
	out.Responses = maps.Clone(s.responses)
	s.countMu.Unlock()
	out.Writes = out.Created + out.Updated
	out.Indicators = len(s.st.Indicators)
	out.AttributesDeleted = maps.Clone(s.stats.AttributesDeleted)
	return out
}
