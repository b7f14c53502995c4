package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
)

func TestPercentile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name    string
		samples []float64
		q       float64
		want    float64
		ok      bool
	}{
		{"empty", nil, 0.5, 0, false},
		{"single", []float64{7}, 0.99, 7, true},
		{"median of odd", []float64{5, 1, 3}, 0.5, 3, true},
		{"nearest rank p50 of 4", []float64{4, 1, 3, 2}, 0.5, 2, true},
		{"p99 of 100", seq(100), 0.99, 99, true},
		{"p100 is max", seq(100), 1, 100, true},
		{"p0 is min", seq(100), 0, 1, true},
		{"unfinished records rank last", []float64{1, 2, inf}, 0.99, inf, true},
		{"bad q", []float64{1}, 1.5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := percentile(tt.samples, tt.q)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("percentile(%v, %v) = %v, %v; want %v, %v", tt.samples, tt.q, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPercentileDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	if _, ok := percentile(in, 0.5); !ok {
		t.Fatal("no result")
	}
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Fatalf("input reordered: %v", in)
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[n-1-i] = float64(i + 1)
	}
	return out
}

const promSample = `# HELP vigil_sink_triage_latency_seconds Time from the verdict's event time to ThreatQ's acknowledgement.
# TYPE vigil_sink_triage_latency_seconds histogram
vigil_sink_triage_latency_seconds_bucket{otel_scope_name="vigil/sink",le="0.5"} 10
vigil_sink_triage_latency_seconds_bucket{otel_scope_name="vigil/sink",le="1"} 50
vigil_sink_triage_latency_seconds_bucket{otel_scope_name="vigil/sink",le="2"} 90
vigil_sink_triage_latency_seconds_bucket{otel_scope_name="vigil/sink",le="5"} 100
vigil_sink_triage_latency_seconds_bucket{otel_scope_name="vigil/sink",le="+Inf"} 100
vigil_sink_triage_latency_seconds_sum{otel_scope_name="vigil/sink"} 123.4
vigil_sink_triage_latency_seconds_count{otel_scope_name="vigil/sink"} 100
vigil_sink_writes_total{otel_scope_name="vigil/sink"} 5
`

func TestParseHistogramAndQuantile(t *testing.T) {
	h, found, err := parseHistogram(strings.NewReader(promSample), "vigil_sink_triage_latency_seconds")
	if err != nil || !found {
		t.Fatalf("parse: found=%v err=%v", found, err)
	}
	if h.count != 100 || len(h.buckets) != 5 {
		t.Fatalf("count=%v buckets=%d, want 100 and 5", h.count, len(h.buckets))
	}
	tests := []struct {
		q    float64
		want float64
		ok   bool
	}{
		{0.05, 0.25, true}, // half of the first bucket (0–0.5)
		{0.5, 1.5, true},   // rank 50 closes bucket 1, so interpolation starts the next: 1 + (2-1)*(50-50)/40 … see below
		{0.9, 2, true},
		{0.99, 4.7, true}, // 2 + 3*(99-90)/10
	}
	// rank 50 equals the cumulative count of le=1, so the quantile is the bucket's upper bound 1.
	tests[1].want = 1
	for _, tt := range tests {
		got, ok := h.quantile(tt.q)
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, %v; want %v, %v", tt.q, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHistogramQuantileInInfBucket(t *testing.T) {
	h := histogram{buckets: []bucket{{le: 1, count: 1}, {le: math.Inf(1), count: 10}}}
	got, ok := h.quantile(0.99)
	if ok || got != 1 {
		t.Fatalf("quantile in +Inf bucket = %v, %v; want 1 (lower bound), false", got, ok)
	}
}

func TestHistogramSub(t *testing.T) {
	before, _, _ := parseHistogram(strings.NewReader(promSample), "vigil_sink_triage_latency_seconds")
	after := before
	after.buckets = append([]bucket(nil), before.buckets...)
	after.buckets[0].count += 5 // 5 new observations <= 0.5 s
	for i := 1; i < len(after.buckets); i++ {
		after.buckets[i].count += 5
	}
	after.count += 5
	d := after.sub(before)
	if d.count != 5 || d.buckets[0].count != 5 || d.buckets[len(d.buckets)-1].count != 5 {
		t.Fatalf("delta = %+v", d)
	}
	if q, ok := d.quantile(0.99); !ok || q > 0.5 {
		t.Fatalf("p99 of delta = %v, %v; want <= 0.5", q, ok)
	}
}

func TestParseHistogramMissing(t *testing.T) {
	_, found, err := parseHistogram(strings.NewReader("other_metric 1\n"), "vigil_sink_triage_latency_seconds")
	if err != nil || found {
		t.Fatalf("found=%v err=%v, want not found", found, err)
	}
}

func TestSampleValue(t *testing.T) {
	tests := []struct {
		line string
		want float64
	}{
		{`a_count{x="1"} 42`, 42},
		{`a_count 7`, 7},
		{`a_bucket{le="+Inf"} 3 1700000000`, 3},
	}
	for _, tt := range tests {
		got, err := sampleValue(tt.line)
		if err != nil || got != tt.want {
			t.Errorf("sampleValue(%q) = %v, %v; want %v", tt.line, got, err, tt.want)
		}
	}
}

func TestDrainRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := drainRate{FirstAt: t0, FirstCommitted: 1000, DoneAt: t0.Add(10 * time.Second), Total: 101000,
		LastProgress: []time.Time{t0.Add(4 * time.Second), {}}}
	rps, ok := d.RPS()
	if !ok || rps != 10000 {
		t.Fatalf("RPS = %v, %v; want 10000", rps, ok)
	}
	if s := d.StageSeconds(); s[0] != 4 || s[1] != 0 {
		t.Fatalf("StageSeconds = %v", s)
	}
	if _, ok := (drainRate{FirstAt: t0, DoneAt: t0, Total: 5, FirstCommitted: 5}).RPS(); ok {
		t.Fatal("empty window must not give a rate")
	}
}

func TestStatusKBAndCPUModel(t *testing.T) {
	status := "Name:\tsink\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  1024 kB\n"
	if kb, ok := statusKB(strings.NewReader(status), "VmHWM"); !ok || kb != 204800 {
		t.Fatalf("VmHWM = %v, %v", kb, ok)
	}
	if _, ok := statusKB(strings.NewReader(status), "VmSwap"); ok {
		t.Fatal("missing key found")
	}
	cpu := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
	if m := cpuModel(strings.NewReader(cpu)); m != "AMD EPYC 7B13" {
		t.Fatalf("cpu model %q", m)
	}
}

func fullReport() *Report {
	r := newReport()
	r.Timestamp = "2026-01-01T00:00:00Z"
	r.Machine = Machine{Cores: 2, MemoryMiB: 24000, CPUModel: "AMD EPYC", GoVersion: "go1.26"}
	r.Params = Params{Mode: "full", Records: 200000, Distinct: 20000, RSSDistinct: 1000000, LatencyRate: 5000, LatencySeconds: 20}
	r.BaselineRPS = ptr(20000)
	r.Baseline = Stage{RPS: ptr(20000), Records: 200000, Seconds: 10}
	r.Stages["ingest"] = &Stage{RPS: ptr(7000), Ratio: ptr(0.35)}
	r.Stages["enrich"] = &Stage{RPS: ptr(12000), Ratio: ptr(0.6)}
	r.Stages["correlate"] = &Stage{RPS: ptr(4000), Ratio: ptr(0.2)}
	r.Stages["sink"] = &Stage{Error: "binary bin/sink: no such file"}
	r.E2ERPS = ptr(25000)
	r.Latency = Latency{P50: ptr(800), P99: ptr(2500), Method: "emulator"}
	r.RSSMiB["ingest"] = ptr(120)
	r.RSSMiB["enrich"] = ptr(151)
	r.ProviderPerUnique["criminalip"] = ptr(1)
	r.ProviderPerUnique["greynoise"] = ptr(1.25)
	r.ThreatQPer1k = ptr(12.5)
	r.evaluate()
	return r
}

func TestEvaluateTargets(t *testing.T) {
	r := fullReport()
	want := map[string]string{
		"end to end throughput":            "PASS",
		"ingest vs baseline":               "PASS", // 35 % >= 30 %
		"enrich vs baseline":               "PASS",
		"correlate vs baseline":            "MISS",
		"sink vs baseline":                 "N/A",
		"p99 latency at 5k/s":              "MISS",
		"peak RSS ingest":                  "PASS",
		"peak RSS enrich":                  "MISS",
		"peak RSS sink":                    "N/A",
		"provider calls/unique criminalip": "PASS",
		"provider calls/unique greynoise":  "MISS",
	}
	got := map[string]Target{}
	for _, tg := range r.Targets {
		got[tg.Name] = tg
	}
	for name, status := range want {
		tg, ok := got[name]
		if !ok {
			t.Errorf("target %q missing", name)
			continue
		}
		if tg.Status != status {
			t.Errorf("target %q = %s, want %s", name, tg.Status, status)
		}
	}
	if got["sink vs baseline"].Note == "" {
		t.Error("a stage that could not run must carry its reason")
	}
}

func TestReportJSONShape(t *testing.T) {
	b, err := fullReport().marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"machine", "baseline_rps", "stages", "e2e_rps", "latency_ms_at_5k", "rss_mib",
		"provider_calls_per_unique", "threatq_calls_per_1k_verdicts", "targets"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	machine := m["machine"].(map[string]any)
	for _, k := range []string{"cores", "memory_mib", "cpu_model"} {
		if _, ok := machine[k]; !ok {
			t.Errorf("machine.%s missing", k)
		}
	}
	stages := m["stages"].(map[string]any)
	for _, s := range serviceNames {
		st, ok := stages[s].(map[string]any)
		if !ok {
			t.Fatalf("stages.%s missing", s)
		}
		if _, ok := st["rps"]; !ok {
			t.Errorf("stages.%s.rps missing (must be present, null when not measured)", s)
		}
		if _, ok := st["ratio"]; !ok {
			t.Errorf("stages.%s.ratio missing", s)
		}
	}
	if stages["sink"].(map[string]any)["rps"] != nil {
		t.Error("a stage that did not run must have rps null")
	}
	lat := m["latency_ms_at_5k"].(map[string]any)
	if lat["p50"] != 800.0 || lat["p99"] != 2500.0 {
		t.Errorf("latency = %v", lat)
	}
	rss := m["rss_mib"].(map[string]any)
	if _, ok := rss["correlate"]; !ok || rss["correlate"] != nil {
		t.Errorf("rss_mib.correlate must be present and null, got %v", rss["correlate"])
	}
}

func TestTablesRender(t *testing.T) {
	r := fullReport()
	var text bytes.Buffer
	r.writeText(&text)
	out := text.String()
	for _, want := range []string{"correlate vs baseline", "MISS", "PASS", "null: binary bin/sink", "20000 rec/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	var md bytes.Buffer
	r.writeMarkdown(&md)
	lines := strings.Split(md.String(), "\n")
	var tableRows int
	for _, l := range lines {
		if strings.HasPrefix(l, "| ") {
			tableRows++
			if strings.Count(l, " | ")+2 < 3 {
				t.Errorf("short markdown row %q", l)
			}
		}
	}
	if tableRows < 10 {
		t.Errorf("markdown has %d table rows, want >= 10:\n%s", tableRows, md.String())
	}
}

func TestTextTableAligns(t *testing.T) {
	tb := &table{head: []string{"a", "bb"}}
	tb.add("long cell", "x")
	tb.add("s", "yy")
	var buf bytes.Buffer
	tb.text(&buf)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("lines = %q", lines)
	}
	col := strings.Index(lines[0], "bb")
	if strings.Index(lines[2], "x") != col || strings.Index(lines[3], "yy") != col {
		t.Fatalf("second column not aligned:\n%s", buf.String())
	}
}

func TestMarkdownEscapesPipes(t *testing.T) {
	tb := &table{head: []string{"k", "v"}}
	tb.add("a|b", "c")
	var buf bytes.Buffer
	tb.markdown(&buf)
	if !strings.Contains(buf.String(), `a\|b`) {
		t.Fatalf("pipe not escaped: %s", buf.String())
	}
}

type fakeAllow map[string]bool

func (f fakeAllow) Match(ind events.Indicator) (events.ListMatch, bool) {
	if f[ind.Value] {
		return events.ListMatch{List: "fake"}, true
	}
	return events.ListMatch{}, false
}

func TestIPPoolDistinctPublicAndFiltered(t *testing.T) {
	p := newIPPool(12345, nil)
	first := p.candidate(0).String()
	p2 := newIPPool(12345, fakeAllow{first: true})
	ips := p2.Take(5000)
	seen := map[string]bool{}
	nets := indicator.DefaultNets()
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("duplicate %s", ip)
		}
		seen[ip] = true
		if ip == first {
			t.Fatalf("allow-listed %s handed out", ip)
		}
		a := mustAddr(t, ip)
		if nets.Contains(a) {
			t.Fatalf("internal address %s", ip)
		}
	}
	more := p2.Take(100)
	for _, ip := range more {
		if seen[ip] {
			t.Fatalf("second Take repeated %s", ip)
		}
	}
}

