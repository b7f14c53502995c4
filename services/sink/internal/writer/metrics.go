package writer

import "time"

// Metrics receives the writer's counters. Implementations must be safe for concurrent use and cheap.
type Metrics interface {
	// Written counts indicators written to ThreatQ; Skipped counts no-op writes skipped by fingerprint;
	// DeadLettered counts records rejected by ThreatQ validation.
	Written(n int)
	Skipped(n int)
	DeadLettered(n int)
	// Call observes one ThreatQ call (op e.g. "consume"); err is nil on success.
	Call(op string, d time.Duration, err error)
	// BreakerState reports the breaker state after a change: "closed", "half-open" or "open".
	BreakerState(state string)
}

// NopMetrics discards everything.
type NopMetrics struct{}

// Written implements Metrics.
func (NopMetrics) Written(int) {}

// Skipped implements Metrics.
func (NopMetrics) Skipped(int) {}

// DeadLettered implements Metrics.
func (NopMetrics) DeadLettered(int) {}

// Call implements Metrics.
func (NopMetrics) Call(string, time.Duration, error) {}

// BreakerState implements Metrics.
func (NopMetrics) BreakerState(string) {}

var _ Metrics = NopMetrics{}
