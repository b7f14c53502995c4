package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
)

func TestSplitRecords(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"json lines", "{\"a\":1}\n\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"json lines keep a broken line", "{\"a\":1}\n{\"b\":\n", []string{`{"a":1}`, `{"b":`}},
		{"pretty documents", "{\n  \"a\": 1\n}\n{\n  \"b\": [1, 2]\n}\n", []string{`{"a":1}`, `{"b":[1,2]}`}},
		{"array", "[\n {\"a\":1},\n {\"b\":2}\n]", []string{`{"a":1}`, `{"b":2}`}},
		{"expected wrapper", "{\n\"expected\": [{\"a\": 1}, {\"b\": 2}]\n}", []string{`{"a":1}`, `{"b":2}`}},
		{"text lines", "CEF:0|a|b\r\n\n<134>Jun 1 asa: x\n", []string{"CEF:0|a|b", "<134>Jun 1 asa: x"}},
		{"empty", "  \n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitRecords([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, g := range got {
				gs = append(gs, string(g))
			}
			if !slices.Equal(gs, tt.want) {
				t.Errorf("got %q, want %q", gs, tt.want)
			}
		})
	}
	if _, err := splitRecords([]byte("{\n\"a\": \n")); err == nil {
		t.Error("a truncated multi-line document must be an error")
	}
}

