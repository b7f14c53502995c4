package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metric names of the KPIs.
const (
	metricTriage          = "vigil_sink_triage_latency_seconds"
	metricVerdicts        = "vigil_correlate_verdicts_total"
	metricExposureChanged = "vigil_correlate_exposure_changed_total"
	metricAge             = "vigil_enrich_age_seconds"
	metricCoverageGaps    = "vigil_enrich_coverage_gaps_total"
	metricDeadLettered    = "vigil_records_dead_lettered_total"
	metricRecordsIn       = "vigil_records_in_total"
)

// kpiReport holds the seed's KPIs. Absent values (no observations) are null in JSON.
type kpiReport struct {
	Source          string       `json:"source"` // "prometheus" or "scrape"
	Note            string       `json:"note"`
	Range           string       `json:"range,omitempty"`
	At              time.Time    `json:"at"`
	TriageP50       *float64     `json:"triage_latency_p50_seconds"`
	TriageP95       *float64     `json:"triage_latency_p95_seconds"`
	Triaged         float64      `json:"triaged"`
	Verdicts        []countRow   `json:"verdicts_by_action"`
	VerdictsTotal   float64      `json:"verdicts_total"`
	ExposureChanged float64      `json:"exposure_changed"`
	ExposureShare   *float64     `json:"exposure_changed_share"`
	AgeP50          *float64     `json:"enrichment_age_p50_seconds"`
	AgeP95          *float64     `json:"enrichment_age_p95_seconds"`
	AgeMean         *float64     `json:"enrichment_age_mean_seconds"`
	CoverageGaps    []gapRow     `json:"coverage_gaps"`
	DLQ             []dlqRateRow `json:"dlq_rate"`
	Errors          []string     `json:"errors,omitempty"`
}

type countRow struct {
	Name  string  `json:"name"`
	Count float64 `json:"count"`
}

type gapRow struct {
	Provider string  `json:"provider"`
	Country  string  `json:"country"`
	Count    float64 `json:"count"`
}

