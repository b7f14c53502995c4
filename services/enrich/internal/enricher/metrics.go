package enricher

import "time"

// Metrics receives the enricher's measurements; the service wires it to OpenTelemetry. Implementations must be
// safe for concurrent use and must not block.
type Metrics interface {
	// CacheResult counts n batch lookups with the same outcome (the enricher reports once per batch,
	// provider and result): result is "hit", "negative" (a cached not_found), "miss" or "stale" (older than
	// the configured TTL).
	CacheResult(provider, result string, n int64)
	// ProviderCall records one attempt: status is "ok", "not_found" or an error class (Class*).
	ProviderCall(provider, status string, d time.Duration)
	// Quota reports the calls left in the tightest quota window after a granted call.
	Quota(provider string, remaining int64)
	// Breaker reports the breaker state ("closed", "half-open", "open") at start and on every change.
	Breaker(provider, state string)
	// Age records how old a provider answer was when it was used in an enrichment (freshness).
	Age(provider string, d time.Duration)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

// CacheResult implements Metrics.
func (NopMetrics) CacheResult(string, string, int64) {}

// ProviderCall implements Metrics.
func (NopMetrics) ProviderCall(string, string, time.Duration) {}

// Quota implements Metrics.
func (NopMetrics) Quota(string, int64) {}

// Breaker implements Metrics.
func (NopMetrics) Breaker(string, string) {}

// Age implements Metrics.
func (NopMetrics) Age(string, time.Duration) {}

var _ Metrics = NopMetrics{}
