package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// harness owns what every run shares: binaries, logs, the Kafka admin client.
type harness struct {
	o      options
	log    *slog.Logger
	logDir string
	kopts  []kgo.Opt
	cl     *kgo.Client
	adm    *kadm.Client
	serde  *events.Serde
	hc     *http.Client
}

func newHarness(o options, log *slog.Logger) (*harness, error) {
	serde, err := events.NewSerde()
	if err != nil {
		return nil, fmt.Errorf("serde: %w", err)
	}
	h := &harness{o: o, log: log, logDir: o.LogDir, serde: serde, hc: &http.Client{Timeout: 30 * time.Second},
		kopts: []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID("vigil-chaos")}}
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	h.cl, err = kgo.NewClient(h.kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	h.adm = kadm.NewClient(h.cl)
	return h, nil
}

func (h *harness) Close() { h.cl.Close() }

// build compiles the service and emulator binaries into o.BinDir unless -bin was given.
func (h *harness) build(ctx context.Context) error {
	if h.o.SkipBuild {
		return nil
	}
	h.log.Info("building binaries", "dir", h.o.BinDir)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", h.o.BinDir+"/", "./services/ingest/cmd/ingest", "./services/enrich/cmd/enrich",
		"./services/correlate/cmd/correlate", "./services/sink/cmd/sink", "./services/enrich/cmd/provider-emulator",
		"./services/sink/cmd/threatq-emulator")
	cmd.Dir = h.o.RepoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// script runs one of the repository's infrastructure scripts (kafka.sh, redis.sh).
func (h *harness) script(ctx context.Context, rel string, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(h.o.RepoRoot, rel)}, args...)...)
	cmd.Dir = h.o.RepoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", rel, strings.Join(args, " "), err, tailString(out, 600))
	}
	return nil
}

func tailString(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// pipeline is one isolated Vigil deployment: its own topics, groups, Redis database and
// emulators, with any number of replicas per service.
type pipeline struct {
	h        *harness
	name     string
	t        topicSet
	redisDB  int
	protocol string
	prov, tq *proc

	mu      sync.Mutex
	reps    map[string][]*proc
	seq     int
	exits   map[string]int // exits nobody asked for (restarted)
	kills   map[string]int
	stopped map[*proc]bool // exits the harness caused
}

// startPipeline creates the topics, flushes the Redis database, starts both emulators and one
// replica of every service, and waits until every group is stable.
func (h *harness) startPipeline(ctx context.Context, name, suffix string, redisDB int, protocol string) (*pipeline, error) {
	p := &pipeline{h: h, name: name, t: newTopicSet(suffix), redisDB: redisDB, protocol: protocol,
		reps: map[string][]*proc{}, exits: map[string]int{}, kills: map[string]int{}, stopped: map[*proc]bool{}}
	if out, err := exec.CommandContext(ctx, "redis-cli", "-h", h.o.RedisHost(), "-p", h.o.RedisPort(), "-n", strconv.Itoa(redisDB), "flushdb").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("flush redis db %d: %w: %s", redisDB, err, out)
	}
	if err := stream.EnsureTopics(ctx, h.cl, 12, 1, p.t.all()...); err != nil {
		return nil, err
	}
	var err error
	if p.prov, err = p.startEmulator(ctx, "provider-emulator", "-key", "dev-key"); err != nil {
		return nil, err
	}
	if p.tq, err = p.startEmulator(ctx, "threatq-emulator", "-seed", "1"); err != nil {
		p.stop()
		return nil, err
	}
	for _, svc := range services {
		if _, err := p.addReplica(svc); err != nil {
			p.stop()
			return nil, err
		}
	}
	for _, svc := range services {
		if err := p.waitStable(ctx, svc, 90*time.Second); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

func (p *pipeline) startEmulator(ctx context.Context, bin string, args ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	e, err := startProc(p.h.logDir, procSpec{Name: p.name + "-" + bin, Path: filepath.Join(p.h.o.BinDir, bin),
		Args: append([]string{"-addr", addr}, args...), Env: baseEnv(), Ops: addr})
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, e, "/_emulator/stats", 30*time.Second); err != nil {
		e.Kill()
		return nil, err
	}
	return e, nil
}

// baseEnv is what every child inherits: no VIGIL_* variable of the caller.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIGIL_") {
			env = append(env, kv)
		}
	}
	return env
}