type dlqRateRow struct {
	Stage        string   `json:"stage"` // "all" for the total
	In           float64  `json:"in"`
	DeadLettered float64  `json:"dead_lettered"`
	Rate         *float64 `json:"rate"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return num(a / b)
}

func (a *app) cmdKPI(ctx context.Context, args []string) error {
	fs := a.flagSet("kpi", "vigilctl kpi [--prometheus URL [--range 24h]] [--chart out.svg]",
		"Shows the pipeline's KPIs: triage latency p50/p95, verdicts by action, verdicts whose priority\n"+
			"exposure changed, enrichment age (freshness), coverage gaps by provider and country, and the\n"+
			"DLQ rate (dead-lettered / consumed) per stage. With --prometheus they cover --range; without\n"+
			"it they come from a live scrape of the services' /metrics: point-in-time totals since each\n"+
			"service started.\n")
	fs.StringVar(&a.cfg.Prometheus, "prometheus", a.cfg.Prometheus, "Prometheus base URL (env VIGIL_CTL_PROMETHEUS)")
	rng := fs.Duration("range", 24*time.Hour, "time range with --prometheus")
	chart := fs.String("chart", "", "also write an SVG bar chart of verdicts by action and coverage gaps to this file")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *rng < time.Minute {
		return fmt.Errorf("%w: --range must be at least 1m", errUsage)
	}
	var rep kpiReport
	var err error
	if a.cfg.Prometheus != "" {
		rep, err = a.kpiPrometheus(ctx, strings.TrimRight(a.cfg.Prometheus, "/"), *rng)
	} else {
		rep = a.kpiScrape(ctx)
	}
	if err != nil {
		return err
	}
	if *chart != "" {
		if err := os.WriteFile(*chart, []byte(chartSVG(rep)), 0o644); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	if err := a.emit(rep, func(w io.Writer) error { return kpiTables(w, rep) }); err != nil {
		return err
	}
	if rep.Source == "scrape" && len(rep.Errors) == len(a.cfg.Ops) {
		return fmt.Errorf("no service answered: %s", strings.Join(rep.Errors, "; "))
	}
	return nil
}

// kpiScrape computes the KPIs from the services' current /metrics.
func (a *app) kpiScrape(ctx context.Context) kpiReport {
	fams := make([]families, len(a.cfg.Ops))
	errs := make([]error, len(a.cfg.Ops))
	var wg sync.WaitGroup
	for i, t := range a.cfg.Ops {
		wg.Go(func() { fams[i], errs[i] = a.scrape(ctx, t.URL) })
	}
	wg.Wait()
	var ok []families
	var msgs []string
	for i, f := range fams {
		if errs[i] != nil {
			msgs = append(msgs, a.cfg.Ops[i].Name+": "+errs[i].Error())
			continue
		}
		ok = append(ok, f)
	}
	rep := kpiFromFamilies(ok)
	rep.At = a.now().UTC()
	rep.Note = fmt.Sprintf("live scrape of %d of %d services: point-in-time totals since each service started (use --prometheus for a time range)",
		len(ok), len(a.cfg.Ops))
	rep.Errors = msgs
	return rep
}

// kpiFromFamilies computes the KPIs from scrapes of one or more services (series are summed).
func kpiFromFamilies(fs []families) kpiReport {
	rep := kpiReport{Source: "scrape"}
	var triage, age []histSample
	var verdicts, exposure, gaps, in, dead []sample
	for _, f := range fs {
		triage = append(triage, f.histograms(metricTriage)...)
		age = append(age, f.histograms(metricAge)...)
		verdicts = append(verdicts, f.samples(metricVerdicts)...)
		exposure = append(exposure, f.samples(metricExposureChanged)...)
		gaps = append(gaps, f.samples(metricCoverageGaps)...)
		in = append(in, f.samples(metricRecordsIn)...)
		dead = append(dead, f.samples(metricDeadLettered)...)
	}
	t := mergeHist(triage)
	rep.TriageP50, rep.TriageP95, rep.Triaged = num(quantile(0.5, t.Buckets)), num(quantile(0.95, t.Buckets)), t.Count
	g := mergeHist(age)
	rep.AgeP50, rep.AgeP95 = num(quantile(0.5, g.Buckets)), num(quantile(0.95, g.Buckets))
	rep.AgeMean = ratio(g.Sum, g.Count)
	rep.setVerdicts(sumBy(verdicts, "action"))
	rep.ExposureChanged = sumBy(exposure)[""]
	rep.ExposureShare = ratio(rep.ExposureChanged, rep.VerdictsTotal)
	rep.setGaps(sumBy(gaps, "provider", "country"))
	rep.setDLQ(sumBy(in, "stage"), sumBy(dead, "stage"))
	return rep
}

// verdictOrder lists actions from most to least severe; others follow by name.
var verdictOrder = map[string]int{"block": 0, "alert": 1, "annotate": 2, "review": 3, "suppress": 4}

func (r *kpiReport) setVerdicts(by map[string]float64) {
	r.Verdicts = []countRow{}
	r.VerdictsTotal = 0
	for k, v := range by {
		r.Verdicts = append(r.Verdicts, countRow{Name: k, Count: v})
		r.VerdictsTotal += v
	}
	sort.Slice(r.Verdicts, func(i, j int) bool {
		oi, iok := verdictOrder[r.Verdicts[i].Name]
		oj, jok := verdictOrder[r.Verdicts[j].Name]
		switch {
		case iok && jok:
			return oi < oj
		case iok != jok:
			return iok
		}
		return r.Verdicts[i].Name < r.Verdicts[j].Name
	})
}

// setGaps takes counts keyed "provider/country", largest first.
func (r *kpiReport) setGaps(by map[string]float64) {
	r.CoverageGaps = []gapRow{}
	for k, v := range by {
		p, c, _ := strings.Cut(k, "/")
		r.CoverageGaps = append(r.CoverageGaps, gapRow{Provider: p, Country: c, Count: v})
	}
	sort.Slice(r.CoverageGaps, func(i, j int) bool {
		a, b := r.CoverageGaps[i], r.CoverageGaps[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Provider+"/"+a.Country < b.Provider+"/"+b.Country
	})
}

// setDLQ builds the per-stage DLQ rate rows plus an "all" row.
func (r *kpiReport) setDLQ(in, dead map[string]float64) {
	r.DLQ = []dlqRateRow{}
	stages := map[string]bool{}
	for k := range in {
		stages[k] = true
	}
	for k := range dead {
		stages[k] = true
	}
	var tin, tdead float64
	for _, s := range sortedKeys(stages) {
		r.DLQ = append(r.DLQ, dlqRateRow{Stage: s, In: in[s], DeadLettered: dead[s], Rate: ratio(dead[s], in[s])})
		tin += in[s]
		tdead += dead[s]
	}
	r.DLQ = append(r.DLQ, dlqRateRow{Stage: "all", In: tin, DeadLettered: tdead, Rate: ratio(tdead, tin)})
}

// promSample is one element of an instant-vector result.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// promQuery runs an instant query through Prometheus' HTTP API.
func (a *app) promQuery(ctx context.Context, base, q string, at time.Time) ([]promSample, error) {
	u := base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode()
	code, body, err := a.httpGet(ctx, u, "application/json")
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("prometheus query %q: HTTP %d: %s", q, code, truncate(string(body), 200))
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q: %s", q, resp.Error)
	}
	if resp.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %q: result type %s, want vector", q, resp.Data.ResultType)
	}
	out := make([]promSample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %q: value %q: %w", q, s, err)
		}
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// kpiQueries are the PromQL expressions of the KPIs; %[1]s is the range ("86400s").
var kpiQueries = map[string]string{
	"triage_p50":  `histogram_quantile(0.5, sum by (le) (increase(` + metricTriage + `_bucket[%[1]s])))`,
	"triage_p95":  `histogram_quantile(0.95, sum by (le) (increase(` + metricTriage + `_bucket[%[1]s])))`,
	"triaged":     `sum(increase(` + metricTriage + `_count[%[1]s]))`,
	"verdicts":    `sum by (action) (increase(` + metricVerdicts + `[%[1]s]))`,
	"exposure":    `sum(increase(` + metricExposureChanged + `[%[1]s]))`,
	"age_p50":     `histogram_quantile(0.5, sum by (le) (increase(` + metricAge + `_bucket[%[1]s])))`,
	"age_p95":     `histogram_quantile(0.95, sum by (le) (increase(` + metricAge + `_bucket[%[1]s])))`,
	"age_mean":    `sum(increase(` + metricAge + `_sum[%[1]s])) / sum(increase(` + metricAge + `_count[%[1]s]))`,
	"gaps":        `sum by (provider, country) (increase(` + metricCoverageGaps + `[%[1]s]))`,
	"records_in":  `sum by (stage) (increase(` + metricRecordsIn + `[%[1]s]))`,
	"dead_letter": `sum by (stage) (increase(` + metricDeadLettered + `[%[1]s]))`,
}

// kpiPrometheus computes the KPIs over rng ending now with instant queries on range windows.
func (a *app) kpiPrometheus(ctx context.Context, base string, rng time.Duration) (kpiReport, error) {
	at := a.now().UTC()
	window := strconv.FormatInt(int64(rng/time.Second), 10) + "s"
	res := map[string][]promSample{}
	for _, name := range sortedKeys(kpiQueries) {
		ss, err := a.promQuery(ctx, base, fmt.Sprintf(kpiQueries[name], window), at)
		if err != nil {
			return kpiReport{}, err
		}
		res[name] = ss
	}
	scalar := func(name string) float64 {
		if ss := res[name]; len(ss) > 0 {
			return ss[0].Value
		}
		return math.NaN()
	}
	by := func(name string, labels ...string) map[string]float64 {
		out := map[string]float64{}
		for _, s := range res[name] {
			parts := make([]string, len(labels))
			for i, l := range labels {
				parts[i] = s.Metric[l]
				if parts[i] == "" {
					parts[i] = "-"
				}
			}
			out[strings.Join(parts, "/")] += s.Value
		}
		return out
	}
	rep := kpiReport{Source: "prometheus", Range: rng.String(), At: at,
		Note: fmt.Sprintf("Prometheus %s, increase over the last %s", base, rng)}
	rep.TriageP50, rep.TriageP95 = num(scalar("triage_p50")), num(scalar("triage_p95"))
	if v := scalar("triaged"); !math.IsNaN(v) {
		rep.Triaged = v
	}
	rep.AgeP50, rep.AgeP95, rep.AgeMean = num(scalar("age_p50")), num(scalar("age_p95")), num(scalar("age_mean"))
	rep.setVerdicts(by("verdicts", "action"))
	if v := scalar("exposure"); !math.IsNaN(v) {
		rep.ExposureChanged = v
	}
	rep.ExposureShare = ratio(rep.ExposureChanged, rep.VerdictsTotal)
	rep.setGaps(by("gaps", "provider", "country"))
	rep.setDLQ(by("records_in", "stage"), by("dead_letter", "stage"))
	return rep, nil
}

// fmtSeconds renders a duration in seconds for people ("-" when absent).
func fmtSeconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return time.Duration(*v * float64(time.Second)).Round(time.Millisecond).String()
}

func fmtPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(100**v, 'f', 2, 64) + "%"
}

func fmtCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func kpiTables(w io.Writer, r kpiReport) error {
	fmt.Fprintf(w, "KPIs at %s — %s\n", r.At.Format(time.RFC3339), r.Note)
	for _, e := range r.Errors {
		fmt.Fprintln(w, "  unreachable:", e)
	}
	fmt.Fprintln(w)
	rows := [][]string{
		{"triage latency p50", fmtSeconds(r.TriageP50)},
		{"triage latency p95", fmtSeconds(r.TriageP95)},
		{"indicators triaged", fmtCount(r.Triaged)},
		{"verdicts", fmtCount(r.VerdictsTotal)},
		{"verdicts exposure changed", fmtCount(r.ExposureChanged) + " (" + fmtPct(r.ExposureShare) + ")"},
		{"enrichment age p50", fmtSeconds(r.AgeP50)},
		{"enrichment age p95", fmtSeconds(r.AgeP95)},
		{"enrichment age mean", fmtSeconds(r.AgeMean)},
	}
	if err := writeTable(w, []string{"KPI", "VALUE"}, rows); err != nil {
		return err
	}
	if len(r.Verdicts) > 0 {
		fmt.Fprintln(w)
		rows = rows[:0]
		for _, v := range r.Verdicts {
			rows = append(rows, []string{v.Name, fmtCount(v.Count), fmtPct(ratio(v.Count, r.VerdictsTotal))})
		}
		if err := writeTable(w, []string{"ACTION", "VERDICTS", "SHARE"}, rows); err != nil {
			return err
		}
	}
	if len(r.CoverageGaps) > 0 {
		fmt.Fprintln(w)
		rows = rows[:0]
		for _, g := range r.CoverageGaps {
			rows = append(rows, []string{g.Provider, g.Country, fmtCount(g.Count)})
		}
		if err := writeTable(w, []string{"GAP PROVIDER", "COUNTRY", "COUNT"}, rows); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	rows = rows[:0]
	for _, d := range r.DLQ {
		rows = append(rows, []string{d.Stage, fmtCount(d.In), fmtCount(d.DeadLettered), fmtPct(d.Rate)})
	}
	return writeTable(w, []string{"STAGE", "IN", "DEAD-LETTERED", "DLQ RATE"}, rows)
}
