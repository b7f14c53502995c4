package stream

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metrics are the runtime's common instruments (records in / out / filtered / dead-lettered per
// stage, batch latency, pauses, consumer lag per partition).
type Metrics struct {
	stage    attribute.KeyValue
	recIn    metric.Int64Counter
	recOut   metric.Int64Counter
	filtered metric.Int64Counter
	dlq      metric.Int64Counter
	pauses   metric.Int64Counter
	batchDur metric.Float64Histogram

	mu   sync.Mutex
	lags map[string]map[int32]int64
}

// NopMetrics discards everything.
func NopMetrics() *Metrics {
	m, _ := NewMetrics(noop.NewMeterProvider().Meter("nop"), "nop")
	return m
}

// NewMetrics creates the instruments on meter for a stage.
func NewMetrics(meter metric.Meter, stage string) (*Metrics, error) {
	m := &Metrics{stage: attribute.String("stage", stage), lags: map[string]map[int32]int64{}}
	var err error
	if m.recIn, err = meter.Int64Counter("vigil_records_in", metric.WithDescription("Records consumed by the stage.")); err != nil {
		return nil, err
	}
	if m.recOut, err = meter.Int64Counter("vigil_records_out", metric.WithDescription("Records produced downstream by the stage.")); err != nil {
		return nil, err
	}
	if m.filtered, err = meter.Int64Counter("vigil_records_filtered", metric.WithDescription("Input records that produced nothing (filtered, by design).")); err != nil {
		return nil, err
	}
	if m.dlq, err = meter.Int64Counter("vigil_records_dead_lettered", metric.WithDescription("Input records sent to the dead-letter topic, by error class.")); err != nil {
		return nil, err
	}
	if m.pauses, err = meter.Int64Counter("vigil_partition_pauses", metric.WithDescription("Times the stage paused its partitions (backpressure).")); err != nil {
		return nil, err
	}
	if m.batchDur, err = meter.Float64Histogram("vigil_batch_duration_seconds", metric.WithDescription("Time to handle, produce and commit one batch."), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	_, err = meter.Int64ObservableGauge("vigil_consumer_lag", metric.WithDescription("Records behind the high watermark, per partition, at the last fetch."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			for t, ps := range m.lags {
				for p, l := range ps {
					o.Observe(l, metric.WithAttributes(m.stage, attribute.String("topic", t), attribute.Int("partition", int(p))))
				}
			}
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) in(ctx context.Context, n int) {
	m.recIn.Add(ctx, int64(n), metric.WithAttributes(m.stage))
}

func (m *Metrics) done(ctx context.Context, out, filtered int, d time.Duration) {
	m.recOut.Add(ctx, int64(out), metric.WithAttributes(m.stage))
	m.filtered.Add(ctx, int64(filtered), metric.WithAttributes(m.stage))
	m.batchDur.Record(ctx, d.Seconds(), metric.WithAttributes(m.stage))
}

func (m *Metrics) dead(ctx context.Context, class string) {
	m.dlq.Add(ctx, 1, metric.WithAttributes(m.stage, attribute.String("class", class)))
}

func (m *Metrics) pause(ctx context.Context) { m.pauses.Add(ctx, 1, metric.WithAttributes(m.stage)) }

func (m *Metrics) lag(topic string, p int32, lag int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.lags[topic]
	if ps == nil {
		ps = map[int32]int64{}
		m.lags[topic] = ps
	}
	ps[p] = max(lag, 0)
}

var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`(?i)((?:password|passwd|secret|token|api[_-]?key|x-api-key|authorization|client_secret)["']?\s*[:=]\s*["']?)[^\s"'&,}]+`),
}

// Redact removes credential-looking values (bearer tokens, key=value secrets) from a message
// before it is logged or written to a dead letter.
func Redact(s string) string {
	for _, p := range secretPatterns {
		s = p.ReplaceAllString(s, "${1}[REDACTED]")
	}
	return s
}

// RedactValues replaces every occurrence of the given secret values (e.g. configured API keys).
func RedactValues(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return Redact(s)
}
