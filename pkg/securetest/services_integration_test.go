//go:build integration

package securetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// binaries are the packages TestServicesOverSASLSSL builds, relative to the repository root.
var binaries = []string{
	"./services/ingest/cmd/ingest",
	"./services/enrich/cmd/enrich",
	"./services/correlate/cmd/correlate",
	"./services/sink/cmd/sink",
	"./services/enrich/cmd/provider-emulator",
	"./services/sink/cmd/threatq-emulator",
}

// repoRoot is the workspace root (the directory holding go.work) above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
	}
	t.Fatalf("no go.work above %s", dir)
	return ""
}

// buildBinaries builds the packages into a temporary directory and returns it.
func buildBinaries(t *testing.T, pkgs ...string) string {
	t.Helper()
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	return bin
}

// proc is a child process whose stdout and stderr go to files.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string
	exited         chan struct{}
	err            error // set when exited is closed
}

func startProc(t *testing.T, logDir, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: filepath.Join(logDir, name+".stdout"), stderr: filepath.Join(logDir, name+".stderr"),
		exited: make(chan struct{})}
	outF, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = outF, errF
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = outF.Close()
		_ = errF.Close()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM, waits up to 30 s, then kills; it returns the exit error.
func (p *proc) stop() error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 30s after SIGTERM: %w", p.name, p.err)
	}
	return p.err
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logs returns stdout followed by stderr.
func (p *proc) logs(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{p.stdout, p.stderr} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		b.Write(data)
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitHTTP polls url until it answers 200 (bounded), failing early when p exits.
func waitHTTP(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := hc.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if !p.running() {
			t.Fatalf("%s exited (%v) before %s answered 200; last: %s\n%s", p.name, p.err, url, last, tail(p.logs(t), 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not 200 after %s; last: %s\n%s", p.name, url, timeout, last, tail(p.logs(t), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return string(body)
}

// topics are one test's topic names.
type topics struct {
	raw, observed, enriched, verdicts, feedback, dlq string
}

// suricataAlert is a Suricata EVE alert from an internal host to dst at ts.
func suricataAlert(ts time.Time, src, dst string, sid int) []byte {
	return fmt.Appendf(nil, `{"timestamp":%q,"flow_id":%d,"event_type":"alert","src_ip":%q,"src_port":51514,`+
		`"dest_ip":%q,"dest_port":443,"proto":"TCP","alert":{"action":"blocked","gid":1,"signature_id":%d,"rev":1,`+
		`"signature":"ET MALWARE securetest beacon","category":"A Network Trojan was detected","severity":1}}`,
		ts.UTC().Format("2006-01-02T15:04:05.000000-0700"), 1000+sid, src, dst, sid)
}

// Every service binary starts against the SASL_SSL broker (SCRAM-SHA-512, private CA) and a
// Redis with AUTH over TLS, becomes ready, and passes records down the pipeline; then no log
// line, ops page or record on any topic contains any configured secret.
func TestServicesOverSASLSSL(t *testing.T) {
	t.Parallel()
	se := loadSecureEnv(t)
	bin := buildBinaries(t, binaries...)
	logDir := t.TempDir()

	// Distinctive secrets. The provider emulator accepts one key: Criminal IP gets it, AbuseIPDB
	// and GreyNoise get keys it refuses, so their 401 error paths are exercised as well.
	var (
		redisPassword  = secret("redis-password")
		providerKey    = secret("criminalip-key")
		abuseIPDBKey   = secret("abuseipdb-key")
		greyNoiseKey   = secret("greynoise-key")
		tqPassword     = secret("threatq-password")
		tqClientSecret = secret("threatq-client-secret")
	)
	secrets := map[string]string{
		"kafka password":        se.password,
		"redis password":        redisPassword,
		"criminalip api key":    providerKey,
		"abuseipdb api key":     abuseIPDBKey,
		"greynoise api key":     greyNoiseKey,
		"threatq password":      tqPassword,
		"threatq client secret": tqClientSecret,
	}
	rs := startRedis(t, redisPassword, newTestCA(t))

	provAddr, tqAddr := freeAddr(t), freeAddr(t)
	home, _ := os.UserHomeDir()
	baseEnv := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	prov := startProc(t, logDir, "provider-emulator", filepath.Join(bin, "provider-emulator"),
		[]string{"-addr", provAddr, "-key", providerKey}, baseEnv)
	tq := startProc(t, logDir, "threatq-emulator", filepath.Join(bin, "threatq-emulator"),
		[]string{"-addr", tqAddr, "-client-id", "vigil-securetest", "-client-secret", tqClientSecret,
			"-email", "securetest@vigil.local", "-password", tqPassword}, baseEnv)
	waitHTTP(t, prov, "http://"+provAddr+"/_emulator/stats", 20*time.Second)
	waitHTTP(t, tq, "http://"+tqAddr+"/_emulator/stats", 20*time.Second)

	tp := topics{raw: uniq("raw.securetest"), observed: uniq("observed"), enriched: uniq("enriched"),
		verdicts: uniq("verdicts"), feedback: uniq("feedback"), dlq: uniq("dlq")}
	group := uniq("g")
	common := func(svc, ops string, passwordFromFile bool) []string {
		env := append([]string(nil), baseEnv...)
		set := func(k, v string) { env = append(env, k+"="+v) }
		for k, v := range se.vars {
			if k == "VIGIL_KAFKA_SASL_PASSWORD_FILE" && !passwordFromFile {
				set("VIGIL_KAFKA_SASL_PASSWORD", se.password)
				continue
			}
			set(k, v)
		}
		set("VIGIL_KAFKA_PARTITIONS", "3")
		set("VIGIL_GROUP", group+"-"+svc)
		set("VIGIL_OPS_ADDR", ops)
		set("VIGIL_LOG_LEVEL", "debug")
		set("VIGIL_SHUTDOWN_TIMEOUT", "10s")
		set("VIGIL_REDIS_ADDR", rs.addr)
		set("VIGIL_REDIS_PASSWORD", redisPassword)
		set("VIGIL_REDIS_TLS", "true")
		set("VIGIL_REDIS_TLS_CA_FILE", rs.caFile)
		set("VIGIL_TOPIC_OBSERVED", tp.observed)
		set("VIGIL_TOPIC_ENRICHED", tp.enriched)
		set("VIGIL_TOPIC_VERDICTS", tp.verdicts)
		set("VIGIL_TOPIC_FEEDBACK", tp.feedback)
		set("VIGIL_TOPIC_DLQ", tp.dlq)
		switch svc {
		case "ingest":
			set("VIGIL_INGEST_TOPICS", tp.raw)
		case "enrich":
			keys := map[string]string{"CRIMINALIP": providerKey, "ABUSEIPDB": abuseIPDBKey, "GREYNOISE": greyNoiseKey, "INTERNETDB": ""}
			for p, key := range keys {
				pre := "VIGIL_ENRICH_" + p + "_"
				set(pre+"ENABLED", "true")
				set(pre+"BASE_URL", "http://"+provAddr)
				if key != "" {
					set(pre+"API_KEY", key)
				}
				set(pre+"RATE", "0")
				set(pre+"QUOTAS", "none")
				set(pre+"MAX_CONCURRENT", "4")
				set(pre+"TIMEOUT", "5s")
			}
			set("VIGIL_ENRICH_RETRY_ATTEMPTS", "1")
			set("VIGIL_ENRICH_OFFLINE_ENABLED", "false")
		case "sink":
			set("VIGIL_THREATQ_URL", "http://"+tqAddr)
			set("VIGIL_THREATQ_CLIENT_ID", "vigil-securetest")
			set("VIGIL_THREATQ_EMAIL", "securetest@vigil.local")
			set("VIGIL_THREATQ_PASSWORD", tqPassword)
			set("VIGIL_THREATQ_CLIENT_SECRET", tqClientSecret)
			set("VIGIL_SINK_FLUSH_INTERVAL", "300ms")
			set("VIGIL_SINK_FEEDBACK_INTERVAL", "1s")
		}
		return env
	}

	// The Kafka password reaches ingest and enrich through VIGIL_KAFKA_SASL_PASSWORD_FILE,
	// correlate and sink through VIGIL_KAFKA_SASL_PASSWORD.
	svcs := []struct {
		name     string
		fromFile bool
	}{{"ingest", true}, {"enrich", true}, {"correlate", false}, {"sink", false}}
	procs := map[string]*proc{}
	ops := map[string]string{}
	for _, s := range svcs {
		ops[s.name] = freeAddr(t)
		procs[s.name] = startProc(t, logDir, s.name, filepath.Join(bin, s.name), nil, common(s.name, ops[s.name], s.fromFile))
	}
	// /healthz answers once a service has connected and created its topics. /readyz needs a
	// first fetch that returned data (stream.Runner.Ready), so it is checked after producing.
	for _, s := range svcs {
		waitHTTP(t, procs[s.name], "http://"+ops[s.name]+"/healthz", 60*time.Second)
	}

	// A few alerts to public addresses plus one record no parser accepts (for the DLQ).
	now := time.Now()
	raw := []*kgo.Record{
		{Topic: tp.raw, Value: suricataAlert(now, "10.1.2.3", "185.220.101.45", 1)},
		{Topic: tp.raw, Value: suricataAlert(now, "10.1.2.4", "45.155.205.99", 2)},
		{Topic: tp.raw, Value: suricataAlert(now, "10.1.2.5", "185.220.101.45", 3)},
		{Topic: tp.raw, Value: []byte("\x00\x01 not a log line at all \xff\xfe")},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := se.client(t).ProduceSync(ctx, raw...).FirstErr(); err != nil {
		t.Fatalf("produce raw records: %v", err)
	}

	// Wait until every stage produced something and the malformed record is dead-lettered.
	want := []string{tp.observed, tp.enriched, tp.verdicts, tp.dlq}
	counts := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts = map[string]int{}
		for _, r := range readAll(t, se, want...) {
			counts[r.Topic]++
		}
		done := true
		for _, topic := range want {
			done = done && counts[topic] > 0
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s records per topic: %v (want every one of %v non-empty)", counts, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("records per topic: %v", counts)
	for _, s := range svcs {
		waitHTTP(t, procs[s.name], "http://"+ops[s.name]+"/readyz", 30*time.Second)
	}

	// The sink wrote to ThreatQ (its input arrived over SASL_SSL).
	var stats struct {
		Writes int `json:"writes"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for stats.Writes == 0 && time.Now().Before(deadline) {
		if err := json.Unmarshal([]byte(getBody(t, "http://"+tqAddr+"/_emulator/stats")), &stats); err != nil {
			t.Fatalf("emulator stats: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if stats.Writes == 0 {
		t.Fatalf("the sink wrote nothing to the ThreatQ emulator\n%s", tail(procs["sink"].logs(t), 30))
	}

	// Everything a service exposes or emits is searched for every secret.
	var haystacks []haystack
	for _, s := range svcs {
		for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
			haystacks = append(haystacks, haystack{s.name + " " + path, getBody(t, "http://"+ops[s.name]+path)})
		}
	}
	for _, s := range svcs {
		if err := procs[s.name].stop(); err != nil {
			t.Errorf("%s exit: %v\n%s", s.name, err, tail(procs[s.name].logs(t), 20))
		}
		logs := procs[s.name].logs(t)
		if strings.Count(logs, "\n") < 2 {
			t.Errorf("%s logged %d lines; the secret search needs its logs", s.name, strings.Count(logs, "\n"))
		}
		haystacks = append(haystacks, haystack{s.name + " logs", logs})
	}
	all := readAll(t, se, tp.raw, tp.observed, tp.enriched, tp.verdicts, tp.feedback, tp.dlq)
	for _, r := range all {
		where := fmt.Sprintf("record %s/%d@%d", r.Topic, r.Partition, r.Offset)
		var b bytes.Buffer
		b.Write(r.Key)
		b.WriteByte('\n')
		b.Write(r.Value)
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "\n%s=%s", h.Key, h.Value)
		}
		haystacks = append(haystacks, haystack{where, b.String()})
	}
	checkPaths(t, all, tp)

	var leaks []string
	for _, h := range haystacks {
		for what, s := range secrets {
			if strings.Contains(h.text, s) {
				leaks = append(leaks, fmt.Sprintf("%s contains the %s", h.where, what))
			}
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("%d leaks:\n%s", len(leaks), strings.Join(leaks, "\n"))
	}
	t.Logf("searched %d haystacks (%d records, logs and ops pages of %d services) for %d secrets: none found",
		len(haystacks), len(all), len(svcs), len(secrets))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}

// haystack is one text searched for secrets.
type haystack struct {
	where string
	text  string
}

// checkPaths asserts that the paths whose output is searched for secrets really ran: the
// malformed record was dead-lettered by ingest, Criminal IP answered with the right key, and
// AbuseIPDB and GreyNoise refused their keys (an error result, whose message was searched).
func checkPaths(t *testing.T, recs []*kgo.Record, tp topics) {
	t.Helper()
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	var dead []events.DeadLetter
	status := map[string]map[string]int{} // provider -> status -> count
	for _, r := range recs {
		switch r.Topic {
		case tp.dlq:
			dl, err := serde.DecodeDeadLetter(t.Context(), r.Value)
			if err != nil {
				t.Fatalf("decode dead letter: %v", err)
			}
			dead = append(dead, dl)
		case tp.enriched:
			en, err := serde.DecodeEnrichment(t.Context(), r.Value)
			if err != nil {
				t.Fatalf("decode enrichment: %v", err)
			}
			for _, res := range en.Results {
				if status[res.Provider] == nil {
					status[res.Provider] = map[string]int{}
				}
				status[res.Provider][res.Status]++
			}
		}
	}
	if len(dead) != 1 || dead[0].Stage != "ingest" || dead[0].SourceTopic != tp.raw {
		t.Errorf("dead letters = %+v, want the one malformed raw record from ingest", dead)
	}
	if status["criminalip"][events.StatusOK]+status["criminalip"][events.StatusNotFound] == 0 {
		t.Errorf("criminalip results by status %v: want answers with the accepted key", status["criminalip"])
	}
	for _, p := range []string{"abuseipdb", "greynoise"} {
		if status[p][events.StatusError] == 0 {
			t.Errorf("%s results by status %v: want errors for the refused key", p, status[p])
		}
	}
}

// A service given a wrong Kafka password stops at start with the broker's authentication
// error, promptly, and without printing either password.
func TestServiceWrongKafkaPassword(t *testing.T) {
	t.Parallel()
	se := loadSecureEnv(t)
	bin := buildBinaries(t, "./services/ingest/cmd/ingest")
	wrong := secret("wrong-kafka-password")
	home, _ := os.UserHomeDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"VIGIL_KAFKA_SASL_PASSWORD=" + wrong, "VIGIL_OPS_ADDR=" + freeAddr(t), "VIGIL_LOG_LEVEL=debug",
		"VIGIL_INGEST_TOPICS=" + uniq("raw.securetest"), "VIGIL_TOPIC_OBSERVED=" + uniq("observed"),
		"VIGIL_TOPIC_DLQ=" + uniq("dlq"), "VIGIL_GROUP=" + uniq("g")}
	for k, v := range se.vars {
		if k != "VIGIL_KAFKA_SASL_PASSWORD_FILE" {
			env = append(env, k+"="+v)
		}
	}
	start := time.Now()
	p := startProc(t, t.TempDir(), "ingest", filepath.Join(bin, "ingest"), nil, env)
	const bound = 45 * time.Second
	select {
	case <-p.exited:
	case <-time.After(bound):
		t.Fatalf("ingest still running %s after start with a wrong password\n%s", bound, tail(p.logs(t), 20))
	}
	logs := p.logs(t)
	if p.err == nil {
		t.Fatalf("ingest exited 0 with a wrong password\n%s", tail(logs, 20))
	}
	if !strings.Contains(logs, "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("ingest's log does not name the authentication failure:\n%s", tail(logs, 20))
	}
	if strings.Contains(logs, wrong) || strings.Contains(logs, se.password) {
		t.Fatalf("ingest's log contains a password:\n%s", logs)
	}
	t.Logf("ingest stopped after %s: %s", time.Since(start).Round(time.Millisecond), tail(logs, 1))
}
