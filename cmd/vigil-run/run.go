package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// ErrChecksFailed means the run finished but an accounting check did not hold.
var ErrChecksFailed = errors.New("accounting checks failed")

// ErrInterrupted means Ctrl-C (or SIGTERM) stopped the run before it finished.
var ErrInterrupted = errors.New("interrupted")

// ErrNotReady means a process did not become ready in time.
var ErrNotReady = errors.New("not ready")

// ErrNotDrained means the replay did not drain in time.
var ErrNotDrained = errors.New("replay did not drain")

func run(parent context.Context, args, environ []string, lookup envconf.Lookup, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, environ, lookup, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logDir := filepath.Join(o.RunDir, "logs")
	if !o.KeepLogs {
		if err := os.RemoveAll(logDir); err != nil {
			return fmt.Errorf("clear logs: %w", err)
		}
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	if o.TraceDir != "" {
		if err := os.MkdirAll(o.TraceDir, 0o755); err != nil {
			return fmt.Errorf("create trace dir: %w", err)
		}
	}
	sup := newSupervisor(logDir, o.KeepLogs, o.StopTimeout, log)
	defer sup.StopAll()

	// First Ctrl-C: cancel and stop the children in order. Second: kill them at once.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	sigDone := make(chan struct{})
	var sigWG sync.WaitGroup
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		select {
		case <-sigs:
			log.Info("stopping (Ctrl-C again to kill at once)")
			cancel()
		case <-sigDone:
			return
		}
		select {
		case <-sigs:
			sup.KillAll()
		case <-sigDone:
		}
	}()
	defer sigWG.Wait()
	defer close(sigDone)

	r := &runner{o: o, log: log, sup: sup, n: newNames(o.TopicSuffix), stdout: stdout, stderr: stderr,
		hc: &http.Client{Timeout: 10 * time.Second}, started: time.Now()}
	err = r.run(ctx)
	if err != nil && ctx.Err() != nil && parent.Err() == nil {
		return ErrInterrupted
	}
	return err
}

type runner struct {
	o       options
	log     *slog.Logger
	sup     *supervisor
	n       names
	stdout  io.Writer
	stderr  io.Writer
	hc      *http.Client
	started time.Time
	kopts   []kgo.Opt
}

func (r *runner) bin(name string) (string, error) {
	p := filepath.Join(r.o.BinDir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found in %s (run `make build` first): %w", name, r.o.BinDir, err)
	}
	return p, nil
}

func (r *runner) run(ctx context.Context) error {
	// Read the input first: a bad sample tree should fail before anything starts.
	var srcs []source
	var err error
	if r.o.InputDir != "" {
		srcs, err = loadInput(r.o.InputDir, r.n.Topic, r.started)
	} else {
		srcs, err = loadSamples(r.o.SamplesDir, r.n.Topic, r.started)
	}
	if err != nil {
		return err
	}
	if r.o.InputDir == "" && r.o.ExtraDir != "" {
		if _, serr := os.Stat(r.o.ExtraDir); serr == nil {
			extra, err := loadInput(r.o.ExtraDir, r.n.Topic, r.started)
			if err != nil {
				return err
			}
			srcs = append(srcs, extra...)
		}
	}
	serde, err := events.NewSerde()
	if err != nil {
		return fmt.Errorf("serde: %w", err)
	}
	if err := r.kafkaOpts(); err != nil {
		return err
	}
	if err := checkFree(r.listenAddrs()...); err != nil {
		return err
	}
	if err := r.startInfra(ctx); err != nil {
		return err
	}
	if err := r.startServices(ctx); err != nil {
		return err
	}

	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), r.kopts...), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	all := append(append([]string(nil), r.n.Raw...), r.n.Observed, r.n.Enriched, r.n.Verdicts, r.n.Feedback, r.n.DLQ)
	if err := stream.EnsureTopics(ctx, cl, r.partitions(), r.replication(), all...); err != nil {
		return err
	}
	base, err := endOffsets(ctx, adm, all...)
	if err != nil {
		return err
	}

	sum := &Summary{Mode: r.mode(), ReplayByTopic: map[string]int64{}}
	var total int64
	for _, s := range srcs {
		sum.ReplayByTopic[s.Topic] += int64(len(s.Records))
		total += int64(len(s.Records))
	}
	r.log.Info("replaying", "records", total, "files", len(srcs), "topics", len(sum.ReplayByTopic))
	final, err := r.replayAndDrain(ctx, cl, adm, srcs, total, base, sum)
	if err != nil {
		return err
	}
	if err := r.summarize(ctx, adm, serde, base, final, sum); err != nil {
		return err
	}
	if r.o.Follow && ctx.Err() == nil {
		r.log.Info("following: the pipeline keeps running; Ctrl-C to stop")
		if err := r.sup.WatchExits(ctx); err != nil {
			return err
		}
		if !sum.OK {
			return ErrChecksFailed
		}
		return nil // Ctrl-C is how --follow ends
	}
	if !sum.OK {
		return ErrChecksFailed
	}
	return nil
}

