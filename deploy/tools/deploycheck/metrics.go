package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// knownMetrics are the metric names Vigil's services export (OpenTelemetry instrument names).
var knownMetrics = map[string]bool{
	"vigil_records_in": true, "vigil_records_out": true, "vigil_records_filtered": true,
	"vigil_records_dead_lettered": true, "vigil_consumer_lag": true, "vigil_batch_duration_seconds": true,
	"vigil_partition_pauses": true, "vigil_ingest_records": true, "vigil_enrich_cache_total": true,
	"vigil_enrich_provider_calls_total": true, "vigil_enrich_provider_latency_seconds": true,
	"vigil_enrich_quota_remaining": true, "vigil_enrich_breaker_state": true, "vigil_enrich_age_seconds": true,
	"vigil_enrich_coverage_gaps_total": true, "vigil_correlate_verdicts_total": true,
	"vigil_correlate_exposure_changed_total": true, "vigil_correlate_fp_rate": true,
	"vigil_sink_threatq_writes_total": true, "vigil_sink_noop_skips_total": true,
	"vigil_sink_breaker_state": true, "vigil_sink_triage_latency_seconds": true,
}

// exporterSuffixes are what the Prometheus exporter appends: _total to counters (unless present)
// and _bucket/_sum/_count to histograms.
var exporterSuffixes = []string{"", "_total", "_bucket", "_sum", "_count"}

// knownMetric reports whether an exported series name belongs to a known instrument.
func knownMetric(name string) bool {
	for _, s := range exporterSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok && knownMetrics[base] {
			return true
		}
	}
	return false
}

// grafanaVars replaces Grafana's template variables with values that make a valid PromQL query.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__range", "1h", "${__range}", "1h",
	"$__interval", "1m", "${__interval}", "1m",
	"${stage}", ".*", "$stage", ".*",
)

// metricNames parses a PromQL expression and returns the metric names it selects, sorted.
func metricNames(p parser.Parser, expr string) ([]string, error) {
	e, err := p.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	seen := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
			seen[vs.Name] = true
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func newPromQLParser() parser.Parser { return parser.NewParser(parser.Options{}) }
