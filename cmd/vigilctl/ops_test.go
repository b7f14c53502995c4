package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// opsServer serves a service's /readyz and /metrics from testdata.
func opsServer(t *testing.T, metricsFile string, ready bool) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", metricsFile))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"kafka":"ok","redis":"dial tcp: connection refused"}`)
			return
		}
		_, _ = io.WriteString(w, `{"kafka":"ok"}`)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestParseMetricsFamilies(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "metrics_enrich.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fams, err := parseMetrics(f)
	if err != nil {
		t.Fatal(err)
	}
	// counters are found with or without the _total suffix
	if a, b := len(fams.samples("vigil_enrich_cache_total")), len(fams.samples("vigil_enrich_cache")); a != 4 || b != 4 {
		t.Errorf("cache samples = %d / %d, want 4", a, b)
	}
	hs := fams.histograms(metricAge)
	if len(hs) != 1 || hs[0].Count != 100 || len(hs[0].Buckets) != 4 {
		t.Fatalf("age histogram = %+v", hs)
	}
	b, c, q := opsMetrics("enrich", fams)
	if len(b) != 2 || b[0].Breaker != "provider=greynoise" || b[0].State != "open" || b[1].State != "closed" {
		t.Errorf("breakers = %+v", b)
	}
	if len(c) != 2 || c[1].Provider != "shodan" || math.Abs(c[1].HitRatio-0.8) > 1e-9 || c[0].HitRatio != 0 {
		t.Errorf("cache = %+v", c)
	}
	if len(q) != 1 || q[0].Remaining != 9500 || q[0].Series != "provider=shodan,window=month" {
		t.Errorf("quotas = %+v", q)
	}
	if _, err := parseMetrics(strings.NewReader("metric{ 1\n")); err == nil {
		t.Error("garbage metrics parsed")
	}
}

// seedGroup creates a topic with n records per partition on a kfake cluster and commits offset
// commit on partition 0 for group.
func seedGroup(t *testing.T, brokers []string, topic, group string, n int, commit int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: commit, LeaderEpoch: -1})
	resp, err := kadm.NewClient(cl).CommitOffsets(t.Context(), group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestStatus(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "indicators.observed"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	seedGroup(t, fake.ListenAddrs(), "indicators.observed", "vigil-enrich", 10, 4)

	enrich := opsServer(t, "metrics_enrich.txt", true)
	sink := opsServer(t, "metrics_sink.txt", false)
	ops := "enrich=" + enrich.URL + ",sink=" + sink.URL
	args := []string{"--brokers", strings.Join(fake.ListenAddrs(), ","), "--ops", ops, "status", "--group", "vigil-enrich"}

	out, _, err := runCmd(t, nil, append(args, "--json")...)
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "sink") {
		t.Errorf("err = %v, want ErrUnhealthy naming sink", err)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Group != "vigil-enrich" || rep.Groups[0].Lag != 6 {
		t.Fatalf("groups = %+v", rep.Groups)
	}
	p := rep.Groups[0].Partitions
	if len(p) != 1 || p[0].Committed != 4 || p[0].End != 10 || p[0].Lag != 6 {
		t.Errorf("partitions = %+v", p)
	}
	if len(rep.Services) != 2 || !rep.Services[0].Ready || rep.Services[1].Ready || rep.Services[1].Checks["redis"] == "" {
		t.Errorf("services = %+v", rep.Services)
	}
	if len(rep.Breakers) != 3 || rep.Breakers[2].Service != "sink" || rep.Breakers[2].State != "half-open" {
		t.Errorf("breakers = %+v", rep.Breakers)
	}
	if len(rep.Cache) != 2 || len(rep.Quotas) != 1 {
		t.Errorf("cache = %+v quotas = %+v", rep.Cache, rep.Quotas)
	}

	out, _, _ = runCmd(t, nil, args...)
	for _, want := range []string{
		"GROUP         STATE  MEMBERS  LAG  ERROR\nvigil-enrich  Empty  0        6    -",
		"vigil-enrich  indicators.observed  0          4          10   6",
		"NOT READY",
		"provider=greynoise  open",
		"shodan          80.0%      hit=75 miss=20 negative=5",
		"provider=shodan,window=month  9500",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusKafkaDown(t *testing.T) {
	enrich := opsServer(t, "metrics_enrich.txt", true)
	out, _, err := runCmd(t, nil, "--brokers", "127.0.0.1:1", "--timeout", "2s", "--ops", enrich.URL, "status", "--json")
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "kafka") {
		t.Errorf("err = %v, want unhealthy kafka", err)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.KafkaError == "" || len(rep.Services) != 1 || !rep.Services[0].Ready {
		t.Errorf("report = %+v", rep)
	}
}

func TestKPIScrape(t *testing.T) {
	enrich := opsServer(t, "metrics_enrich.txt", true)
	correlate := opsServer(t, "metrics_correlate.txt", true)
	sink := opsServer(t, "metrics_sink.txt", true)
	chart := filepath.Join(t.TempDir(), "kpi.svg")
	ops := strings.Join([]string{enrich.URL, correlate.URL, sink.URL, "http://127.0.0.1:1"}, ",")
	out, _, err := runCmd(t, nil, "--ops", ops, "--timeout", "2s", "kpi", "--json", "--chart", chart)
	if err != nil {
		t.Fatal(err)
	}
	var rep kpiReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"triage p50", *rep.TriageP50, 2},
		{"triage p95", *rep.TriageP95, 3.8},
		{"triaged", rep.Triaged, 100},
		{"verdicts", rep.VerdictsTotal, 100},
		{"exposure changed", rep.ExposureChanged, 25},
		{"exposure share", *rep.ExposureShare, 0.25},
		{"age p50", *rep.AgeP50, 60},
		{"age p95", *rep.AgeP95, 45000},
		{"age mean", *rep.AgeMean, 2000},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(rep.Verdicts) != 3 || rep.Verdicts[0].Name != "block" || rep.Verdicts[2].Name != "suppress" {
		t.Errorf("verdicts = %+v", rep.Verdicts)
	}
	if len(rep.CoverageGaps) != 3 || rep.CoverageGaps[0] != (gapRow{"shodan", "BR", 7}) {
		t.Errorf("gaps = %+v", rep.CoverageGaps)
	}
	last := rep.DLQ[len(rep.DLQ)-1]
	if last.Stage != "all" || last.In != 1600 || last.DeadLettered != 15 || math.Abs(*last.Rate-15.0/1600) > 1e-12 {
		t.Errorf("dlq all = %+v", last)
	}
	if rep.Source != "scrape" || !strings.Contains(rep.Note, "point-in-time") || len(rep.Errors) != 1 {
		t.Errorf("source %q note %q errors %v", rep.Source, rep.Note, rep.Errors)
	}

	svg, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	if n := strings.Count(string(svg), "<rect "); n != 1+3+3 {
		t.Errorf("chart has %d rects, want background + 3 verdict + 3 gap bars", n)
	}
	if !strings.Contains(string(svg), "greynoise / &lt;CN&amp;&gt;") {
		t.Error("chart labels are not escaped")
	}

	out, _, err = runCmd(t, nil, "--ops", ops, "--timeout", "2s", "kpi")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"point-in-time", "triage latency p95         3.8s", "verdicts exposure changed  25 (25.00%)",
		"block     10        10.00%", "shodan        BR       7", "all        1600  15             0.94%", "unreachable:"} {
		if !strings.Contains(out, want) {
			t.Errorf("kpi table lacks %q:\n%s", want, out)
		}
	}
}

func TestKPIPrometheus(t *testing.T) {
	var queries []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query().Get("query")
		queries = append(queries, q)
		res := `[]`
		switch {
		case strings.HasPrefix(q, "histogram_quantile(0.95") && strings.Contains(q, metricTriage):
			res = `[{"metric":{},"value":[1,"3.5"]}]`
		case strings.HasPrefix(q, "histogram_quantile(0.5") && strings.Contains(q, metricTriage):
			res = `[{"metric":{},"value":[1,"NaN"]}]`
		case strings.Contains(q, metricVerdicts):
			res = `[{"metric":{"action":"review"},"value":[1,"4"]},{"metric":{"action":"block"},"value":[1,"6"]}]`
		case strings.Contains(q, metricExposureChanged):
			res = `[{"metric":{},"value":[1,"5"]}]`
		case strings.Contains(q, metricRecordsIn):
			res = `[{"metric":{"stage":"ingest"},"value":[1,"200"]}]`
		case strings.Contains(q, metricDeadLettered):
			res = `[{"metric":{"stage":"ingest"},"value":[1,"2"]}]`
		}
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":`+res+`}}`)
	}))
	defer prom.Close()
	out, _, err := runCmd(t, nil, "kpi", "--prometheus", prom.URL, "--range", "6h", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep kpiReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != "prometheus" || rep.Range != "6h0m0s" || rep.TriageP50 != nil || *rep.TriageP95 != 3.5 {
		t.Errorf("report = %+v", rep)
	}
	if rep.VerdictsTotal != 10 || rep.Verdicts[0].Name != "block" || *rep.ExposureShare != 0.5 {
		t.Errorf("verdicts = %+v share %v", rep.Verdicts, rep.ExposureShare)
	}
	if d := rep.DLQ[0]; d.Stage != "ingest" || *d.Rate != 0.01 {
		t.Errorf("dlq = %+v", rep.DLQ)
	}
	if len(queries) != len(kpiQueries) || !strings.Contains(strings.Join(queries, "\n"), "[21600s]") {
		t.Errorf("queries = %v", queries)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"status":"error","error":"parse error"}`)
	}))
	defer bad.Close()
	if _, _, err := runCmd(t, nil, "kpi", "--prometheus", bad.URL); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("error response: err = %v", err)
	}
}