func (r *runner) mode() string {
	switch {
	case r.o.Real:
		return "real: broker, Redis and ThreatQ from the environment"
	case r.o.Kafka != "":
		redis := "in-process state"
		if r.o.Redis != "" {
			redis = "Redis " + r.o.Redis
		}
		return "broker " + r.o.Kafka + ", " + redis + ", emulated providers and ThreatQ"
	default:
		return "dev: kfake broker, in-process state, emulated providers and ThreatQ"
	}
}

func (r *runner) kafkaOpts() error {
	if r.o.Real {
		e := envconf.New(func(k string) (string, bool) {
			for _, kv := range r.o.Environ {
				if len(kv) > len(k) && kv[:len(k)] == k && kv[len(k)] == '=' {
					return kv[len(k)+1:], true
				}
			}
			return "", false
		})
		kc := stream.LoadKafka(e, "run")
		if err := e.Err(); err != nil {
			return err
		}
		opts, err := kc.ClientOpts()
		if err != nil {
			return err
		}
		r.kopts = opts
		return nil
	}
	r.kopts = []kgo.Opt{kgo.SeedBrokers(r.o.brokers()...), kgo.ClientID("vigil-run")}
	return nil
}

// ErrAddrInUse means an address vigil-run must listen on is taken.
var ErrAddrInUse = errors.New("address in use")

// listenAddrs are the loopback addresses the children of this mode will listen on.
func (r *runner) listenAddrs() []string {
	var out []string
	if !r.o.Real {
		if r.o.Kafka == "" {
			out = append(out, r.o.DevKafkaAddr)
		}
		out = append(out, r.o.ProviderAddr, r.o.ThreatQAddr)
	}
	for i := range stages {
		out = append(out, r.o.opsAddr(i))
	}
	return out
}

// checkFree fails when an address is taken, before anything starts: a readiness probe would
// otherwise talk to whatever holds the port (another vigil-run, say) and report it ready.
func checkFree(addrs ...string) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s: %w (another vigil-run or make run still running? stop it, or move this run with -devkafka-addr, -provider-addr, -threatq-addr, -ops-port)", a, ErrAddrInUse)
		}
		_ = ln.Close()
	}
	return nil
}

func (r *runner) partitions() int { return 12 }

func (r *runner) replication() int { return 1 }

// startInfra starts the dev broker and the emulators this mode needs.
func (r *runner) startInfra(ctx context.Context) error {
	if r.o.Real {
		return r.waitKafka(ctx, nil)
	}
	if r.o.Kafka == "" {
		path, err := r.bin("devkafka")
		if err != nil {
			return err
		}
		p, err := r.sup.Start(procSpec{Name: "devkafka", Path: path, Args: []string{"-addr", r.o.DevKafkaAddr}, Env: r.o.Environ})
		if err != nil {
			return err
		}
		if err := r.waitKafka(ctx, p); err != nil {
			return err
		}
	} else if err := r.waitKafka(ctx, nil); err != nil {
		return err
	}
	emus := []struct{ name, addr string }{{"provider-emulator", r.o.ProviderAddr}, {"threatq-emulator", r.o.ThreatQAddr}}
	procs := make([]*proc, len(emus))
	for i, e := range emus {
		path, err := r.bin(e.name)
		if err != nil {
			return err
		}
		args := []string{"-addr", e.addr}
		if e.name == "threatq-emulator" {
			args = append(args, "-seed", "1")
		}
		if procs[i], err = r.sup.Start(procSpec{Name: e.name, Path: path, Args: args, Env: r.o.Environ}); err != nil {
			return err
		}
	}
	for i, e := range emus {
		url := "http://" + e.addr + "/_emulator/stats"
		if err := r.waitReady(ctx, e.name, procs[i], func(ctx context.Context) error { return r.httpOK(ctx, url) }); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) waitKafka(ctx context.Context, p *proc) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), r.kopts...), kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	name := "kafka " + fmt.Sprint(r.o.brokers())
	if p != nil {
		name = "devkafka"
	}
	return r.waitReady(ctx, name, p, func(ctx context.Context) error {
		md, err := adm.BrokerMetadata(ctx)
		if err == nil && len(md.Brokers) == 0 {
			err = errors.New("no brokers in metadata")
		}
		return err
	})
}

