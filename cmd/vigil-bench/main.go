// Command vigil-bench is Vigil's benchmark suite (`make bench`). On the real Kafka broker and Redis
// it measures, in one run and on unique topics: a consume→decode→encode→produce baseline on
// pkg/stream's Runner, each service alone on a pre-filled input topic, the four services end to
// end (sustained throughput and latency at a fixed rate), peak RSS per service over many distinct
// indicators, provider calls per unique indicator and ThreatQ calls per 1,000 verdicts. It prints
// a table and writes bench/results/latest.json, latest.md and a dated copy.
//
//	go run ./cmd/vigil-bench [-quick] [-records N] [-phases baseline,ingest,…]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/telemetry"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		slog.Error("vigil-bench exited", "err", err)
		os.Exit(1)
	}
}

// bench holds one run's shared state.
type bench struct {
	cfg       config
	log       *slog.Logger
	br        *broker
	rdb       *redis.Client
	serde     *events.Serde
	allow     *allowlist.Set
	templates []eveTemplate
	runID     string
	logDir    string
	rep       *Report
	seed      uint32
	ips       *ipPool // one sequence per run: pools never overlap
	procs     []*proc
	nproc     int // services started so far (numbers the log files)
	groups    []string
	provEmu   *proc
	tqEmu     *proc
	stdout    io.Writer
}

func run(args []string, stdout, stderr io.Writer) error {
	ctx, stop := telemetry.SignalContext(context.Background())
	defer stop()
	cfg, err := loadConfig(args, envconf.New(os.LookupEnv), stderr)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	b := &bench{cfg: cfg, log: log, rep: newReport(), stdout: stdout, seed: rand.Uint32()}
	b.runID = time.Now().UTC().Format("150405") + "-" + strconv.FormatUint(uint64(b.seed%46656), 36)
	b.rep.Timestamp = start.UTC().Format(time.RFC3339)
	b.rep.Machine = readMachine()
	b.rep.Machine.LoadStart = loadAvg()
	b.rep.GitCommit = gitCommit()
	b.rep.Params = Params{Mode: cfg.mode(), Records: cfg.Records, Distinct: cfg.Distinct, RSSDistinct: cfg.RSSDistinct,
		LatencyRate: cfg.LatencyRate, LatencySeconds: cfg.LatencyDuration.Seconds(), Partitions: cfg.Partitions,
		Brokers: strings.Join(cfg.Brokers, ","), Redis: cfg.RedisAddr, RedisDB: cfg.RedisDB,
		ProviderLimits:  "emulated providers with RATE=0, QUOTAS=none, MAX_CONCURRENT=8 (no plan throttling)",
		RSSProviderMode: cfg.RSSProviders}

	if err := b.setup(ctx); err != nil {
		b.teardown()
		return err
	}
	b.phases(ctx)
	b.teardown()

	b.rep.Machine.LoadEnd = loadAvg()
	b.rep.DurationSeconds = round(time.Since(start).Seconds(), 1)
	b.rep.evaluate()
	b.rep.writeText(stdout)
	if cfg.Write && ctx.Err() == nil { // an interrupted run is printed, not saved
		if err := b.writeResults(start); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// setup connects to the broker and Redis, flushes the bench's Redis database, loads templates
// and starts the two emulators.
func (b *bench) setup(ctx context.Context) error {
	var err error
	b.logDir, err = os.MkdirTemp("", "vigil-bench-"+b.runID+"-")
	if err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	b.log.Info("bench starting", "run", b.runID, "mode", b.cfg.mode(), "records", b.cfg.Records,
		"distinct", b.cfg.Distinct, "rss_distinct", b.cfg.RSSDistinct, "logs", b.logDir)
	if b.br, err = newBroker(b.cfg.Brokers, b.cfg.Partitions); err != nil {
		return err
	}
	if err := b.br.ping(ctx); err != nil {
		return fmt.Errorf("broker %v unreachable (make up): %w", b.cfg.Brokers, err)
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: b.cfg.RedisDB})
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s unreachable (make up): %w", b.cfg.RedisAddr, err)
	}
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush redis db %d: %w", b.cfg.RedisDB, err)
	}
	if b.serde, err = events.NewSerde(); err != nil {
		return fmt.Errorf("serde: %w", err)
	}
	if b.allow, err = allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}}); err != nil {
		return fmt.Errorf("allow-lists: %w", err)
	}
	if b.templates, err = loadEVETemplates(b.cfg.SamplesDir); err != nil {
		return err
	}
	return b.startEmulators(ctx)
}