func TestLoadSamplesMapsFormatsToTopics(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("json/sentinelone/a.log", "{\"x\":1}\n{\"x\":2}\n")
	write("json/sentinelone/a.log.golden.jsonl", "{\"kind\":\"x\"}\n")
	write("json/SOURCES.md", "# notes\n")
	write("text/cisco_asa/b.log", "line one\nline two\nline three\n")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srcs, err := loadSamples(root, newNames(".t").Topic, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range srcs {
		got[s.Topic] += len(s.Records)
	}
	if len(got) != 2 || got["raw.edr.t"] != 2 || got["raw.asa.t"] != 3 {
		t.Errorf("records per topic = %v, want raw.edr.t 2 and raw.asa.t 3 (golden files and notes skipped)", got)
	}
	write("json/unknownfmt/c.log", "{}\n")
	if _, err := loadSamples(root, newNames("").Topic, now); err == nil || !strings.Contains(err.Error(), "unknownfmt") {
		t.Errorf("unknown format directory: err = %v, want one naming it", err)
	}
}

func TestLoadInputReplacesNow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "suricata.log"), []byte(`{"timestamp":"@NOW@"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	srcs, err := loadInput(dir, newNames("").Topic, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Topic != "raw.suricata" || string(srcs[0].Records[0]) != `{"timestamp":"2026-01-02T03:04:05.000006+0000"}` {
		t.Errorf("got %+v", srcs)
	}
	if _, err := loadInput(t.TempDir(), newNames("").Topic, now); err == nil {
		t.Error("an empty input directory must be an error")
	}
}

func TestProgressOf(t *testing.T) {
	base := offsets{"a": {0: 10, 1: 0}}
	end := offsets{"a": {0: 15, 1: 4}, "b": {0: 3}}
	tests := []struct {
		name      string
		committed offsets
		consumed  int64
	}{
		{"nothing committed", offsets{}, 0},
		{"partly", offsets{"a": {0: 12, 1: 4}}, 6},
		{"committed before the baseline counts as nothing", offsets{"a": {0: 5}}, 0},
		{"all", offsets{"a": {0: 15, 1: 4}, "b": {0: 3}}, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := progressOf("x", []string{"a", "b"}, base, end, tt.committed)
			if p.Total != 12 || p.Consumed != tt.consumed || p.Lag() != 12-tt.consumed {
				t.Errorf("got total %d consumed %d lag %d, want 12 %d %d", p.Total, p.Consumed, p.Lag(), tt.consumed, 12-tt.consumed)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP vigil_ingest_records_total Raw records by outcome
# TYPE vigil_ingest_records_total counter
vigil_ingest_records_total{outcome="observations",reason=""} 27
vigil_ingest_records_total{outcome="none",reason="no_indicators"} 22
vigil_ingest_records_total{outcome="dead_lettered",reason="malformed"} 1
vigil_records_in_total{stage="ingest",note="a \"quoted\", value"} 50
vigil_records_in_total{stage="enrich"} 7e0
go_goroutines 12
broken{line 3
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := sumMetric(s, "vigil_ingest_records_total", nil); got != 50 {
		t.Errorf("ingest total = %v, want 50", got)
	}
	if got := sumMetric(s, "vigil_records_in_total", map[string]string{"stage": "ingest"}); got != 50 {
		t.Errorf("records in (ingest) = %v, want 50", got)
	}
	by := byLabel(s, "vigil_ingest_records_total", "outcome")
	if by["none"] != 22 || by["dead_lettered"] != 1 {
		t.Errorf("by outcome = %v", by)
	}
	for _, x := range s {
		if x.Name == "vigil_records_in_total" && x.Labels["stage"] == "ingest" && x.Labels["note"] != `a "quoted", value` {
			t.Errorf("escaped label = %q", x.Labels["note"])
		}
	}
}

func balanced() *Summary {
	return &Summary{RecordsReplayed: 10, ReplayByTopic: map[string]int64{"raw.a": 6, "raw.b": 4},
		Ingest: IngestAccounting{Available: true, In: 10, Consumed: 10, Observations: 7,
			None: map[string]int64{"no_indicators": 2}, DeadLettered: map[string]int64{"malformed": 1}},
		DeadLetterCounts: []DLQCount{{Stage: "ingest", Reason: "malformed", Count: 1}},
		Stages:           []StageLag{{Stage: "ingest"}, {Stage: "sink"}},
		ThreatQ:          ThreatQInfo{Checked: true, Indicators: 2}}
}

func TestEvaluate(t *testing.T) {
	verdicts := map[string]string{"ipv4:1.2.3.4": "1.2.3.4", "domain:x.org": "x.org"}
	inTQ := map[string]bool{"1.2.3.4": true, "x.org": true}
	tests := []struct {
		name     string
		mutate   func(*Summary)
		tq       map[string]bool
		failing  string
		wantPass bool
	}{
		{"balanced", func(*Summary) {}, inTQ, "", true},
		{"replay not acknowledged", func(s *Summary) {
			s.RecordsReplayed = 9
			s.Ingest.In = 9
			s.Ingest.Consumed = 9
			s.Ingest.Observations = 6
		}, inTQ, "replay acknowledged", false},
		{"ingest missed a record", func(s *Summary) { s.Ingest.In = 9; s.Ingest.Consumed = 9; s.Ingest.Observations = 6 }, inTQ, "ingest saw every record", false},
		{"outcomes do not add up", func(s *Summary) { s.Ingest.Observations = 6 }, inTQ, "ingest accounting balances", false},
		{"dead letter missing on the DLQ", func(s *Summary) { s.DeadLetterCounts = nil }, inTQ, "ingest dead letters on the DLQ", false},
		{"metrics unreadable", func(s *Summary) { s.Ingest = IngestAccounting{} }, inTQ, "ingest accounting", false},
		{"lag left", func(s *Summary) { s.Stages[1].Lag = 3 }, inTQ, "every stage drained", false},
		{"verdict not in ThreatQ", func(*Summary) {}, map[string]bool{"1.2.3.4": true}, "every verdict reached ThreatQ", false},
		{"real ThreatQ not checked", func(s *Summary) { s.ThreatQ.Checked = false }, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := balanced()
			tt.mutate(s)
			s.evaluate(verdicts, tt.tq)
			if s.OK != tt.wantPass {
				t.Errorf("OK = %t, want %t; checks %+v", s.OK, tt.wantPass, s.Checks)
			}
			for _, c := range s.Checks {
				if c.Name == tt.failing && c.OK {
					t.Errorf("check %q passed, want it to fail", c.Name)
				}
			}
			var out bytes.Buffer
			s.render(&out)
			want := "RESULT: OK"
			if !tt.wantPass {
				want = "RESULT: FAILED"
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("render lacks %q:\n%s", want, out.String())
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	env := []string{"PATH=/bin", "VIGIL_KAFKA_BROKERS=k:9092", "VIGIL_LOG_LEVEL=debug", "VIGIL_OTLP_ENDPOINT=http://col:4318"}
	lookup := envconf.FromMap(map[string]string{"VIGIL_KAFKA_BROKERS": "k:9092", "VIGIL_THREATQ_URL": "https://tq"})
	o, err := parseOptions([]string{"-bin", "/b"}, env, lookup, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Environ, []string{"PATH=/bin", "VIGIL_OTLP_ENDPOINT=http://col:4318"}) {
		t.Errorf("demo mode must drop the caller's VIGIL_* variables but where spans go, got %v", o.Environ)
	}
	if got := o.brokers(); !slices.Equal(got, []string{"127.0.0.1:19092"}) {
		t.Errorf("brokers = %v", got)
	}
	if o.ChildShutdown != 10*time.Second || o.StopTimeout != 15*time.Second {
		t.Errorf("demo mode: child shutdown %v, stop timeout %v; want 10s, 15s", o.ChildShutdown, o.StopTimeout)
	}
	o, err = parseOptions([]string{"-real", "-bin", "/b"}, env, lookup, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.brokers(), []string{"k:9092"}) || o.threatQURL() != "https://tq" || len(o.Environ) != 4 {
		t.Errorf("real mode: brokers %v, threatq %q, env %v", o.brokers(), o.threatQURL(), o.Environ)
	}
	// A service killed before its own shutdown budget runs out loses its drain and commit.
	if o.StopTimeout != 35*time.Second {
		t.Errorf("real mode with the services' default 30s shutdown: stop timeout %v, want 35s", o.StopTimeout)
	}
	slow := envconf.FromMap(map[string]string{"VIGIL_SHUTDOWN_TIMEOUT": "1m"})
	if o, err = parseOptions([]string{"-real", "-bin", "/b"}, env, slow, &bytes.Buffer{}); err != nil || o.StopTimeout != 65*time.Second {
		t.Errorf("real mode, VIGIL_SHUTDOWN_TIMEOUT=1m: stop timeout %v (err %v), want 1m5s", o.StopTimeout, err)
	}
	if o, err = parseOptions([]string{"-stop-timeout", "3s", "-bin", "/b"}, env, lookup, &bytes.Buffer{}); err != nil || o.StopTimeout != 3*time.Second {
		t.Errorf("explicit -stop-timeout 3s: got %v (err %v)", o.StopTimeout, err)
	}
	bad := [][]string{
		{"-real", "-kafka", "x:1"},
		{"-ops-port", "0"},
		{"-drain-timeout", "0s"},
		{"-stop-timeout", "-1s"},
		{"stray"},
		{"-nope"},
	}
	for _, args := range bad {
		if _, err := parseOptions(args, env, lookup, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: want a usage error", args)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	o := options{OpsPortBase: 9500, DevKafkaAddr: "127.0.0.1:19092", ProviderAddr: "127.0.0.1:18091",
		ThreatQAddr: "127.0.0.1:18443", LogLevel: "info", Redis: "r:6379", RedisDB: 3, TraceDir: "/tr", ChildShutdown: devShutdown}
	n := newNames(".s")
	env := func(i int) map[string]string {
		m := map[string]string{}
		for _, kv := range o.serviceEnv(i, n) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	ing, enr, snk := env(0), env(1), env(3)
	checks := []struct{ got, want string }{
		{ing["VIGIL_OPS_ADDR"], "127.0.0.1:9500"},
		{snk["VIGIL_OPS_ADDR"], "127.0.0.1:9503"},
		{ing["VIGIL_GROUP"], "vigil-ingest.s"},
		{ing["VIGIL_TOPIC_OBSERVED"], "indicators.observed.s"},
		{strings.Split(ing["VIGIL_INGEST_TOPICS"], ",")[0], "raw.suricata.s"},
		{ing["VIGIL_TRACE_FILE"], "/tr/ingest.spans.jsonl"},
		{ing["VIGIL_REDIS_DB"], "3"},
		{enr["VIGIL_ENRICH_CRIMINALIP_BASE_URL"], "http://127.0.0.1:18091"},
		{enr["VIGIL_ENRICH_GREYNOISE_RATE"], "0"},
		{snk["VIGIL_THREATQ_URL"], "http://127.0.0.1:18443"},
		{snk["VIGIL_TOPIC_VERDICTS"], "indicators.verdicts.s"},
		{enr["VIGIL_SHUTDOWN_TIMEOUT"], "10s"},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	l := progressLine(5, 10, []stageProgress{{Name: "ingest", Consumed: 2, Total: 8}})
	if !strings.Contains(l, "replay █████····· 5/10") || !strings.Contains(l, "ingest ██······ 2/8") {
		t.Errorf("line = %q", l)
	}
	var buf bytes.Buffer
	ll := &liveLine{w: &buf, enabled: true}
	ll.draw("first")
	ll.draw("second")
	ll.done()
	if buf.String() != "first\nsecond\n" {
		t.Errorf("off a terminal: %q, want the first and the final line", buf.String())
	}
}
