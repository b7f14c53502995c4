package main

// vigil-run's flags (see README.md). It reads no VIGIL_* variable itself except in --real mode,
// where it passes the environment through and reads, for its own clients:
//
//	Variable                 Meaning (only with --real)
//	VIGIL_KAFKA_BROKERS      broker list for the replay, lag and summary clients (default 127.0.0.1:19092)
//	VIGIL_THREATQ_URL        ThreatQ base URL, shown in the summary (writes are then counted from sink's /metrics)
//	VIGIL_SHUTDOWN_TIMEOUT   the services' own shutdown budget (default 30s); -stop-timeout defaults to it + 5s

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// devShutdown is the services' shutdown budget outside --real: the demo has little in flight.
// stopMargin is what a child gets on top of its own budget to close its clients and exit.
const (
	devShutdown = 10 * time.Second
	stopMargin  = 5 * time.Second
)

// ErrUsage means the command line was wrong.
var ErrUsage = errors.New("usage")

// options is the parsed command line plus what --real reads from the environment.
type options struct {
	Follow   bool
	Real     bool
	KeepLogs bool

	BinDir     string // service and emulator binaries
	RunDir     string // logs, summary.json, threatq-dump.json
	SamplesDir string // services/ingest/testdata
	InputDir   string // replay DIR/<name>.log onto raw.<name> instead of the samples
	ExtraDir   string // with the samples, also replay DIR/<name>.log when DIR exists

	Kafka        string // external broker: do not start devkafka
	Redis        string // Redis for the services (empty: in-process state)
	RedisDB      int
	DevKafkaAddr string
	ProviderAddr string
	ThreatQAddr  string
	OpsPortBase  int // ingest's ops port; enrich, correlate, sink follow

	TopicSuffix string // appended to every topic and group name (isolated runs, tests)
	TraceDir    string // VIGIL_TRACE_FILE=<dir>/<service>.spans.jsonl for each service
	LogLevel    string

	ReadyTimeout time.Duration
	DrainTimeout time.Duration
	StopTimeout  time.Duration // SIGTERM to SIGKILL; default ChildShutdown + stopMargin
	// ChildShutdown is the services' VIGIL_SHUTDOWN_TIMEOUT: devShutdown outside --real, the
	// environment's value (default 30s) with --real. A child killed before it runs out would
	// lose its drain and commit.
	ChildShutdown time.Duration
	Progress      bool

	// from the environment (--real only)
	RealBrokers    []string
	RealThreatQURL string
	Environ        []string // inherited environment of the children
	GeoDir         string   // offline ASN/country data directory
}