// phases runs the selected measurements; a failing phase records its reason and the rest go on.
func (b *bench) phases(ctx context.Context) {
	type phase struct {
		name string
		fn   func(context.Context) error
	}
	list := []phase{
		{"baseline", b.runBaseline},
		{"ingest", b.runIngestStage},
		{"enrich", b.runEnrichStage},
		{"correlate", b.runCorrelateStage},
		{"sink", b.runSinkStage},
		{"e2e", b.runE2E}, // also runs the latency phase while its services are up
		{"rss", b.runRSS},
		{"warninglist", b.runWarninglist},
	}
	for _, p := range list {
		if !b.cfg.Phases[p.name] && !(p.name == "e2e" && b.cfg.Phases["latency"]) {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		t0 := time.Now()
		b.log.Info("phase start", "phase", p.name)
		err := p.fn(ctx)
		if err != nil && ctx.Err() == nil && b.brokerDown() {
			// the shared broker went away (another `make test`/`make down`): wait for it and
			// run the phase once more on fresh topics
			b.log.Warn("broker unreachable; waiting to retry the phase", "phase", p.name, "err", err)
			if werr := b.waitBroker(ctx, 2*time.Minute); werr == nil {
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("phase %s was retried after the broker went away: %v", p.name, err))
				err = p.fn(ctx)
			}
		}
		if err != nil {
			b.log.Error("phase failed", "phase", p.name, "err", err)
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("phase %s failed: %v", p.name, err))
		}
		b.log.Info("phase done", "phase", p.name, "seconds", round(time.Since(t0).Seconds(), 1))
	}
}

// teardown stops every child process and removes the run's topics and groups.
func (b *bench) teardown() {
	for _, p := range b.procs {
		_ = p.stop(15 * time.Second)
	}
	b.procs = nil
	if b.br != nil {
		if !b.cfg.KeepTopics {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := b.br.deleteCreated(ctx); err != nil {
				b.log.Warn("delete topics", "err", err)
			}
			b.br.deleteGroups(ctx, b.groups...)
			cancel()
		}
		b.br.close()
	}
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
}

// writeResults writes latest.json, the dated copy and latest.md.
func (b *bench) writeResults(start time.Time) error {
	if err := os.MkdirAll(b.cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	js, err := b.rep.marshal()
	if err != nil {
		return err
	}
	dated := filepath.Join(b.cfg.OutDir, start.UTC().Format("2006-01-02T15-04-05Z")+".json")
	for _, p := range []string{filepath.Join(b.cfg.OutDir, "latest.json"), dated} {
		if err := os.WriteFile(p, js, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	var md strings.Builder
	b.rep.writeMarkdown(&md)
	if err := os.WriteFile(filepath.Join(b.cfg.OutDir, "latest.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write latest.md: %w", err)
	}
	fmt.Fprintf(b.stdout, "\nwrote %s, %s and latest.md; service logs in %s\n", filepath.Join(b.cfg.OutDir, "latest.json"), dated, b.logDir)
	return nil
}

// name returns a run-unique topic or group name.
func (b *bench) name(parts ...string) string {
	return "bench." + b.runID + "." + strings.Join(parts, ".")
}

// group returns a run-unique consumer group name and remembers it for deletion.
func (b *bench) group(parts ...string) string {
	g := b.name(append([]string{"g"}, parts...)...)
	b.groups = append(b.groups, g)
	return g
}

// pool returns n distinct public IPs that no earlier pool of this run handed out.
func (b *bench) pool(n int) []string {
	if b.ips == nil {
		b.ips = newIPPool(b.seed, b.allow)
	}
	return b.ips.Take(n)
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// errNotRun marks a phase skipped because something it needs is missing.
var errNotRun = errors.New("not run")

// brokerDown reports whether no seed broker accepts a TCP connection (kgo may answer metadata
// requests from its cache, so a request is no liveness test).
func (b *bench) brokerDown() bool {
	for _, a := range b.cfg.Brokers {
		if c, err := net.DialTimeout("tcp", a, 2*time.Second); err == nil {
			c.Close()
			return false
		}
	}
	return true
}

// waitBroker waits until the broker accepts connections and creates a probe topic again.
func (b *bench) waitBroker(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		if !b.brokerDown() {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := b.br.createTopics(pctx, b.name("probe", strconv.Itoa(i)))
			cancel()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker still unreachable after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