// startServices starts the four services and waits for each /readyz.
func (r *runner) startServices(ctx context.Context) error {
	procs := make([]*proc, len(stages))
	for i, st := range stages {
		path, err := r.bin(st.Name)
		if err != nil {
			return err
		}
		if procs[i], err = r.sup.Start(procSpec{Name: st.Name, Path: path, Env: r.o.serviceEnv(i, r.n)}); err != nil {
			return err
		}
	}
	cl, err := kgo.NewClient(r.kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for i, st := range stages {
		base := "http://" + r.o.opsAddr(i)
		group := r.n.Group(st.Name)
		if err := r.waitReady(ctx, st.Name, procs[i], func(ctx context.Context) error {
			// /readyz turns ready only after the first fetch returns, which on an idle topic
			// can take until the first record; a joined, stable consumer group is as good.
			if err := r.httpOK(ctx, base+"/readyz"); err == nil {
				return nil
			} else if herr := r.httpOK(ctx, base+"/healthz"); herr != nil {
				return herr
			}
			return groupStable(ctx, adm, group)
		}); err != nil {
			return err
		}
		r.log.Info("ready", "service", st.Name, "ops", base)
	}
	return nil
}

// groupStable reports whether a consumer group has members with partitions assigned.
func groupStable(ctx context.Context, adm *kadm.Client, group string) error {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	g, ok := dg[group]
	if !ok || g.Err != nil {
		return fmt.Errorf("group %s not found", group)
	}
	if g.State != "Stable" || len(g.Members) == 0 {
		return fmt.Errorf("group %s is %s with %d members", group, g.State, len(g.Members))
	}
	assigned := 0
	for _, m := range g.Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				assigned += len(t.Partitions)
			}
		}
	}
	if assigned == 0 {
		return fmt.Errorf("group %s has no partitions assigned", group)
	}
	return nil
}

func (r *runner) httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