func parseOptions(args []string, environ []string, lookup envconf.Lookup, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("vigil-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.Follow, "follow", false, "keep the pipeline running after the summary until Ctrl-C")
	fs.BoolVar(&o.Real, "real", false, "use VIGIL_KAFKA_BROKERS, VIGIL_REDIS_ADDR and VIGIL_THREATQ_* (and provider settings) from the environment; start no broker or emulator")
	fs.BoolVar(&o.KeepLogs, "keep-logs", false, "keep run/logs after a successful run (they are always kept on failure or with --follow) and append to earlier logs")
	fs.StringVar(&o.BinDir, "bin", "", "directory of the service binaries (default: the directory of vigil-run)")
	fs.StringVar(&o.RunDir, "run-dir", "run", "directory for logs, summary.json and threatq-dump.json")
	fs.StringVar(&o.SamplesDir, "samples", "services/ingest/testdata", "bundled sample logs ({json,text}/<format>/)")
	fs.StringVar(&o.InputDir, "input", "", "replay DIR/<name>.log onto raw.<name> instead of the bundled samples")
	fs.StringVar(&o.ExtraDir, "extra", "testdata/replay", "with the samples, also replay DIR/<name>.log onto raw.<name> (fresh synthetic alerts; skipped when DIR is missing)")
	fs.StringVar(&o.Kafka, "kafka", "", "use this Kafka broker instead of starting devkafka")
	fs.StringVar(&o.Redis, "redis", "", "Redis address for the services (default: none, in-process state)")
	fs.StringVar(&o.GeoDir, "geo-dir", "", "offline ASN/country data for enrich (make fetch-geo; empty: the provider reports skipped)")
	fs.IntVar(&o.RedisDB, "redis-db", 0, "Redis database number for the services")
	fs.StringVar(&o.DevKafkaAddr, "devkafka-addr", "127.0.0.1:19092", "listen address of the dev broker")
	fs.StringVar(&o.ProviderAddr, "provider-addr", "127.0.0.1:18091", "listen address of the provider emulator")
	fs.StringVar(&o.ThreatQAddr, "threatq-addr", "127.0.0.1:18443", "listen address of the ThreatQ emulator")
	fs.IntVar(&o.OpsPortBase, "ops-port", 9401, "ops port of ingest; enrich, correlate and sink use the next three")
	fs.StringVar(&o.TopicSuffix, "topic-suffix", "", "suffix for every topic and consumer group (isolated runs)")
	fs.StringVar(&o.TraceDir, "trace-dir", "", "write each service's spans to DIR/<service>.spans.jsonl")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level of the services")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", 60*time.Second, "how long to wait for each process to become ready")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 5*time.Minute, "how long to wait for the replay to drain")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 0, "SIGTERM to SIGKILL grace per process (default: the services' VIGIL_SHUTDOWN_TIMEOUT + 5s, 15s outside --real)")
	fs.BoolVar(&o.Progress, "progress", true, "draw the progress bar on stderr")
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if o.OpsPortBase < 1 || o.OpsPortBase > 65532 {
		return options{}, fmt.Errorf("%w: -ops-port %d out of range", ErrUsage, o.OpsPortBase)
	}
	for _, d := range []time.Duration{o.ReadyTimeout, o.DrainTimeout} {
		if d <= 0 {
			return options{}, fmt.Errorf("%w: timeouts must be positive", ErrUsage)
		}
	}
	if o.Real && (o.Kafka != "" || o.Redis != "") {
		return options{}, fmt.Errorf("%w: --real takes the broker and Redis from the environment; drop -kafka/-redis", ErrUsage)
	}
	if o.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return options{}, fmt.Errorf("find binaries: %w", err)
		}
		o.BinDir = filepath.Dir(exe)
	}
	if o.Real {
		e := envconf.New(lookup)
		o.RealBrokers = e.List("VIGIL_KAFKA_BROKERS", []string{"127.0.0.1:19092"})
		o.RealThreatQURL = e.String("VIGIL_THREATQ_URL", "")
		o.ChildShutdown = e.Duration("VIGIL_SHUTDOWN_TIMEOUT", 30*time.Second)
		if err := e.Err(); err != nil {
			return options{}, err
		}
	} else {
		o.ChildShutdown = devShutdown
	}
	switch {
	case o.StopTimeout < 0:
		return options{}, fmt.Errorf("%w: -stop-timeout must not be negative", ErrUsage)
	case o.StopTimeout == 0:
		o.StopTimeout = o.ChildShutdown + stopMargin
	}
	// Children inherit the environment. Outside --real, VIGIL_* settings of the caller are
	// dropped so the demo always runs on its own, known configuration; only where spans go
	// (demoPassthrough) is kept.
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !o.Real && strings.HasPrefix(kv, "VIGIL_") && !slices.Contains(demoPassthrough, name) {
			continue
		}
		o.Environ = append(o.Environ, kv)
	}
	return o, nil
}

// demoPassthrough are the caller's VIGIL_* variables the demo children keep: they send the
// demo's traces to the caller's OpenTelemetry collector without changing how the pipeline runs.
var demoPassthrough = []string{"VIGIL_OTLP_ENDPOINT", "VIGIL_OTLP_HEADERS", "VIGIL_OTLP_HEADERS_FILE", "VIGIL_TRACE_SAMPLE_RATIO"}

// names are the topics and groups of one run.
type names struct {
	Raw                                         []string
	Observed, Enriched, Verdicts, Feedback, DLQ string
	suffix                                      string
}

var rawTopics = []string{"raw.suricata", "raw.zeek", "raw.cef", "raw.fortigate", "raw.panos", "raw.asa", "raw.sysmon", "raw.edr", "raw.ocsf", "raw.ecs"}

func newNames(suffix string) names {
	n := names{suffix: suffix, Observed: "indicators.observed" + suffix, Enriched: "indicators.enriched" + suffix,
		Verdicts: "indicators.verdicts" + suffix, Feedback: "indicators.feedback" + suffix, DLQ: "vigil.dlq" + suffix}
	for _, r := range rawTopics {
		n.Raw = append(n.Raw, r+suffix)
	}
	return n
}