// env is the environment of one service replica.
func (p *pipeline) env(svc, ops string) []string {
	t := p.t
	env := append(baseEnv(),
		"VIGIL_KAFKA_BROKERS="+strings.Join(p.h.o.Brokers, ","),
		"VIGIL_KAFKA_PARTITIONS=12",
		"VIGIL_KAFKA_GROUP_PROTOCOL="+p.protocol,
		"VIGIL_REDIS_ADDR="+p.h.o.Redis,
		"VIGIL_REDIS_DB="+strconv.Itoa(p.redisDB),
		"VIGIL_GROUP="+t.group(svc),
		"VIGIL_OPS_ADDR="+ops,
		"VIGIL_LOG_LEVEL=warn",
		"VIGIL_SHUTDOWN_TIMEOUT=10s",
		"VIGIL_TOPIC_OBSERVED="+t.Observed,
		"VIGIL_TOPIC_ENRICHED="+t.Enriched,
		"VIGIL_TOPIC_VERDICTS="+t.Verdicts,
		"VIGIL_TOPIC_FEEDBACK="+t.Feedback,
		"VIGIL_TOPIC_DLQ="+t.DLQ,
	)
	if p.h.o.MaxBatch > 0 {
		env = append(env, "VIGIL_MAX_BATCH="+strconv.Itoa(p.h.o.MaxBatch))
	}
	switch svc {
	case "ingest":
		env = append(env, "VIGIL_INGEST_TOPICS="+t.Raw, "VIGIL_INGEST_FORMATS="+t.Raw+"=suricata_eve")
	case "enrich":
		for _, pr := range []string{"CRIMINALIP", "INTERNETDB", "ABUSEIPDB", "GREYNOISE"} {
			pre := "VIGIL_ENRICH_" + pr + "_"
			env = append(env, pre+"ENABLED=true", pre+"BASE_URL=http://"+p.prov.Ops, pre+"API_KEY=dev-key",
				pre+"RATE=0", pre+"QUOTAS=none", pre+"MAX_CONCURRENT=8")
		}
	case "sink":
		env = append(env, "VIGIL_THREATQ_URL=http://"+p.tq.Ops, "VIGIL_THREATQ_ALLOW_INSECURE_HTTP=true",
			"VIGIL_THREATQ_CLIENT_ID=vigil-dev", "VIGIL_THREATQ_EMAIL=analyst@vigil.local", "VIGIL_THREATQ_PASSWORD=vigil-dev",
			"VIGIL_SINK_FLUSH_INTERVAL=500ms")
	}
	return env
}

// addReplica starts one more replica of svc on a free ops port.
func (p *pipeline) addReplica(svc string) (*proc, error) {
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.seq++
	name := fmt.Sprintf("%s-%s-%02d", p.name, svc, p.seq)
	p.mu.Unlock()
	r, err := startProc(p.h.logDir, procSpec{Name: name, Path: filepath.Join(p.h.o.BinDir, svc), Env: p.env(svc, ops), Ops: ops})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.reps[svc] = append(p.reps[svc], r)
	p.mu.Unlock()
	return r, nil
}

// replicas returns the running replica count of svc.
func (p *pipeline) replicas(svc string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reps[svc])
}

// kill sends SIGKILL to the oldest replica of svc and starts a new one in its place.
func (p *pipeline) kill(svc string) error {
	p.mu.Lock()
	if len(p.reps[svc]) == 0 {
		p.mu.Unlock()
		return fmt.Errorf("no replica of %s to kill", svc)
	}
	r := p.reps[svc][0]
	p.reps[svc] = p.reps[svc][1:]
	p.stopped[r] = true
	p.kills[svc]++
	p.mu.Unlock()
	r.Kill()
	_, err := p.addReplica(svc)
	return err
}