// waitReady polls check until it passes, the process exits, or the ready timeout passes.
func (r *runner) waitReady(ctx context.Context, name string, p *proc, check func(context.Context) error) error {
	deadline := time.Now().Add(r.o.ReadyTimeout)
	var last error
	for {
		if p != nil {
			if exited, _ := p.Exited(); exited {
				return exitError(p)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			where := ""
			if p != nil {
				where = fmt.Sprintf("; see %s:\n%s", p.LogPath, tail(p.LogPath, 8))
			}
			return fmt.Errorf("%s %w after %s (last: %v)%s", name, ErrNotReady, r.o.ReadyTimeout, last, where)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// replayAndDrain replays the sources while drawing progress, then waits until every stage has
// committed everything and ThreatQ is idle. It returns the final stage positions.
func (r *runner) replayAndDrain(ctx context.Context, cl *kgo.Client, adm admin, srcs []source, total int64, base offsets, sum *Summary) ([]stageProgress, error) {
	var acked atomic.Int64
	replayErr := make(chan error, 1)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go func() { replayErr <- replay(rctx, cl, srcs, &acked) }()
	replayDone := false
	defer func() {
		if !replayDone {
			rcancel()
			<-replayErr
		}
	}()

	exitCtx, exitCancel := context.WithCancel(ctx)
	exited := make(chan error, 1)
	go func() { exited <- r.sup.WatchExits(exitCtx) }()
	watching := true
	defer func() {
		exitCancel()
		if watching {
			<-exited
		}
	}()

	line := &liveLine{w: r.stderr, enabled: r.o.Progress, tty: isTerminal(r.stderr)}
	defer line.done()
	deadline := time.Now().Add(r.o.DrainTimeout)
	stable, lastWrites := 0, -1
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var st []stageProgress
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-exited:
			watching = false
			exited = nil // WatchExits returned: never select it again
			if err != nil {
				line.done()
				return nil, err
			}
		case err := <-replayErr:
			replayDone = true
			if err != nil {
				return nil, err
			}
			r.log.Debug("replay acknowledged", "records", acked.Load())
		case <-tick.C:
		}
		var err error
		if st, err = pipelineProgress(ctx, adm, r.n, base); err != nil {
			r.log.Warn("progress", "err", err)
			continue
		}
		line.draw(progressLine(acked.Load(), total, st))
		drained := replayDone && st[0].Total >= total
		for _, s := range st {
			drained = drained && s.Lag() == 0
		}
		writes := r.threatQWrites(ctx)
		if drained && writes == lastWrites {
			stable++
		} else {
			stable = 0
		}
		lastWrites = writes
		if stable >= 4 { // ~1 s with every lag 0 and no ThreatQ write
			break
		}
		if time.Now().After(deadline) {
			line.done()
			return nil, r.notDrained(st)
		}
	}
	line.done()
	sum.RecordsReplayed = acked.Load()
	return st, nil
}

func (r *runner) notDrained(st []stageProgress) error {
	for i, s := range st {
		if s.Lag() != 0 {
			return fmt.Errorf("%w after %s: %s (group %s) still has %d records to process; see %s",
				ErrNotDrained, r.o.DrainTimeout, s.Name, r.n.Group(s.Name), s.Lag(), filepath.Join(r.o.RunDir, "logs", stages[i].Name+".log"))
		}
	}
	return fmt.Errorf("%w after %s: ThreatQ writes did not settle; see %s", ErrNotDrained, r.o.DrainTimeout, filepath.Join(r.o.RunDir, "logs", "sink.log"))
}

// threatQWrites returns the emulator's write count (0 when there is no emulator).
func (r *runner) threatQWrites(ctx context.Context) int {
	if r.o.Real {
		return 0
	}
	var s tqStats
	if _, err := getJSON(ctx, r.hc, r.o.threatQURL()+"/_emulator/stats", &s); err != nil {
		return -1
	}
	return s.Writes
}

// summarize reads the pipeline topics, the services' metrics and the ThreatQ emulator, runs
// the checks, prints the summary and writes run/summary.json.
func (r *runner) summarize(ctx context.Context, adm admin, serde *events.Serde, base offsets, st []stageProgress, sum *Summary) error {
	for _, s := range st {
		sum.Stages = append(sum.Stages, StageLag{Stage: s.Name, Group: r.n.Group(s.Name), Consumed: s.Consumed, Lag: s.Lag()})
	}
	to, err := endOffsets(ctx, adm, r.n.Observed, r.n.Enriched, r.n.Verdicts, r.n.DLQ)
	if err != nil {
		return err
	}
	c := newCollector(serde, r.n, sum)
	if err := readTopics(ctx, r.kopts, base, to, time.Minute, func(rec *kgo.Record) { c.add(ctx, rec) }); err != nil {
		return err
	}
	if c.errs > 0 {
		r.log.Warn("records on the pipeline topics that do not decode", "count", c.errs)
	}
	c.finish(10)

	sum.Where = Where{Metrics: map[string]string{}, Logs: filepath.Join(r.o.RunDir, "logs") + "/",
		Summary: filepath.Join(r.o.RunDir, "summary.json")}
	for i, s := range stages {
		sum.Where.Metrics[s.Name] = "http://" + r.o.opsAddr(i) + "/metrics"
	}
	r.ingestAccounting(ctx, sum)

	tqValues := map[string]bool{}
	sum.ThreatQ = ThreatQInfo{URL: r.o.threatQURL(), ByStatus: map[string]int{}}
	if !r.o.Real {
		sum.ThreatQ.Checked = true
		sum.Where.ThreatQPage = r.o.threatQURL() + "/"
		var d tqDump
		raw, err := getJSON(ctx, r.hc, r.o.threatQURL()+"/_emulator/dump", &d)
		if err != nil {
			return err
		}
		var s tqStats
		if _, err := getJSON(ctx, r.hc, r.o.threatQURL()+"/_emulator/stats", &s); err != nil {
			return err
		}
		sum.ThreatQ.Indicators, sum.ThreatQ.Created, sum.ThreatQ.Updated, sum.ThreatQ.Writes = len(d.Indicators), s.Created, s.Updated, s.Writes
		for _, in := range d.Indicators {
			tqValues[in.Value] = true
			sum.ThreatQ.ByStatus[in.Status]++
		}
		dumpPath := filepath.Join(r.o.RunDir, "threatq-dump.json")
		if err := os.WriteFile(dumpPath, raw, 0o644); err != nil {
			return fmt.Errorf("write dump: %w", err)
		}
		sum.Where.Dump = dumpPath
	}
	sum.DurationSeconds = time.Since(r.started).Seconds()
	sum.evaluate(c.verdictValues(), tqValues)
	sum.render(r.stdout)
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(sum.Where.Summary, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// ingestAccounting reads ingest's outcome counter and the runtime's input counter.
func (r *runner) ingestAccounting(ctx context.Context, sum *Summary) {
	samples, err := scrape(ctx, r.hc, sum.Where.Metrics["ingest"])
	if err != nil {
		r.log.Warn("ingest metrics", "err", err)
		return
	}
	ia := IngestAccounting{None: map[string]int64{}, DeadLettered: map[string]int64{}}
	for _, s := range samples {
		if s.Name != "vigil_ingest_records_total" {
			continue
		}
		ia.Available = true
		n := int64(s.Value)
		ia.In += n
		switch s.Labels["outcome"] {
		case "observations":
			ia.Observations += n
		case "none":
			ia.None[s.Labels["reason"]] += n
		case "dead_lettered":
			ia.DeadLettered[s.Labels["reason"]] += n
		}
	}
	ia.Consumed = int64(sumMetric(samples, "vigil_records_in_total", map[string]string{"stage": "ingest"}))
	sum.Ingest = ia
}
