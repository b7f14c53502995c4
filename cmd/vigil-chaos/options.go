package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrUsage means the command line was wrong.
var ErrUsage = errors.New("usage")

// ErrLoss means a run lost records or indicators, or a check did not hold.
var ErrLoss = errors.New("checks failed")

// options is the parsed command line.
type options struct {
	Cmd        string
	Brokers    []string
	Redis      string
	RepoRoot   string
	BinDir     string
	SkipBuild  bool
	LogDir     string
	ResultsDir string
	Seed       uint32

	// chaos
	Quick        bool
	Records      int
	Indicators   int
	Malformed    int
	None         int
	Duration     time.Duration
	Outage       time.Duration
	KillsEach    int
	Reference    bool
	DrainTimeout time.Duration

	// scaleout
	Rate      float64
	Protocols []string
	From      string // scaleout: recompute the dips of this result file, run nothing
	MaxBatch  int    // VIGIL_MAX_BATCH of every service (0: the service default, 500)
}

// RedisHost and RedisPort split the Redis address for redis-cli.
func (o options) RedisHost() string { h, _, _ := net.SplitHostPort(o.Redis); return h }

// RedisPort is the port of the Redis address.
func (o options) RedisPort() string { _, p, _ := net.SplitHostPort(o.Redis); return p }

func parseOptions(args []string, stderr io.Writer) (options, error) {
	if len(args) == 0 || (args[0] != "chaos" && args[0] != "scaleout") {
		return options{}, fmt.Errorf("%w: vigil-chaos chaos|scaleout [flags]", ErrUsage)
	}
	o := options{Cmd: args[0]}
	fs := flag.NewFlagSet("vigil-chaos "+o.Cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("kafka", "127.0.0.1:39092", "broker (scripts/kafka/kafka.sh)")
	fs.StringVar(&o.Redis, "redis", "127.0.0.1:36379", "Redis (scripts/redis.sh)")
	fs.StringVar(&o.RepoRoot, "repo", "", "repository root (default: found from the working directory)")
	fs.StringVar(&o.BinDir, "bin", "", "use the service binaries in DIR instead of building them")
	fs.StringVar(&o.ResultsDir, "results", "", "where the JSON result goes (default <repo>/bench/results)")
	seed := fs.Uint("seed", uint(time.Now().UnixNano()&0xFFFFFF), "address seed")
	fs.BoolVar(&o.Quick, "quick", false, "chaos: 20k records, one kill per service, 20 s ThreatQ outage")
	fs.IntVar(&o.Records, "records", 0, "raw records (chaos 100000, quick 20000; scaleout 30000)")
	fs.IntVar(&o.Indicators, "indicators", 0, "distinct public IPs (chaos 20000, quick 4000; scaleout 6000)")
	fs.IntVar(&o.Malformed, "malformed", -1, "truly malformed records (default 0.5% of records)")
	fs.IntVar(&o.None, "none", -1, "internal-only records without indicators (default 1% of records)")
	fs.DurationVar(&o.Duration, "duration", 0, "chaos: how long the records are streamed (6m, quick 100s)")
	fs.DurationVar(&o.Outage, "outage", 0, "chaos: ThreatQ outage (60s, quick 20s)")
	fs.IntVar(&o.KillsEach, "kills", 0, "chaos: SIGKILLs per service (3, quick 1)")
	fs.BoolVar(&o.Reference, "reference", true, "chaos: run the same input without faults first and compare ThreatQ")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 6*time.Minute, "how long to wait for the backlog to drain")
	fs.Float64Var(&o.Rate, "rate", 0, "scaleout: records per second (default 600)")
	fs.StringVar(&o.From, "from", "", "scaleout: recompute the dips of an existing result file from its series and rewrite it (runs nothing)")
	fs.IntVar(&o.MaxBatch, "max-batch", 0, "VIGIL_MAX_BATCH for every service (0: service default 500); smaller batches commit more often, so the per-second series is finer")
	protocols := fs.String("protocols", "classic,consumer", "scaleout: group protocols to run")
	if err := fs.Parse(args[1:]); err != nil {
		return options{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	o.Seed = uint32(*seed)
	o.Brokers = strings.Split(*brokers, ",")
	for _, p := range strings.Split(*protocols, ",") {
		if p = strings.TrimSpace(p); p != "classic" && p != "consumer" {
			return options{}, fmt.Errorf("%w: -protocols: %q is neither classic nor consumer", ErrUsage, p)
		}
		o.Protocols = append(o.Protocols, strings.TrimSpace(p))
	}
	o.defaults()
	if o.Records < 1 || o.Indicators < 1 || o.Rate < 0 || o.KillsEach < 0 {
		return options{}, fmt.Errorf("%w: counts must be positive", ErrUsage)
	}
	return o, nil
}

// defaults fills what the flags left at zero, by command and --quick.
func (o *options) defaults() {
	def := func(v *int, full, quick, scale int) {
		if *v > 0 {
			return
		}
		switch {
		case o.Cmd == "scaleout":
			*v = scale
		case o.Quick:
			*v = quick
		default:
			*v = full
		}
	}
	def(&o.Records, 100000, 20000, 30000)
	def(&o.Indicators, 20000, 4000, 6000)
	def(&o.KillsEach, 3, 1, 0)
	if o.Malformed < 0 {
		o.Malformed = o.Records / 200
	}
	if o.None < 0 {
		o.None = o.Records / 100
	}
	if o.Duration <= 0 {
		o.Duration = 6 * time.Minute
		if o.Quick {
			o.Duration = 100 * time.Second
		}
	}
	if o.Outage <= 0 {
		o.Outage = time.Minute
		if o.Quick {
			o.Outage = 20 * time.Second
		}
	}
	if o.Rate <= 0 {
		o.Rate = 600
	}
}

// findRepo walks up from dir to the directory holding go.work.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no go.work above %s; pass -repo", ErrUsage, dir)
		}
	}
}

func run(ctx context.Context, args []string) error {
	o, err := parseOptions(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.RepoRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if o.RepoRoot, err = findRepo(wd); err != nil {
			return err
		}
	}
	if o.ResultsDir == "" {
		o.ResultsDir = filepath.Join(o.RepoRoot, "bench", "results")
	}
	if o.Cmd == "scaleout" && o.From != "" {
		return redoDips(o.From)
	}
	tmp, err := os.MkdirTemp("", "vigil-chaos-")
	if err != nil {
		return err
	}
	o.LogDir = filepath.Join(tmp, "logs")
	if o.BinDir == "" {
		o.BinDir = filepath.Join(tmp, "bin")
	} else {
		o.SkipBuild = true
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log.Info("vigil-chaos", "cmd", o.Cmd, "logs", o.LogDir, "seed", o.Seed)
	h, err := newHarness(o, log)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.build(ctx); err != nil {
		return err
	}
	if o.Cmd == "chaos" {
		return h.chaos(ctx)
	}
	return h.scaleout(ctx)
}