// Topic returns the run's name of a default topic.
func (n names) Topic(base string) string { return base + n.suffix }

// Group returns the consumer group of a service.
func (n names) Group(svc string) string { return "vigil-" + svc + n.suffix }

// stage is one pipeline service, in pipeline order.
type stage struct {
	Name   string
	Inputs func(names) []string
}

var stages = []stage{
	{"ingest", func(n names) []string { return n.Raw }},
	{"enrich", func(n names) []string { return []string{n.Observed} }},
	{"correlate", func(n names) []string { return []string{n.Enriched, n.Feedback} }},
	{"sink", func(n names) []string { return []string{n.Verdicts} }},
}

func (o options) opsAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(o.OpsPortBase+i) }

func (o options) brokers() []string {
	switch {
	case o.Real:
		return o.RealBrokers
	case o.Kafka != "":
		return strings.Split(o.Kafka, ",")
	default:
		return []string{o.DevKafkaAddr}
	}
}

func (o options) threatQURL() string {
	if o.Real {
		return o.RealThreatQURL
	}
	return "http://" + o.ThreatQAddr
}

// serviceEnv is the environment of pipeline service i (stages[i]).
func (o options) serviceEnv(i int, n names) []string {
	svc := stages[i].Name
	env := append([]string(nil), o.Environ...)
	set := func(k, v string) { env = append(env, k+"="+v) }
	set("VIGIL_OPS_ADDR", o.opsAddr(i))
	set("VIGIL_LOG_LEVEL", o.LogLevel)
	if o.TraceDir != "" {
		set("VIGIL_TRACE_FILE", filepath.Join(o.TraceDir, svc+".spans.jsonl"))
	}
	if o.Real {
		if n.suffix != "" {
			o.setNames(set, svc, n)
		}
		return env
	}
	set("VIGIL_KAFKA_BROKERS", strings.Join(o.brokers(), ","))
	set("VIGIL_SHUTDOWN_TIMEOUT", o.ChildShutdown.String())
	if o.Redis != "" {
		set("VIGIL_REDIS_ADDR", o.Redis)
		set("VIGIL_REDIS_DB", strconv.Itoa(o.RedisDB))
	}
	o.setNames(set, svc, n)
	switch svc {
	case "enrich":
		base := "http://" + o.ProviderAddr
		for _, p := range []string{"CRIMINALIP", "INTERNETDB", "ABUSEIPDB", "GREYNOISE"} {
			pre := "VIGIL_ENRICH_" + p + "_"
			set(pre+"ENABLED", "true")
			set(pre+"BASE_URL", base)
			set(pre+"API_KEY", "dev-key")
			// the emulator has no plan limits: do not throttle the demo to free-tier rates
			set(pre+"RATE", "0")
			set(pre+"QUOTAS", "none")
			set(pre+"MAX_CONCURRENT", "8")
		}
		if o.GeoDir != "" {
			set("VIGIL_ENRICH_OFFLINE_DIR", o.GeoDir)
		}
	case "sink":
		set("VIGIL_THREATQ_URL", o.threatQURL())
		set("VIGIL_THREATQ_CLIENT_ID", "vigil-dev")
		set("VIGIL_THREATQ_EMAIL", "analyst@vigil.local")
		set("VIGIL_THREATQ_PASSWORD", "vigil-dev")
		set("VIGIL_THREATQ_ALLOW_INSECURE_HTTP", "true")
		set("VIGIL_SINK_FLUSH_INTERVAL", "500ms")
	}
	return env
}

func (o options) setNames(set func(k, v string), svc string, n names) {
	set("VIGIL_GROUP", n.Group(svc))
	set("VIGIL_TOPIC_OBSERVED", n.Observed)
	set("VIGIL_TOPIC_ENRICHED", n.Enriched)
	set("VIGIL_TOPIC_VERDICTS", n.Verdicts)
	set("VIGIL_TOPIC_FEEDBACK", n.Feedback)
	set("VIGIL_TOPIC_DLQ", n.DLQ)
	if svc == "ingest" {
		set("VIGIL_INGEST_TOPICS", strings.Join(n.Raw, ","))
	}
}
