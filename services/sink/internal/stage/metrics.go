package stage

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

// Metric names (the Prometheus exporter adds _total to counters).
const (
	MetricWrites         = "vigil_sink_threatq_writes"
	MetricNoopSkips      = "vigil_sink_noop_skips"
	MetricDeadLettered   = "vigil_sink_dead_lettered"
	MetricCalls          = "vigil_sink_threatq_calls"
	MetricLatency        = "vigil_sink_threatq_latency_seconds"
	MetricBreakerState   = "vigil_sink_breaker_state"
	MetricFeedback       = "vigil_sink_feedback"
	MetricTriageLatency  = "vigil_sink_triage_latency_seconds"
	breakerClosed        = 0
	breakerHalfOpen      = 1
	breakerOpen          = 2
	resultOK             = "ok"
	resultOther          = "error"
	triageLatencyHelpMsg = "Time from the verdict's event time to ThreatQ's acknowledgement (triage latency)."
)

// Metrics are the sink's OpenTelemetry instruments. It implements writer.Metrics and Recorder and
// is safe for concurrent use.
type Metrics struct {
	writes   metric.Int64Counter
	skips    metric.Int64Counter
	dead     metric.Int64Counter
	calls    metric.Int64Counter
	latency  metric.Float64Histogram
	breaker  metric.Int64Gauge
	feedback metric.Int64Counter
	triage   metric.Float64Histogram
	// callAttrs caches the attribute sets of Call by op and result (callKey):
	// one per ThreatQ call otherwise costs an attribute.Set (sorted, hashed,
	// allocated) for each instrument.
	callAttrs sync.Map
}

type callKey struct{ op, result string }

// callOpts are the measurement options of one (op, result).
type callOpts struct{ calls, latency metric.MeasurementOption }

var (
	_ writer.Metrics = (*Metrics)(nil)
	_ Recorder       = (*Metrics)(nil)
)

// NewMetrics creates the instruments on meter and reports the breaker as closed.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.writes, err = meter.Int64Counter(MetricWrites, metric.WithDescription("Indicators written to ThreatQ."))
	add(err)
	m.skips, err = meter.Int64Counter(MetricNoopSkips, metric.WithDescription("Indicator writes skipped because the payload fingerprint did not change."))
	add(err)
	m.dead, err = meter.Int64Counter(MetricDeadLettered, metric.WithDescription("Verdicts ThreatQ rejected (sent to the dead-letter topic)."))
	add(err)
	m.calls, err = meter.Int64Counter(MetricCalls, metric.WithDescription("ThreatQ API calls by operation and result."))
	add(err)
	m.latency, err = meter.Float64Histogram(MetricLatency, metric.WithDescription("ThreatQ API call latency by operation."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	add(err)
	m.breaker, err = meter.Int64Gauge(MetricBreakerState, metric.WithDescription("ThreatQ circuit breaker: 0 closed, 1 half-open, 2 open."))
	add(err)
	m.feedback, err = meter.Int64Counter(MetricFeedback, metric.WithDescription("Analyst feedback events published, by kind."))
	add(err)
	m.triage, err = meter.Float64Histogram(MetricTriageLatency, metric.WithDescription(triageLatencyHelpMsg), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.breaker.Record(context.Background(), breakerClosed)
	return m, nil
}

// Written implements writer.Metrics.
func (m *Metrics) Written(n int) { m.writes.Add(context.Background(), int64(n)) }

// Skipped implements writer.Metrics.
func (m *Metrics) Skipped(n int) { m.skips.Add(context.Background(), int64(n)) }

// DeadLettered implements writer.Metrics.
func (m *Metrics) DeadLettered(n int) { m.dead.Add(context.Background(), int64(n)) }

// Call implements writer.Metrics.
func (m *Metrics) Call(op string, d time.Duration, err error) {
	ctx := context.Background()
	k := callKey{op, CallResult(err)}
	o, ok := m.callAttrs.Load(k)
	if !ok {
		opAttr := attribute.String("op", op)
		o, _ = m.callAttrs.LoadOrStore(k, callOpts{
			calls:   metric.WithAttributeSet(attribute.NewSet(opAttr, attribute.String("result", k.result))),
			latency: metric.WithAttributeSet(attribute.NewSet(opAttr)),
		})
	}
	opts := o.(callOpts)
	m.calls.Add(ctx, 1, opts.calls)
	m.latency.Record(ctx, d.Seconds(), opts.latency)
}

// BreakerState implements writer.Metrics.
func (m *Metrics) BreakerState(state string) {
	v := int64(breakerClosed)
	switch state {
	case "half-open":
		v = breakerHalfOpen
	case "open":
		v = breakerOpen
	}
	m.breaker.Record(context.Background(), v)
}

// Feedback counts one published feedback event of kind.
func (m *Metrics) Feedback(kind string) {
	m.feedback.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", kind)))
}

// TriageLatency implements Recorder.
func (m *Metrics) TriageLatency(d time.Duration) {
	if d < 0 {
		d = 0 // clock skew between producer and sink
	}
	m.triage.Record(context.Background(), d.Seconds())
}

// CallResult is the result label of a ThreatQ call: ok, validation, unauthorized, forbidden,
// not_found, rate_limited, unavailable, canceled or error.
func CallResult(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, threatq.ErrValidation):
		return "validation"
	case errors.Is(err, threatq.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, threatq.ErrForbidden):
		return "forbidden"
	case errors.Is(err, threatq.ErrNotFound):
		return "not_found"
	case errors.Is(err, threatq.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case errors.Is(err, threatq.ErrUnavailable):
		return "unavailable"
	}
	return resultOther
}
