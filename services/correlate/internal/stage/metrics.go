package stage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
)

// Reload results (label result of vigil_correlate_policy_reloads_total).
const (
	ReloadOK       = "ok"
	ReloadRejected = "rejected"
)

// SuppressedByLevel is the list label of a suppress verdict that no list
// caused (the policy level's own action is suppress).
const SuppressedByLevel = "(level)"

// Metrics are correlate's OTel instruments. Counter names get _total from
// the Prometheus exporter:
//
//	vigil_correlate_verdicts_total{action,level}      verdicts published (acknowledged by Kafka)
//	vigil_correlate_exposure_changed_total            published verdicts whose priority exposure changed (KPI)
//	vigil_correlate_suppressed_total{list}            published suppress verdicts by the list that suppressed them
//	vigil_correlate_false_positives_total{action}     analyst allow decisions by the preceding Vigil action
//	vigil_correlate_fp_rate{action}                   false positives / published verdicts (gauge)
//
// The false-positive counters and rate are read from the correlation store at
// collection time: on Redis they cover every replica and every restart, so
// each replica reports the same values (aggregate them with max, not sum).
//
//	vigil_correlate_policy_version{version}           1 for the policy in force
//	vigil_correlate_policy_reloads_total{result}      SIGHUP reloads: ok or rejected
//
// The decay sweeper (Sweeper) counts, per replica:
//
//	vigil_correlate_decay_rescored_total              indicators evaluated again without a new sighting
//	vigil_correlate_decay_reemitted_total             of those, verdicts published (and acked); also in verdicts_total
//	vigil_correlate_decay_skipped_total               due indicators sighted since their verdict (left to the stream path)
//	vigil_correlate_decay_dropped_total               due indicators whose state, stored enrichment or verdict expired
//
// A nil *Metrics records nothing.
type Metrics struct {
	verdicts   metric.Int64Counter
	exposure   metric.Int64Counter
	suppressed metric.Int64Counter
	reloads    metric.Int64Counter
	reg        metric.Registration

	decayRescored  metric.Int64Counter
	decayReemitted metric.Int64Counter
	decaySkipped   metric.Int64Counter
	decayDropped   metric.Int64Counter
}

// Observed reads what the observable instruments report; *correlator.Correlator
// satisfies it.
type Observed interface {
	Stats(ctx context.Context) (correlator.StatsSnapshot, error)
	Policy() *policy.Policy
}

// statsTimeout bounds the store read of a metrics collection.
const statsTimeout = 2 * time.Second

// NewMetrics creates the instruments on meter; obs feeds the false-positive
// and policy-version instruments at collection time.
func NewMetrics(meter metric.Meter, obs Observed) (*Metrics, error) {
	m := &Metrics{}
	var err error
	if m.verdicts, err = meter.Int64Counter("vigil_correlate_verdicts", metric.WithDescription("Verdicts published (acknowledged by Kafka), by action and level.")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.exposure, err = meter.Int64Counter("vigil_correlate_exposure_changed", metric.WithDescription("Published verdicts whose priority the exposure data changed.")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.suppressed, err = meter.Int64Counter("vigil_correlate_suppressed", metric.WithDescription("Published suppress verdicts, by the list that suppressed them ("+SuppressedByLevel+" when the level did).")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if m.reloads, err = meter.Int64Counter("vigil_correlate_policy_reloads", metric.WithDescription("Policy reloads on SIGHUP, by result (ok, rejected).")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	decay := []struct {
		c    *metric.Int64Counter
		name string
		desc string
	}{
		{&m.decayRescored, "vigil_correlate_decay_rescored", "Indicators the decay sweeper evaluated again without a new sighting."},
		{&m.decayReemitted, "vigil_correlate_decay_reemitted", "Verdicts the decay sweeper published (level changed by decay, or refresh due)."},
		{&m.decaySkipped, "vigil_correlate_decay_skipped", "Due indicators the decay sweeper skipped: sighted since their verdict."},
		{&m.decayDropped, "vigil_correlate_decay_dropped", "Due indicators dropped from the decay schedule: state, stored enrichment or last verdict expired."},
	}
	for _, d := range decay {
		if *d.c, err = meter.Int64Counter(d.name, metric.WithDescription(d.desc)); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	fps, err := meter.Int64ObservableCounter("vigil_correlate_false_positives", metric.WithDescription("Analyst allow decisions on indicators Vigil acted on, by Vigil's action."))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	rate, err := meter.Float64ObservableGauge("vigil_correlate_fp_rate", metric.WithDescription("False positives divided by published verdicts, by action, over the life of the correlation store (all replicas)."))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	version, err := meter.Int64ObservableGauge("vigil_correlate_policy_version", metric.WithDescription("1 for the version of the policy in force."))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.reg, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if p := obs.Policy(); p != nil {
			o.ObserveInt64(version, 1, metric.WithAttributes(attribute.String("version", p.Version)))
		}
		ctx, cancel := context.WithTimeout(ctx, statsTimeout)
		defer cancel()
		st, err := obs.Stats(ctx)
		if err != nil {
			return fmt.Errorf("false-positive metrics: %w", err)
		}
		actions := map[string]bool{}
		for a := range st.Emitted {
			actions[a] = true
		}
		for a := range st.FalsePositives {
			actions[a] = true
		}
		for a := range actions {
			attrs := metric.WithAttributes(attribute.String("action", a))
			o.ObserveInt64(fps, st.FalsePositives[a], attrs)
			o.ObserveFloat64(rate, st.FPRate(a), attrs)
		}
		return nil
	}, fps, rate, version)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// Close unregisters the observable callback.
func (m *Metrics) Close() error {
	if m == nil || m.reg == nil {
		return nil
	}
	return m.reg.Unregister()
}

func (m *Metrics) published(ctx context.Context, vs []correlator.Published) {
	if m == nil {
		return
	}
	for i := range vs {
		v := &vs[i].Verdict
		m.verdicts.Add(ctx, 1, metric.WithAttributes(attribute.String("action", v.Action), attribute.String("level", v.Level)))
		if v.ExposureChanged {
			m.exposure.Add(ctx, 1)
		}
		if v.Action == events.VerdictSuppress {
			m.suppressed.Add(ctx, 1, metric.WithAttributes(attribute.String("list", SuppressingList(v))))
		}
	}
}

func (m *Metrics) rescored(ctx context.Context, r correlator.Rescored) {
	if m == nil {
		return
	}
	for _, c := range []struct {
		c metric.Int64Counter
		n int
	}{{m.decayRescored, r.Rescored}, {m.decaySkipped, r.Skipped}, {m.decayDropped, r.Dropped}} {
		if c.n > 0 {
			c.c.Add(ctx, int64(c.n))
		}
	}
}

func (m *Metrics) reemitted(ctx context.Context, n int) {
	if m == nil || n == 0 {
		return
	}
	m.decayReemitted.Add(ctx, int64(n))
}

func (m *Metrics) reload(ctx context.Context, result string) {
	if m == nil {
		return
	}
	m.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

// SuppressingList returns the first list whose suppress rule a verdict's
// reasons record, or SuppressedByLevel.
func SuppressingList(v *events.Verdict) string {
	suffix := " (" + policy.ModeSuppress + ")"
	for _, r := range v.Reasons {
		if r.Code != policy.CodeWarninglist || !strings.HasSuffix(r.Text, suffix) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.Text, policy.CodeWarninglist+"="), suffix)
		if name != "" {
			return name
		}
	}
	return SuppressedByLevel
}