func TestTemplatesRenderValidJSON(t *testing.T) {
	tmpls, err := loadEVETemplates("../../services/ingest/testdata/json/suricata_eve")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpls) < 100 {
		t.Fatalf("only %d templates", len(tmpls))
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	nets := indicator.DefaultNets()
	for i, tm := range tmpls {
		line := tm.Render(nil, ts, "185.1.2.3")
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("template %d: %v: %s", i, err, line)
		}
		if m["timestamp"] != "2026-01-02T03:04:05.600000+0000" {
			t.Fatalf("template %d timestamp %v", i, m["timestamp"])
		}
		src, dst := m["src_ip"].(string), m["dest_ip"].(string)
		if src != "185.1.2.3" && dst != "185.1.2.3" {
			t.Fatalf("template %d: public IP not placed: %s", i, line)
		}
		other := src
		if src == "185.1.2.3" {
			other = dst
		}
		if !nets.Contains(mustAddr(t, other)) {
			t.Fatalf("template %d: other side %s is public, so one record would carry two varied indicators", i, other)
		}
	}
}

func TestGeneratedRecordsEncode(t *testing.T) {
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	pool := newIPPool(7, nil).Take(20)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ipv4, domains int
	for i := range 40 {
		o := observationFor(pool, i, now)
		if o.Indicator.Type == events.TypeDomain {
			domains++
		} else {
			ipv4++
		}
		if _, err := serde.EncodeObservation(&o); err != nil {
			t.Fatalf("observation %d: %v", i, err)
		}
		e := enrichmentFor(pool, i, now)
		if _, err := serde.EncodeEnrichment(&e); err != nil {
			t.Fatalf("enrichment %d: %v", i, err)
		}
		v := verdictFor(pool, i, now)
		b, err := serde.EncodeVerdict(&v)
		if err != nil {
			t.Fatalf("verdict %d: %v", i, err)
		}
		back, err := serde.DecodeVerdict(t.Context(), b)
		if err != nil || back.Indicator != v.Indicator || back.Priority != v.Priority {
			t.Fatalf("verdict %d round trip: %+v, %v", i, back.Indicator, err)
		}
	}
	if domains == 0 || ipv4 == 0 {
		t.Fatalf("want a mix of indicator types, got %d ipv4 and %d domains", ipv4, domains)
	}
	if a, b := indicatorFor(pool, 3), indicatorFor(pool, 23); a != b {
		t.Fatalf("record i and i+len(pool) must share the indicator: %v vs %v", a, b)
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.Records != 200000 || c.Distinct != 20000 || c.RSSDistinct != 1000000 || c.E2ERecords != 100000 || !c.Profile {
				t.Fatalf("defaults: %+v", c)
			}
			if c.Brokers[0] != "127.0.0.1:39092" || c.RedisAddr != "127.0.0.1:36379" {
				t.Fatalf("infra defaults: %v %v", c.Brokers, c.RedisAddr)
			}
		}},
		{name: "quick", args: []string{"-quick"}, check: func(t *testing.T, c config) {
			if c.Records != 50000 || c.RSSDistinct != 100000 || c.LatencyDuration != 10*time.Second || c.Profile {
				t.Fatalf("quick: %+v", c)
			}
		}},
		{name: "env", env: map[string]string{"VIGIL_TEST_KAFKA_BROKERS": "127.0.0.1:1,127.0.0.1:2", "VIGIL_TEST_REDIS_ADDR": "127.0.0.1:3"},
			check: func(t *testing.T, c config) {
				if len(c.Brokers) != 2 || c.RedisAddr != "127.0.0.1:3" {
					t.Fatalf("env: %v %v", c.Brokers, c.RedisAddr)
				}
			}},
		{name: "set", args: []string{"-set", "sink:VIGIL_SINK_FLUSH_INTERVAL=500ms"}, check: func(t *testing.T, c config) {
			if len(c.Set["sink"]) != 1 || c.Set["sink"][0] != "VIGIL_SINK_FLUSH_INTERVAL=500ms" {
				t.Fatalf("set: %v", c.Set)
			}
		}},
		{name: "bad set service", args: []string{"-set", "nosuch:A=B"}, wantErr: "SERVICE:KEY=VALUE"},
		{name: "unknown phase", args: []string{"-phases", "baseline,warp"}, wantErr: "unknown phase"},
		{name: "distinct above records", args: []string{"-records", "10", "-distinct", "20"}, wantErr: "-distinct"},
		{name: "bad rss providers", args: []string{"-rss-providers", "some"}, wantErr: "-rss-providers"},
		{name: "bad redis db", args: []string{"-redis-db", "16"}, wantErr: "-redis-db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, envconf.New(envconf.FromMap(tt.env)), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestPprofTop(t *testing.T) {
	out := `File: sink
Type: cpu
Duration: 10s, Total samples = 8s (80.00%)
Showing nodes accounting for 6s, 75.00% of 8s total
      flat  flat%   sum%        cum   cum%
     2s 25.00% 25.00%      2s 25.00%  encoding/json.(*decodeState).object
     1s 12.50% 37.50%      1s 12.50%  runtime.mallocgc
     1s 12.50% 50.00%      1s 12.50%  syscall.Syscall
`
	got := pprofTop(out, 2)
	if len(got) != 6 || !strings.HasPrefix(got[0], "Type:") || !strings.HasPrefix(got[1], "Duration:") || !strings.Contains(got[4], "decodeState") || strings.Contains(strings.Join(got, "\n"), "syscall") {
		t.Fatalf("pprofTop = %q", got)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		line string
		want float64
		ok   bool
	}{
		{"4962 (java) S 1 4962 1 0 -1 4194560 12 0 0 0 1234 566 0 0 20 0 60 0 1000 7892920000 118585", 18.00, true},
		{"77 (my (odd) name) R 1 77 1 0 -1 0 0 0 0 0 5 5 0 0", 0.10, true},
		{"77 (short) R 1 2", 0, false},
		{"no parenthesis", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseStatCPU(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// TestWarninglistPhase: the lookup-cost phase loads every shipped list, looks up a mix in which
// some indicators are listed, and reports a cost per type.
func TestWarninglistPhase(t *testing.T) {
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{allow: set, rep: newReport(), seed: 7, log: slog.New(slog.DiscardHandler)}
	if err := b.runWarninglist(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := b.rep.Warninglist
	if w == nil || w.Lists < 50 || w.Entries < 10000 || w.IPv4NS <= 0 || w.IPv6NS <= 0 || w.DomainNS <= 0 {
		t.Fatalf("warninglist cost = %+v", w)
	}
	if w.MatchShare <= 0.05 || w.MatchShare >= 0.5 {
		t.Fatalf("match share %.3f: want the listed eighth of the mix (plus a few pool hits), not none or most", w.MatchShare)
	}
	var out bytes.Buffer
	b.rep.metricsTable().text(&out)
	if !strings.Contains(out.String(), "warninglist lookup (all shipped lists)") {
		t.Fatalf("table lacks the warninglist row:\n%s", out.String())
	}
}
