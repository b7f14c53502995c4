package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// families are one scrape's metric families by name.
type families map[string]*dto.MetricFamily

// sample is one series of a counter, gauge or untyped family.
type sample struct {
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	UpperBound float64
	Count      float64
}

// histSample is one histogram series.
type histSample struct {
	Labels  map[string]string
	Buckets []bucket // cumulative, sorted by UpperBound, ending with +Inf
	Count   float64
	Sum     float64
}

// httpGet fetches url with the configured timeout and returns status and body (at most 32 MiB).
func (a *app) httpGet(ctx context.Context, url, accept string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, b, nil
}

// scrape reads a service's /metrics in the Prometheus text format.
func (a *app) scrape(ctx context.Context, base string) (families, error) {
	code, body, err := a.httpGet(ctx, base+"/metrics", "text/plain;version=0.0.4")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", base, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", base, code)
	}
	return parseMetrics(strings.NewReader(string(body)))
}

// parseMetrics parses the Prometheus text exposition format.
func parseMetrics(r io.Reader) (families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return families(fams), nil
}

// family finds a family by name, also trying it with or without the "_total" suffix that
// exporters add to counters.
func (f families) family(name string) *dto.MetricFamily {
	if m, ok := f[name]; ok {
		return m
	}
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		return f[base]
	}
	return f[name+"_total"]
}

func labelsOf(m *dto.Metric) map[string]string {
	if len(m.GetLabel()) == 0 {
		return nil
	}
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// samples returns the series of a counter, gauge or untyped family (nil when absent).
func (f families) samples(name string) []sample {
	mf := f.family(name)
	if mf == nil {
		return nil
	}
	var out []sample
	for _, m := range mf.GetMetric() {
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		default:
			continue
		}
		out = append(out, sample{Labels: labelsOf(m), Value: v})
	}
	return out
}

// histograms returns the series of a histogram family (nil when absent).
func (f families) histograms(name string) []histSample {
	mf := f.family(name)
	if mf == nil {
		return nil
	}
	var out []histSample
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		hs := histSample{Labels: labelsOf(m), Count: float64(h.GetSampleCount()), Sum: h.GetSampleSum()}
		for _, b := range h.GetBucket() {
			hs.Buckets = append(hs.Buckets, bucket{UpperBound: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
		}
		if n := len(hs.Buckets); n == 0 || !math.IsInf(hs.Buckets[n-1].UpperBound, 1) {
			hs.Buckets = append(hs.Buckets, bucket{UpperBound: math.Inf(1), Count: hs.Count})
		}
		out = append(out, hs)
	}
	return out
}

// mergeHist adds histograms with the same bucket layout (sum by le); series with other bounds
// contribute to the buckets they share.
func mergeHist(hs []histSample) histSample {
	byLE := map[float64]float64{}
	var out histSample
	for _, h := range hs {
		out.Count += h.Count
		out.Sum += h.Sum
		for _, b := range h.Buckets {
			byLE[b.UpperBound] += b.Count
		}
	}
	for le, c := range byLE {
		out.Buckets = append(out.Buckets, bucket{UpperBound: le, Count: c})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperBound < out.Buckets[j].UpperBound })
	return out
}

// quantile estimates the q-quantile from cumulative buckets by linear interpolation inside the
// bucket that holds it, as Prometheus' histogram_quantile does. It returns NaN without
// observations; a quantile in the +Inf bucket is reported as the highest finite bound.
func quantile(q float64, buckets []bucket) float64 {
	if len(buckets) == 0 || q < 0 || q > 1 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].Count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for i, b := range buckets {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				if i == 0 {
					return math.NaN()
				}
				return buckets[i-1].UpperBound
			}
			if b.Count == prevCount {
				return b.UpperBound
			}
			return prevBound + (b.UpperBound-prevBound)*(rank-prevCount)/(b.Count-prevCount)
		}
		prevBound, prevCount = b.UpperBound, b.Count
	}
	return buckets[len(buckets)-1].UpperBound
}

// sumBy adds samples grouped by the values of the given labels (joined with "/"); no labels gives
// one group "".
func sumBy(ss []sample, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		parts := make([]string, len(labels))
		for i, l := range labels {
			parts[i] = s.Labels[l]
			if parts[i] == "" {
				parts[i] = "-"
			}
		}
		out[strings.Join(parts, "/")] += s.Value
	}
	return out
}

// labelString renders labels as k=v pairs sorted by key, skipping the given keys.
func labelString(ls map[string]string, skip ...string) string {
	keys := make([]string, 0, len(ls))
outer:
	for k := range ls {
		for _, s := range skip {
			if k == s {
				continue outer
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ls[k]
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
