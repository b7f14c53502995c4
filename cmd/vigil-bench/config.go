package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// Environment variables read (flags override nothing here; they are separate knobs):
//
//	Variable                   Default            Meaning
//	VIGIL_TEST_KAFKA_BROKERS   127.0.0.1:39092    the real Kafka broker the bench uses
//	VIGIL_TEST_REDIS_ADDR      127.0.0.1:36379    the real Redis the services use

// phases the bench can run, in order.
var allPhases = []string{"baseline", "ingest", "enrich", "correlate", "sink", "e2e", "latency", "rss", "warninglist"}

// config is the bench's configuration (flags + the two test-infrastructure variables).
type config struct {
	Quick           bool
	Records         int
	E2ERecords      int
	LatencyDrain    time.Duration
	RSSTimeout      time.Duration
	Distinct        int
	Mix             string  // record mix of the end-to-end and latency runs: zipf or uniform
	ZipfS           float64 // zipf exponent
	RSSDistinct     int
	LatencyRate     int
	LatencyDuration time.Duration
	BinDir          string
	OutDir          string
	SamplesDir      string
	Phases          map[string]bool
	Profile         bool
	KeepTopics      bool
	RedisDB         int
	RSSProviders    string // offline or all
	DrainTimeout    time.Duration
	Partitions      int
	Write           bool
	Set             map[string][]string // service → extra KEY=VALUE environment entries
	Brokers         []string
	RedisAddr       string
}