// remove stops the newest replica of svc gracefully (scale-in).
func (p *pipeline) remove(svc string) error {
	p.mu.Lock()
	n := len(p.reps[svc])
	if n == 0 {
		p.mu.Unlock()
		return fmt.Errorf("no replica of %s to remove", svc)
	}
	r := p.reps[svc][n-1]
	p.reps[svc] = p.reps[svc][:n-1]
	p.stopped[r] = true
	p.mu.Unlock()
	if !r.Stop(20 * time.Second) {
		p.h.log.Warn("replica killed after stop timeout", "name", r.Name)
	}
	return nil
}

// reviveExited restarts replicas that exited on their own (a crash while Kafka or Redis was
// away, say) and counts them.
func (p *pipeline) reviveExited() {
	p.mu.Lock()
	var dead []string
	for svc, rs := range p.reps {
		kept := rs[:0]
		for _, r := range rs {
			if r.Exited() && !p.stopped[r] {
				dead = append(dead, svc)
				p.exits[svc]++
				p.h.log.Warn("replica exited on its own; restarting", "name", r.Name, "err", r.err, "log", r.LogPath)
				continue
			}
			kept = append(kept, r)
		}
		p.reps[svc] = kept
	}
	p.mu.Unlock()
	for _, svc := range dead {
		if _, err := p.addReplica(svc); err != nil {
			p.h.log.Error("restart replica", "service", svc, "err", err)
		}
	}
}

// stop ends every replica, then the emulators.
func (p *pipeline) stop() {
	p.mu.Lock()
	var all []*proc
	for _, svc := range services {
		all = append(all, p.reps[svc]...)
		for _, r := range p.reps[svc] {
			p.stopped[r] = true
		}
		p.reps[svc] = nil
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range all {
		wg.Add(1)
		go func() { defer wg.Done(); r.Stop(15 * time.Second) }()
	}
	wg.Wait()
	for _, e := range []*proc{p.prov, p.tq} {
		if e != nil {
			e.Stop(5 * time.Second)
		}
	}
}

// waitStable waits until svc's group has members holding partitions.
func (p *pipeline) waitStable(ctx context.Context, svc string, timeout time.Duration) error {
	group := p.t.group(svc)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, r := range p.reps[svc] {
			if r.Exited() && !p.stopped[r] {
				p.mu.Unlock()
				return fmt.Errorf("%s exited (%v) while starting; see %s", r.Name, r.err, r.LogPath)
			}
		}
		p.mu.Unlock()
		last = groupStable(ctx, p.h.adm, group)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s %w after %s: %v", svc, ErrNotReady, timeout, last)
}

// groupStable reports whether a group is stable with partitions assigned.
func groupStable(ctx context.Context, adm *kadm.Client, group string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dg, err := adm.DescribeGroups(cctx, group)
	if err != nil {
		// KIP-848 groups are not visible to the classic DescribeGroups; fall back to
		// ConsumerGroupDescribe through the lag helper.
		return fmt.Errorf("describe %s: %w", group, err)
	}
	g, ok := dg[group]
	if !ok || g.Err != nil {
		return consumerGroupStable(cctx, adm, group)
	}
	if g.State != "Stable" || len(g.Members) == 0 {
		return consumerGroupStable(cctx, adm, group)
	}
	return nil
}

// consumerGroupStable checks a KIP-848 group through DescribeConsumerGroups.
func consumerGroupStable(ctx context.Context, adm *kadm.Client, group string) error {
	dg, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe consumer group %s: %w", group, err)
	}
	g, ok := dg[group]
	if !ok || g.Err != nil {
		return fmt.Errorf("group %s not found", group)
	}
	if g.State != "Stable" || len(g.Members) == 0 {
		return fmt.Errorf("group %s is %s with %d members", group, g.State, len(g.Members))
	}
	return nil
}

// positions reads every service group's position.
func (p *pipeline) positions(ctx context.Context) (map[string]groupPosition, error) {
	out := map[string]groupPosition{}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, svc := range services {
		gp, err := position(cctx, p.h.adm, p.t.group(svc), p.t.inputs(svc))
		if err != nil {
			return nil, err
		}
		out[svc] = gp
	}
	return out, nil
}

