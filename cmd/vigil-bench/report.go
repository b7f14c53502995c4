package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Services in pipeline order.
var serviceNames = []string{"ingest", "enrich", "correlate", "sink"}

// Machine describes the host the numbers were taken on.
type Machine struct {
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memory_mib"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	LoadStart string `json:"loadavg_start,omitempty"` // /proc/loadavg when the suite started
	LoadEnd   string `json:"loadavg_end,omitempty"`   // and when it ended: other work on the host skews the numbers
}

// Params are the sizes the run used.
type Params struct {
	Mode            string  `json:"mode"` // full or quick
	Records         int     `json:"records"`
	Distinct        int     `json:"distinct"`
	RSSDistinct     int     `json:"rss_distinct"`
	LatencyRate     int     `json:"latency_rate"`
	LatencySeconds  float64 `json:"latency_seconds"`
	Partitions      int     `json:"partitions"`
	Brokers         string  `json:"brokers"`
	Redis           string  `json:"redis"`
	RedisDB         int     `json:"redis_db"`
	ProviderLimits  string  `json:"provider_limits"`
	RSSProviderMode string  `json:"rss_providers"`
}

// Stage is one service measured alone.
type Stage struct {
	RPS     *float64       `json:"rps"`
	Ratio   *float64       `json:"ratio"`
	Records int64          `json:"records,omitempty"`
	Seconds float64        `json:"seconds,omitempty"`
	RSSMiB  *float64       `json:"rss_mib,omitempty"`
	Error   string         `json:"error,omitempty"`
	Extra   map[string]any `json:"extra,omitempty"`
}