// loadConfig parses flags and reads the environment through e.
func loadConfig(args []string, e *envconf.Env, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("vigil-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.Quick, "quick", false, "smaller run (under ~3 minutes): fewer records, shorter latency phase, 100k-indicator RSS run")
	fs.IntVar(&c.Records, "records", 0, "records per stage run (default 200000; quick 50000)")
	fs.IntVar(&c.E2ERecords, "e2e-records", 0, "raw records in the sustained end-to-end run (default min(records, 100000); quick 20000)")
	fs.DurationVar(&c.LatencyDrain, "latency-drain", 0, "longest wait, after the latency phase stops producing, for its records to reach ThreatQ (default 60s; quick 25s)")
	fs.DurationVar(&c.RSSTimeout, "rss-timeout", 0, "cap on the peak-RSS run; the indicators processed by then are reported (default 120s; quick 30s)")
	fs.IntVar(&c.Distinct, "distinct", 0, "distinct indicators in the stage and end-to-end runs (default records/10)")
	fs.StringVar(&c.Mix, "mix", mixZipf, "which pool indicator each raw record of the end-to-end and latency runs carries: zipf (heavy-tailed popularity, as in real traffic) or uniform (round robin)")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.05, "zipf exponent (> 1) of -mix zipf")
	fs.IntVar(&c.RSSDistinct, "rss-distinct", 0, "distinct indicators (= raw records) in the peak-RSS run (default 1000000; quick 100000)")
	fs.IntVar(&c.LatencyRate, "latency-rate", 5000, "records/s produced steadily in the latency phase")
	fs.DurationVar(&c.LatencyDuration, "latency-duration", 0, "length of the latency phase (default 20s; quick 10s)")
	fs.StringVar(&c.BinDir, "bin", "bin", "directory of the service and emulator binaries (make build)")
	fs.StringVar(&c.OutDir, "out", "bench/results", "directory for latest.json, latest.md and the dated copy")
	fs.StringVar(&c.SamplesDir, "samples", "services/ingest/testdata/json/suricata_eve", "Suricata EVE sample lines used as raw-record templates")
	phases := fs.String("phases", strings.Join(allPhases, ","), "comma-separated phases to run: "+strings.Join(allPhases, ","))
	fs.BoolVar(&c.Profile, "profile", true, "CPU-profile (pprof) a stage that misses its target, in a second pass (default off with -quick)")
	fs.BoolVar(&c.KeepTopics, "keep-topics", false, "keep the run's topics and groups on the broker")
	fs.IntVar(&c.RedisDB, "redis-db", 11, "Redis database for the services' state; the bench FLUSHES it at start")
	fs.StringVar(&c.RSSProviders, "rss-providers", "offline", "providers in the peak-RSS run: offline (no HTTP providers) or all")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 4*time.Minute, "longest wait for one run to drain")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions of every topic the bench creates")
	fs.BoolVar(&c.Write, "write", true, "write results to -out")
	c.Set = map[string][]string{}
	fs.Func("set", "extra service environment, SERVICE:KEY=VALUE (repeatable), e.g. sink:VIGIL_SINK_FLUSH_INTERVAL=500ms", func(v string) error {
		svc, kv, ok := strings.Cut(v, ":")
		if !ok || !strings.Contains(kv, "=") || !validService(svc) {
			return fmt.Errorf("want SERVICE:KEY=VALUE with SERVICE one of %v", serviceNames)
		}
		c.Set[svc] = append(c.Set[svc], kv)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	profileSet := false
	fs.Visit(func(f *flag.Flag) { profileSet = profileSet || f.Name == "profile" })
	if c.Quick && !profileSet {
		c.Profile = false
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	c.Brokers = e.List("VIGIL_TEST_KAFKA_BROKERS", []string{"127.0.0.1:39092"})
	c.RedisAddr = e.String("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379")
	if err := e.Err(); err != nil {
		return config{}, err
	}
	c.setDefaults()
	c.Phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		c.Phases[p] = true
	}
	return c, c.validate()
}

func (c *config) setDefaults() {
	if c.Records <= 0 {
		c.Records = 200_000
		if c.Quick {
			c.Records = 50_000
		}
	}
	if c.Distinct <= 0 {
		c.Distinct = max(c.Records/10, 1)
	}
	if c.E2ERecords <= 0 {
		c.E2ERecords = min(c.Records, 100_000)
		if c.Quick {
			c.E2ERecords = min(c.Records, 20_000)
		}
	}
	if c.LatencyDrain <= 0 {
		c.LatencyDrain = 60 * time.Second
		if c.Quick {
			c.LatencyDrain = 25 * time.Second
		}
	}
	if c.RSSTimeout <= 0 {
		c.RSSTimeout = 120 * time.Second
		if c.Quick {
			c.RSSTimeout = 30 * time.Second
		}
	}
	if c.RSSDistinct <= 0 {
		c.RSSDistinct = 1_000_000
		if c.Quick {
			c.RSSDistinct = 100_000
		}
	}
	if c.LatencyDuration <= 0 {
		c.LatencyDuration = 20 * time.Second
		if c.Quick {
			c.LatencyDuration = 10 * time.Second
		}
	}
}

func (c config) validate() error {
	var errs []error
	for p := range c.Phases {
		found := false
		for _, a := range allPhases {
			found = found || a == p
		}
		if !found {
			errs = append(errs, fmt.Errorf("-phases: unknown phase %q", p))
		}
	}
	if c.Distinct > c.Records || c.Distinct > c.E2ERecords {
		errs = append(errs, errors.New("-distinct must not exceed -records or -e2e-records"))
	}
	if _, err := newRecordMix(c.Mix, c.ZipfS, 1, 0); err != nil {
		errs = append(errs, fmt.Errorf("-mix/-zipf-s: %w", err))
	}
	if c.LatencyRate < 1 {
		errs = append(errs, errors.New("-latency-rate must be positive"))
	}
	if c.RSSProviders != "offline" && c.RSSProviders != "all" {
		errs = append(errs, errors.New("-rss-providers must be offline or all"))
	}
	if c.RedisDB < 0 || c.RedisDB > 15 {
		errs = append(errs, errors.New("-redis-db must be 0–15"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("-partitions must be positive"))
	}
	return errors.Join(errs...)
}

func (c config) mode() string {
	if c.Quick {
		return "quick"
	}
	return "full"
}

func validService(s string) bool {
	for _, n := range serviceNames {
		if n == s {
			return true
		}
	}
	return false
}