// tqStats is the ThreatQ emulator's /_emulator/stats.
type tqStats struct {
	Created        int `json:"created"`
	Updated        int `json:"updated"`
	Writes         int `json:"writes"`
	FaultsInjected int `json:"faults_injected"`
	Indicators     int `json:"indicators"`
}

func (p *pipeline) threatQStats(ctx context.Context) (tqStats, error) {
	var s tqStats
	err := p.h.getJSON(ctx, "http://"+p.tq.Ops+"/_emulator/stats", &s)
	return s, err
}

// threatQDown makes every ThreatQ API call fail with 503 (down=true) or clears the faults.
func (p *pipeline) threatQDown(ctx context.Context, down bool) error {
	method, body := http.MethodDelete, []byte(nil)
	if down {
		method, body = http.MethodPost, []byte(`{"down":true,"down_mode":"503"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.tq.Ops+"/_emulator/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.h.hc.Do(req)
	if err != nil {
		return fmt.Errorf("threatq faults: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("threatq faults: status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// tqDump is the part of /_emulator/dump the checks read.
type tqDump struct {
	Indicators []struct {
		Value      string `json:"value"`
		Status     string `json:"status"`
		Score      int    `json:"score"`
		Attributes []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"attributes"`
	} `json:"indicators"`
}

// threatQState reads the emulator's indicators by value.
func (p *pipeline) threatQState(ctx context.Context) (map[string]tqLite, error) {
	var d tqDump
	if err := p.h.getJSON(ctx, "http://"+p.tq.Ops+"/_emulator/dump", &d); err != nil {
		return nil, err
	}
	out := make(map[string]tqLite, len(d.Indicators))
	for _, in := range d.Indicators {
		l := tqLite{Status: in.Status, Score: in.Score}
		for _, a := range in.Attributes {
			if a.Name == "Vigil Level" { // written by the sink from the verdict's level
				l.Level = a.Value
			}
		}
		out[in.Value] = l
	}
	return out, nil
}

// providerStats is the provider emulator's /_emulator/stats.
type providerStats struct {
	Routes map[string]struct {
		Calls       int64            `json:"calls"`
		ByIndicator map[string]int64 `json:"by_indicator"`
	} `json:"routes"`
}

func (h *harness) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// producer streams a plan onto the raw topic at a steady rate and remembers where each record
// landed.
type producer struct {
	cl    *kgo.Client
	mu    sync.Mutex
	pos   map[rawPos]int
	acked atomic.Int64
	sent  atomic.Int64
	err   atomic.Pointer[error]
}

func (h *harness) newProducer() (*producer, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), h.kopts...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(20000))...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &producer{cl: cl, pos: map[rawPos]int{}}, nil
}

// stream produces records [0, n) of pl onto topic at rate per second (0: as fast as possible)
// and waits for every acknowledgement.
func (pr *producer) stream(ctx context.Context, topic string, pl plan, rate float64) error {
	start := time.Now()
	n := len(pl.Class)
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		i := i
		pr.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: pl.render(i, time.Now())}, func(r *kgo.Record, err error) {
			if err != nil {
				pr.err.CompareAndSwap(nil, &err)
				return
			}
			pr.mu.Lock()
			pr.pos[rawPos{r.Partition, r.Offset}] = i
			pr.mu.Unlock()
			pr.acked.Add(1)
		})
		pr.sent.Add(1)
	}
	if err := pr.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if e := pr.err.Load(); e != nil {
		return fmt.Errorf("produce: %w", *e)
	}
	return nil
}

// positions returns a copy of the acknowledged positions.
func (pr *producer) positions() map[rawPos]int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := make(map[rawPos]int, len(pr.pos))
	for k, v := range pr.pos {
		out[k] = v
	}
	return out
}

// ErrNotDrained means the pipeline still had work after the drain timeout.
var ErrNotDrained = errors.New("not drained")

// drained reports whether every group has committed all of its inputs, the raw topic holds
// want records and ThreatQ saw no write since the previous call.
func drained(pos map[string]groupPosition, rawWant int64) bool {
	if pos["ingest"].End < rawWant {
		return false
	}
	for _, gp := range pos {
		if gp.Lag() != 0 {
			return false
		}
	}
	return true
}
