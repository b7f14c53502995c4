// Package provider defines what every enrichment source implements and the normalised result it returns.
package provider

import (
	"context"
	"errors"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// Provider is one enrichment source (Criminal IP, InternetDB, AbuseIPDB, GreyNoise, offline ASN/country).
// Lookup is safe for concurrent use; ctx bounds the whole call including retries the provider does itself
// (providers do not retry: the enricher owns retries, rate limits, caching and the breaker).
type Provider interface {
	// Name is a stable lower-case id used in cache keys, metrics and records, e.g. "criminalip".
	Name() string
	// Supports reports whether the provider serves this indicator type (events.Type*).
	Supports(indicatorType string) bool
	// Lookup queries the source for one canonical indicator.
	// It returns a Result with Found=false for "no data" (HTTP 404 or documented not-found shapes),
	// and an error for everything else (see the Err* sentinels and *Error).
	Lookup(ctx context.Context, ind events.Indicator) (Result, error)
}

// Result is a validated, normalised provider answer.
type Result struct {
	Found    bool
	Fields   map[string]string // flat evidence, e.g. "inbound_score"="Critical", "is_vpn"="true"
	Exposure events.Exposure   // this provider's contribution to the merged view (zero fields = unknown)
}

// Sentinel error kinds. Wrap them (fmt.Errorf("...: %w", ErrRateLimited)) or use *Error.
var (
	ErrRateLimited  = errors.New("rate limited")            // 429, "limit exceeded", one-call-at-a-time
	ErrAuth         = errors.New("authentication rejected") // invalid api key, 401/403
	ErrUnavailable  = errors.New("provider unavailable")    // 5xx, timeouts, connection errors
	ErrInvalidInput = errors.New("invalid input")           // the provider rejected the indicator (e.g. "Invalid IP Address.")
	ErrBadResponse  = errors.New("bad response")            // response failed validation (shape, types, ranges, wrong IP)
	ErrQuota        = errors.New("quota exhausted")         // plan quota used up
)

// Error carries the kind plus details such as Retry-After.
type Error struct {
	Kind       error         // one of the sentinels above
	Status     int           // HTTP status, or the "status" inside a 200 body
	Message    string        // provider message (never contains credentials)
	RetryAfter time.Duration // from Retry-After when present
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }
