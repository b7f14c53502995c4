//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/e2e/threatq.golden.json from this run (review the diff)")

// e2eRedisDB is the Redis database the end-to-end test owns: it is flushed at the start because
// the services' Redis keys have fixed prefixes (enrichment cache, correlation state, the sink's
// last-written fingerprints would otherwise make a second run skip its ThreatQ writes).
const e2eRedisDB = 13

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestEndToEnd builds every binary, runs vigil-run against the real broker and Redis with both
// emulators on unique topics and groups, and checks what reached ThreatQ and that one trace
// follows a record through all four services.
func TestEndToEnd(t *testing.T) {
	brokers := envOr("VIGIL_TEST_KAFKA_BROKERS", "127.0.0.1:39092")
	redisAddr := envOr("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379")
	for _, a := range []string{strings.Split(brokers, ",")[0], redisAddr} {
		c, err := net.DialTimeout("tcp", a, 3*time.Second)
		if err != nil {
			t.Fatalf("%s unreachable (start it with `make up`): %v", a, err)
		}
		_ = c.Close()
	}
	flushRedisDB(t, redisAddr, e2eRedisDB)

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/",
		"./services/ingest/cmd/ingest", "./services/enrich/cmd/enrich", "./services/correlate/cmd/correlate",
		"./services/sink/cmd/sink", "./services/enrich/cmd/provider-emulator", "./services/sink/cmd/threatq-emulator",
		"./cmd/vigil-run")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	runDir, traceDir := filepath.Join(tmp, "run"), filepath.Join(tmp, "traces")
	suffix := fmt.Sprintf(".e2e-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "vigil-run"),
		"-bin", bin, "-run-dir", runDir, "-input", filepath.Join(root, "testdata/e2e/input"),
		"-kafka", brokers, "-redis", redisAddr, "-redis-db", fmt.Sprint(e2eRedisDB),
		"-topic-suffix", suffix, "-trace-dir", traceDir,
		"-ops-port", fmt.Sprint(freePortRun(t, 4)), "-provider-addr", freeAddr(t), "-threatq-addr", freeAddr(t),
		"-drain-timeout", "60s", "-ready-timeout", "30s", "-progress=false")
	cmd.Dir = root
	// every service also exports its spans over OTLP/HTTP to a collector of the test's own
	col := newOTLPCollector(t)
	const otlpSecret = "e2e-otlp-s3cret"
	cmd.Env = append(os.Environ(), "VIGIL_OTLP_ENDPOINT="+col.url, "VIGIL_OTLP_HEADERS=Authorization=Bearer "+otlpSecret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	t.Logf("vigil-run output:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("vigil-run: %v\nstderr:\n%s", err, stderr.String())
	}

	var sum Summary
	readJSON(t, filepath.Join(runDir, "summary.json"), &sum)
	if !sum.OK || sum.RecordsReplayed != 53 || sum.DeadLetters != 1 || sum.VerdictsByAction["block"] == 0 {
		t.Errorf("summary: ok=%t replayed=%d dead letters=%d verdicts=%v, want ok, 53, 1 and some block verdicts",
			sum.OK, sum.RecordsReplayed, sum.DeadLetters, sum.VerdictsByAction)
	}

	var dump tqDump
	readJSON(t, filepath.Join(runDir, "threatq-dump.json"), &dump)
	got, err := json.MarshalIndent(normalizeDump(dump), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join(root, "testdata/e2e/threatq.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ThreatQ state differs from %s (rerun with -update and review the diff):\n%s", golden, lineDiff(string(want), string(got)))
	}

	fileTraces := commonTrace(t, "span files", traceIDsFromFiles(t, traceDir))
	otlpTraces := commonTrace(t, "OTLP exports", col.traceIDs(t, "Bearer "+otlpSecret))
	shared := 0
	for id := range otlpTraces {
		if fileTraces[id] {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("the traces exported over OTLP are not those in the span files")
	}
	if err := filepath.WalkDir(runDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(otlpSecret)) {
			t.Errorf("%s contains the OTLP header secret", path)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// otlpCollector receives OTLP/HTTP JSON trace exports and keeps, per service (resource
// service.name), the trace ids it saw, and the Authorization headers.
type otlpCollector struct {
	url   string
	mu    sync.Mutex
	ids   map[string]map[string]bool
	auths map[string]bool
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	c := &otlpCollector{ids: map[string]map[string]bool{}, auths: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []struct {
						Key   string `json:"key"`
						Value struct {
							StringValue string `json:"stringValue"`
						} `json:"value"`
					} `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []struct {
						TraceID string `json:"traceId"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if r.URL.Path != "/v1/traces" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "want OTLP/JSON on /v1/traces", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.auths[r.Header.Get("Authorization")] = true
		for _, rs := range req.ResourceSpans {
			svc := ""
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					svc = strings.TrimPrefix(kv.Value.StringValue, "vigil-")
				}
			}
			if c.ids[svc] == nil {
				c.ids[svc] = map[string]bool{}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					c.ids[svc][sp.TraceID] = true
				}
			}
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// traceIDs returns what the collector received, after checking every export carried auth.
func (c *otlpCollector) traceIDs(t *testing.T, auth string) map[string]map[string]bool {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.auths) != 1 || !c.auths[auth] {
		t.Errorf("OTLP exports carried Authorization headers other than the configured one (%d distinct)", len(c.auths))
	}
	return c.ids
}

// traceIDsFromFiles reads the trace ids of every service's span file.
func traceIDsFromFiles(t *testing.T, dir string) map[string]map[string]bool {
	t.Helper()
	ids := map[string]map[string]bool{}
	for _, svc := range []string{"ingest", "enrich", "correlate", "sink"} {
		ids[svc] = map[string]bool{}
		f, err := os.Open(filepath.Join(dir, svc+".spans.jsonl"))
		if err != nil {
			t.Errorf("%s wrote no spans: %v", svc, err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				TraceID string `json:"trace_id"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.TraceID != "" {
				ids[svc][line.TraceID] = true
			}
		}
		_ = f.Close()
	}
	return ids
}

// commonTrace asserts that one trace id has spans in all four services (ids: service → trace
// ids) and returns the ids that do.
func commonTrace(t *testing.T, what string, ids map[string]map[string]bool) map[string]bool {
	t.Helper()
	// Walk downstream from ingest: the first service that shares no trace with the ones before
	// it is where propagation breaks.
	common := ids["ingest"]
	for _, svc := range []string{"enrich", "correlate", "sink"} {
		next := map[string]bool{}
		for id := range common {
			if ids[svc][id] {
				next[id] = true
			}
		}
		if len(next) == 0 {
			t.Fatalf("%s: no trace continues into %s: %d traces reached it from upstream, %d traces of its own (trace context not propagated)",
				what, svc, len(common), len(ids[svc]))
		}
		common = next
	}
	t.Logf("%s: %d traces span ingest → enrich → correlate → sink", what, len(common))
	return common
}

// volatile matches time-dependent text: ages and decay factors computed against the clock.
var volatile = regexp.MustCompile(`age [0-9hms.µ]+|decay=[0-9.]+`)

type goldenIndicator struct {
	Value       string   `json:"value"`
	Type        string   `json:"type"`
	Status      string   `json:"status"`
	Score       int      `json:"score"`
	ManualScore *int     `json:"manual_score,omitempty"`
	Description string   `json:"description"`
	Attributes  []string `json:"attributes"`
	Sources     []string `json:"sources"`
	Tags        []string `json:"tags"`
}

// normalizeDump keeps what Vigil decided (values, types, statuses, scores, attributes, sources,
// tags) and drops ids, timestamps and clock-dependent text, in a stable order.
func normalizeDump(d tqDump) []goldenIndicator {
	out := make([]goldenIndicator, 0, len(d.Indicators))
	for _, in := range d.Indicators {
		g := goldenIndicator{Value: in.Value, Type: in.Type, Status: in.Status, Score: in.Score, ManualScore: in.ManualScore,
			Description: volatile.ReplaceAllString(in.Description, "<clock>"), Attributes: []string{}, Sources: []string{}, Tags: in.Tags}
		for _, a := range in.Attributes {
			g.Attributes = append(g.Attributes, a.Name+"="+volatile.ReplaceAllString(a.Value, "<clock>"))
		}
		for _, s := range in.Sources {
			g.Sources = append(g.Sources, s.Name+"/"+s.TLP)
		}
		sort.Strings(g.Attributes)
		sort.Strings(g.Sources)
		sort.Strings(g.Tags)
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// lineDiff lists the lines only in want (-) or only in got (+), at most 40.
func lineDiff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if g[l] < w[l] {
			out = append(out, "- "+l)
			w[l]--
		}
	}
	w = count(want)
	for _, l := range strings.Split(got, "\n") {
		if w[l] < g[l] {
			out = append(out, "+ "+l)
			g[l]--
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("… %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// flushRedisDB empties one Redis database with plain RESP (no client library needed).
func flushRedisDB(t *testing.T, addr string, db int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("redis %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "SELECT %d\r\nFLUSHDB\r\n", db)
	r := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("redis flush db %d: %q %v", db, line, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePortRun finds n consecutive free loopback ports and returns the first.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for base := 30000 + int(time.Now().UnixNano()%20000); base < 65000; base += n + 1 {
		ok := true
		for i := 0; i < n && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				continue
			}
			_ = ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port run")
	return 0
}