// Latency is the end-to-end latency at a fixed rate.
type Latency struct {
	P50          *float64 `json:"p50"`
	P99          *float64 `json:"p99"`
	Method       string   `json:"method"`
	Produced     int      `json:"produced,omitempty"`
	Acked        int      `json:"acked,omitempty"`
	Indicators   int      `json:"new_indicators,omitempty"` // distinct indicators the produced records carried
	AchievedRate float64  `json:"achieved_rate,omitempty"`
	HistP50      *float64 `json:"histogram_p50,omitempty"`
	HistP99      *float64 `json:"histogram_p99,omitempty"`
	HistNote     string   `json:"histogram_note,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// ProviderCalls is the call accounting of one provider route.
type ProviderCalls struct {
	Calls        int64   `json:"calls"`
	Unique       int64   `json:"unique_sent"`
	Ratio        float64 `json:"ratio"`
	Over1        int64   `json:"indicators_called_more_than_once"`
	NotCalled    int64   `json:"indicators_not_called"`
	Route        string  `json:"route"`
	IndicatorTyp string  `json:"indicator_type"`
}

// Target is one goal with its measured value.
type Target struct {
	Name   string   `json:"name"`
	Goal   string   `json:"goal"`
	Actual *float64 `json:"actual"`
	Unit   string   `json:"unit"`
	Status string   `json:"status"` // PASS, MISS, N/A
	Note   string   `json:"note,omitempty"`
}

// Report is the JSON written to bench/results.
type Report struct {
	Timestamp         string                   `json:"timestamp"`
	GitCommit         string                   `json:"git_commit,omitempty"`
	DurationSeconds   float64                  `json:"duration_seconds"`
	Machine           Machine                  `json:"machine"`
	Params            Params                   `json:"params"`
	BaselineRPS       *float64                 `json:"baseline_rps"`
	Baseline          Stage                    `json:"baseline"`
	Stages            map[string]*Stage        `json:"stages"`
	E2ERPS            *float64                 `json:"e2e_rps"`
	E2E               Stage                    `json:"e2e"`
	Latency           Latency                  `json:"latency_ms_at_5k"`
	RSSMiB            map[string]*float64      `json:"rss_mib"`
	RSSRun            Stage                    `json:"rss_run"`
	ProviderPerUnique map[string]*float64      `json:"provider_calls_per_unique"`
	ProviderCalls     map[string]ProviderCalls `json:"provider_calls"`
	ThreatQPer1k      *float64                 `json:"threatq_calls_per_1k_verdicts"`
	ThreatQDetail     map[string]any           `json:"threatq_detail,omitempty"`
	Warninglist       *WarninglistCost         `json:"warninglist_lookup,omitempty"`
	Targets           []Target                 `json:"targets"`
	Hotspots          map[string][]string      `json:"hotspots,omitempty"`
	Notes             []string                 `json:"notes,omitempty"`
}

func newReport() *Report {
	r := &Report{Stages: map[string]*Stage{}, RSSMiB: map[string]*float64{}, ProviderPerUnique: map[string]*float64{},
		ProviderCalls: map[string]ProviderCalls{}, Hotspots: map[string][]string{}}
	r.Baseline.Error, r.E2E.Error, r.RSSRun.Error = "not run", "not run", "not run"
	for _, s := range serviceNames {
		r.Stages[s] = &Stage{Error: "not run"}
		r.RSSMiB[s] = nil
	}
	return r
}

func ptr(v float64) *float64 { return &v }

// round keeps JSON numbers readable.
func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Target goals.
const (
	goalE2ERPS       = 20000.0
	goalStageRatio   = 0.50
	goalIngestRatio  = 0.30
	goalP99Ms        = 2000.0
	goalRSSMiB       = 150.0
	goalProviderCall = 1.0
)

// evaluate fills r.Targets from the measured values.
func (r *Report) evaluate() {
	var ts []Target
	ts = append(ts, atLeast("end to end throughput", fmt.Sprintf(">= %.0f", goalE2ERPS), r.E2ERPS, goalE2ERPS, "raw rec/s", r.E2E.Error))
	for _, s := range serviceNames {
		goal := goalStageRatio
		if s == "ingest" {
			goal = goalIngestRatio
		}
		st := r.Stages[s]
		ts = append(ts, atLeast(s+" vs baseline", fmt.Sprintf(">= %.0f", goal*100), scale(st.Ratio, 100), goal*100, "%", st.Error))
	}
	ts = append(ts, atMost("p99 latency at 5k/s", fmt.Sprintf("<= %.0f", goalP99Ms), r.Latency.P99, goalP99Ms, "ms", r.Latency.Error))
	for _, s := range serviceNames {
		note := ""
		if r.RSSMiB[s] == nil {
			note = "not measured"
		}
		ts = append(ts, atMost("peak RSS "+s, fmt.Sprintf("<= %.0f", goalRSSMiB), r.RSSMiB[s], goalRSSMiB, "MiB", note))
	}
	provs := make([]string, 0, len(r.ProviderPerUnique))
	for p := range r.ProviderPerUnique {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	if len(provs) == 0 {
		ts = append(ts, Target{Name: "provider calls per unique indicator", Goal: "= 1.0", Unit: "calls", Status: "N/A", Note: "not measured"})
	}
	for _, p := range provs {
		v := r.ProviderPerUnique[p]
		t := Target{Name: "provider calls/unique " + p, Goal: "= 1.0", Actual: v, Unit: "calls", Status: "N/A"}
		if v != nil {
			t.Status = "MISS"
			if math.Abs(*v-goalProviderCall) < 1e-9 {
				t.Status = "PASS"
			}
		}
		ts = append(ts, t)
	}
	r.Targets = ts
}

func scale(v *float64, f float64) *float64 {
	if v == nil {
		return nil
	}
	return ptr(*v * f)
}

func atLeast(name, goal string, v *float64, min float64, unit, reason string) Target {
	t := Target{Name: name, Goal: goal, Actual: v, Unit: unit, Status: "N/A"}
	if v == nil {
		t.Note = reason
		return t
	}
	t.Status = "MISS"
	if *v >= min {
		t.Status = "PASS"
	}
	return t
}

func atMost(name, goal string, v *float64, max float64, unit, reason string) Target {
	t := Target{Name: name, Goal: goal, Actual: v, Unit: unit, Status: "N/A"}
	if v == nil {
		t.Note = reason
		return t
	}
	t.Status = "MISS"
	if *v <= max {
		t.Status = "PASS"
	}
	return t
}

// fmtNum prints a value or "null".
func fmtNum(v *float64, digits int) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%.*f", digits, *v)
}

// table is a small text/markdown table writer.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// text renders aligned columns.
func (t *table) text(w io.Writer) {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) && len([]rune(c)) > width[i] {
				width[i] = len([]rune(c))
			}
		}
	}
	line := func(cells []string) {
		parts := make([]string, len(width))
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			parts[i] = c + strings.Repeat(" ", width[i]-len([]rune(c)))
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
	line(t.head)
	seps := make([]string, len(width))
	for i, n := range width {
		seps[i] = strings.Repeat("-", n)
	}
	line(seps)
	for _, r := range t.rows {
		line(r)
	}
}

// markdown renders a GitHub table; pipes in cells are escaped.
func (t *table) markdown(w io.Writer) {
	esc := func(cells []string) string {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		return "| " + strings.Join(out, " | ") + " |"
	}
	fmt.Fprintln(w, esc(t.head))
	seps := make([]string, len(t.head))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintln(w, "| "+strings.Join(seps, " | ")+" |")
	for _, r := range t.rows {
		fmt.Fprintln(w, esc(r))
	}
}

// metricsTable lists the measured numbers.
func (r *Report) metricsTable() *table {
	t := &table{head: []string{"measurement", "value", "detail"}}
	t.add("baseline (consume→decode→encode→produce)", fmtNum(r.BaselineRPS, 0)+" rec/s", detail(r.Baseline))
	for _, s := range serviceNames {
		st := r.Stages[s]
		t.add("stage "+s, fmtNum(st.RPS, 0)+" rec/s ("+fmtNum(scale(st.Ratio, 100), 1)+" % of baseline)", detail(*st))
	}
	t.add("end to end, sustained", fmtNum(r.E2ERPS, 0)+" raw rec/s", detail(r.E2E)+pipelineDetail(r.E2E))
	lat := fmt.Sprintf("p50 %s ms, p99 %s ms", fmtNum(r.Latency.P50, 0), fmtNum(r.Latency.P99, 0))
	ld := r.Latency.Method
	if r.Latency.Produced > 0 {
		ld += fmt.Sprintf("; %d records produced at %.0f/s carrying %d new indicators, %d of them acked by ThreatQ", r.Latency.Produced, r.Latency.AchievedRate, r.Latency.Indicators, r.Latency.Acked)
	}
	if r.Latency.HistP50 != nil || r.Latency.HistP99 != nil || r.Latency.HistNote != "" {
		ld += fmt.Sprintf("; sink histogram p50 %s / p99 %s ms %s", fmtNum(r.Latency.HistP50, 0), fmtNum(r.Latency.HistP99, 0), r.Latency.HistNote)
	}
	if r.Latency.Error != "" {
		ld += "; " + r.Latency.Error
	}
	t.add(fmt.Sprintf("latency at %d rec/s", r.Params.LatencyRate), lat, ld)
	for _, s := range serviceNames {
		d := fmt.Sprintf("VmHWM in the peak-RSS run (%d raw records, one distinct IP each)", r.Params.RSSDistinct)
		if c, ok := r.RSSRun.Extra["committed"].(map[string]int64); ok {
			d += fmt.Sprintf("; %s committed %d records", s, c[s])
		}
		t.add("peak RSS "+s, fmtNum(r.RSSMiB[s], 1)+" MiB", d)
	}
	provs := make([]string, 0, len(r.ProviderCalls))
	for p := range r.ProviderCalls {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	for _, p := range provs {
		pc := r.ProviderCalls[p]
		t.add("provider calls/unique "+p, fmt.Sprintf("%.3f", pc.Ratio),
			fmt.Sprintf("%d calls, %d unique %s sent, %d called >1, %d not called", pc.Calls, pc.Unique, pc.IndicatorTyp, pc.Over1, pc.NotCalled))
	}
	t.add("ThreatQ calls per 1,000 verdicts", fmtNum(r.ThreatQPer1k, 1), fmtDetail(r.ThreatQDetail))
	if w := r.Warninglist; w != nil {
		t.add("warninglist lookup (all shipped lists)", fmt.Sprintf("%.0f / %.0f / %.0f ns", w.IPv4NS, w.IPv6NS, w.DomainNS),
			fmt.Sprintf("per indicator, IPv4 / IPv6 / domain; %d lists, %d entries; %d samples per type, %.1f %% of them listed",
				w.Lists, w.Entries, w.Samples, 100*w.MatchShare))
	}
	return t
}

// pipelineDetail shows where an end-to-end run spent its time.
func pipelineDetail(s Stage) string {
	var parts []string
	if v, ok := s.Extra["mix"]; ok {
		parts = append(parts, fmt.Sprintf("records drawn by %v, %v distinct used", v, s.Extra["distinct_indicators"]))
	}
	if v, ok := s.Extra["observations"]; ok {
		parts = append(parts, fmt.Sprintf("%v observations", v))
	}
	if v, ok := s.Extra["verdicts"]; ok {
		parts = append(parts, fmt.Sprintf("%v verdicts", v))
	}
	if m, ok := s.Extra["stage_last_commit_s"].(map[string]float64); ok {
		var st []string
		for _, svc := range serviceNames {
			st = append(st, fmt.Sprintf("%s %.1f s", svc, m[svc]))
		}
		parts = append(parts, "last commit: "+strings.Join(st, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func detail(s Stage) string {
	if s.Error != "" && s.RPS == nil {
		return "null: " + s.Error
	}
	d := fmt.Sprintf("%d records in %.2f s", s.Records, s.Seconds)
	if s.RSSMiB != nil {
		d += fmt.Sprintf(", RSS %.1f MiB", *s.RSSMiB)
	}
	if s.Error != "" {
		d += "; " + s.Error
	}
	return d
}

func fmtDetail(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// targetsTable lists goals with PASS/MISS.
func (r *Report) targetsTable() *table {
	t := &table{head: []string{"target", "goal", "actual", "status", "note"}}
	for _, g := range r.Targets {
		digits := 0
		if g.Unit == "calls" || g.Unit == "MiB" || g.Unit == "%" {
			digits = 1
			if g.Unit == "calls" {
				digits = 3
			}
		}
		actual := fmtNum(g.Actual, digits)
		if g.Actual != nil {
			actual += " " + g.Unit
		}
		t.add(g.Name, g.Goal+" "+g.Unit, actual, g.Status, g.Note)
	}
	return t
}

// writeText prints both tables and notes.
func (r *Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "Vigil benchmark %s (%s mode) on %d cores, %d MiB, %s; load average %s at start, %s at end\n\n",
		r.Timestamp, r.Params.Mode, r.Machine.Cores, r.Machine.MemoryMiB, r.Machine.CPUModel, r.Machine.LoadStart, r.Machine.LoadEnd)
	r.metricsTable().text(w)
	fmt.Fprintln(w)
	r.targetsTable().text(w)
	for _, s := range r.hotspotKeys() {
		fmt.Fprintf(w, "\nhot spots %s:\n  %s\n", s, strings.Join(r.Hotspots[s], "\n  "))
	}
	r.writeNotes(w, "")
}

func (r *Report) hotspotKeys() []string {
	keys := make([]string, 0, len(r.Hotspots))
	for k := range r.Hotspots {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeMarkdown writes latest.md.
func (r *Report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# Vigil benchmark results\n\n%s, %s mode, %d cores, %d MiB, %s, %s. Commit %s. Suite took %.0f s. Load average %s at start, %s at end.\n\n",
		r.Timestamp, r.Params.Mode, r.Machine.Cores, r.Machine.MemoryMiB, r.Machine.CPUModel, r.Machine.GoVersion, r.GitCommit, r.DurationSeconds,
		r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(w, "Records per stage run: %d over %d distinct indicators; RSS run over %d distinct indicators; latency at %d rec/s for %.0f s.\n\n",
		r.Params.Records, r.Params.Distinct, r.Params.RSSDistinct, r.Params.LatencyRate, r.Params.LatencySeconds)
	fmt.Fprintln(w, "## Measurements")
	fmt.Fprintln(w)
	r.metricsTable().markdown(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	r.targetsTable().markdown(w)
	if len(r.Hotspots) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "## Hot spots (pprof: CPU of stages that missed their ratio target, in-use heap at the end of the peak-RSS run)")
		for _, s := range r.hotspotKeys() {
			fmt.Fprintf(w, "\n### %s\n\n```\n%s\n```\n", s, strings.Join(r.Hotspots[s], "\n"))
		}
	}
	fmt.Fprintln(w)
	r.writeNotes(w, "## Notes\n\n")
}

func (r *Report) writeNotes(w io.Writer, heading string) {
	if len(r.Notes) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, heading)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "- "+n)
	}
}

// marshal renders the JSON report.
func (r *Report) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}
