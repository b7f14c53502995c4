// Package service holds the start-up wiring every Vigil service shares: common configuration
// (Kafka, Redis, ops server, logging, tracing), telemetry, the Avro serde, a runner configured
// with metrics and tracing, and the ops HTTP server.
//
//	e := envconf.New(os.LookupEnv)
//	common := service.LoadCommon(e, "enrich", "127.0.0.1:9402")
//	deps, err := service.Start(ctx, common)
//	rcfg := deps.RunnerConfig("enrich", common.Group, []string{cfg.InTopic})
//	r, err := stream.NewRunner(rcfg, handler, deps.Serde, deps.Log)
package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kotel"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
)

// RedisConfig says how to reach Redis; an empty Addr means "no Redis" (in-process state only).
type RedisConfig struct {
	Addr       string
	Username   string
	Password   string // secret
	DB         int
	TLS        bool
	TLSCAFile  string
	PoolSize   int
	MaxRetries int
}

// DefaultMemoryLimitMiB is the default Go soft memory limit. With the runner's bounded fetch
// buffers a service's live heap is a few tens of MiB, so the limit only trims the garbage the
// heap would otherwise grow into (GOGC doubling); measured without a throughput cost.
const DefaultMemoryLimitMiB = 120

// Common is the configuration every service reads.
type Common struct {
	Service          string
	Group            string
	OpsAddr          string
	LogLevel         string
	TraceFile        string
	OTLPEndpoint     string
	OTLPHeaders      map[string]string // secret values (e.g. an Authorization header)
	TraceSampleRatio float64
	ShutdownTimeout  time.Duration
	MaxBatch         int
	SchemaRegistry   string // Confluent-compatible Schema Registry URL; empty: Avro single-object encoding
	MemoryLimit      int64  // Go soft memory limit in bytes (0: off)
	Kafka            stream.KafkaConfig
	Redis            RedisConfig
}

// LoadCommon reads the shared variables. Each service has its own defaults for the ops port and
// the consumer group.
func LoadCommon(e *envconf.Env, svc, defaultOps string) Common {
	c := Common{
		Service:          svc,
		Group:            e.String("VIGIL_GROUP", "vigil-"+svc),
		OpsAddr:          e.String("VIGIL_OPS_ADDR", defaultOps),
		LogLevel:         e.OneOf("VIGIL_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		TraceFile:        e.String("VIGIL_TRACE_FILE", ""),
		OTLPHeaders:      otlpHeaders(e),
		TraceSampleRatio: e.Float("VIGIL_TRACE_SAMPLE_RATIO", 0),
		ShutdownTimeout:  e.Duration("VIGIL_SHUTDOWN_TIMEOUT", 30*time.Second),
		MaxBatch:         e.Int("VIGIL_MAX_BATCH", 500),
		SchemaRegistry:   e.String("VIGIL_SCHEMA_REGISTRY_URL", ""),
		MemoryLimit:      int64(e.Int("VIGIL_MEMORY_LIMIT_MIB", DefaultMemoryLimitMiB)) << 20,
		Kafka:            stream.LoadKafka(e, svc),
		Redis: RedisConfig{
			Addr:       e.String("VIGIL_REDIS_ADDR", ""),
			Username:   e.String("VIGIL_REDIS_USERNAME", ""),
			Password:   e.Secret("VIGIL_REDIS_PASSWORD"),
			DB:         e.Int("VIGIL_REDIS_DB", 0),
			TLS:        e.Bool("VIGIL_REDIS_TLS", false),
			TLSCAFile:  e.String("VIGIL_REDIS_TLS_CA_FILE", ""),
			PoolSize:   e.Int("VIGIL_REDIS_POOL_SIZE", 20),
			MaxRetries: e.Int("VIGIL_REDIS_MAX_RETRIES", 3),
		},
	}
	if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 {
		e.Fail("VIGIL_TRACE_SAMPLE_RATIO", fmt.Sprint(c.TraceSampleRatio), "must be between 0 and 1")
	}
	var endpointVar string
	if c.OTLPEndpoint, endpointVar = otlpEndpoint(e); c.OTLPEndpoint != "" {
		if _, err := telemetry.OTLPTracesURL(c.OTLPEndpoint); err != nil {
			e.Fail(endpointVar, c.OTLPEndpoint, "want an http(s) URL such as http://otel-collector:4318")
		}
	}
	if c.MaxBatch < 1 || c.MaxBatch > 100000 {
		e.Fail("VIGIL_MAX_BATCH", fmt.Sprint(c.MaxBatch), "must be between 1 and 100000")
	}
	if c.MemoryLimit < 0 {
		e.Fail("VIGIL_MEMORY_LIMIT_MIB", fmt.Sprint(c.MemoryLimit>>20), "must be >= 0 (0 turns the limit off)")
	}
	if c.ShutdownTimeout == 0 {
		e.Fail("VIGIL_SHUTDOWN_TIMEOUT", "0", "must be positive")
	}
	return c
}

// otlpEndpoint is VIGIL_OTLP_ENDPOINT or, when it is unset, what the OpenTelemetry SDKs' own
// variables say: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the traces URL) or OTEL_EXPORTER_OTLP_ENDPOINT
// (a base URL that gets /v1/traces), unless their protocol is gRPC, which Vigil does not speak. It
// also returns the variable it came from.
func otlpEndpoint(e *envconf.Env) (endpoint, from string) {
	proto := e.String("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", e.String("OTEL_EXPORTER_OTLP_PROTOCOL", ""))
	for _, name := range []string{"VIGIL_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		v := strings.TrimSpace(e.String(name, ""))
		if v == "" || (name != "VIGIL_OTLP_ENDPOINT" && strings.EqualFold(strings.TrimSpace(proto), "grpc")) {
			continue
		}
		if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			v = strings.TrimRight(v, "/") + "/v1/traces"
		}
		return v, name
	}
	return "", ""
}

// otlpHeaders reads VIGIL_OTLP_HEADERS (or its _FILE) or, when it is unset,
// OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS (values percent-decoded, as the
// OpenTelemetry SDKs read them): "name=value" pairs separated by commas, read as secrets, since
// collectors authenticate with these.
func otlpHeaders(e *envconf.Env) map[string]string {
	var raw, from string
	for _, name := range []string{"VIGIL_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"} {
		if raw, from = e.Secret(name), name; raw != "" {
			break
		}
	}
	if raw == "" {
		return nil
	}
	h := map[string]string{}
	for _, kv := range strings.Split(raw, ",") {
		name, value, ok := strings.Cut(kv, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if from != "VIGIL_OTLP_HEADERS" {
			if dec, err := url.PathUnescape(value); err == nil {
				value = dec
			}
		}
		if !ok || name == "" {
			// the value is a secret: name the variable, never echo it
			e.Fail(from, "(hidden)", "want name=value pairs separated by commas")
			return nil
		}
		h[name] = value
	}
	return h
}

// Secrets lists the configured secret values so they can be scrubbed from messages.
func (c Common) Secrets() []string {
	s := []string{c.Kafka.SASLPassword, c.Redis.Password}
	for _, v := range c.OTLPHeaders {
		s = append(s, v)
	}
	return s
}

// Deps are the shared runtime dependencies of a service.
type Deps struct {
	Common Common
	Tel    *telemetry.Telemetry
	Log    *slog.Logger
	Serde  *events.Serde
	Kotel  *kotel.Kotel
	Tracer *kotel.Tracer
}

// Start sets up telemetry and the serde (registering the schemas when a registry is configured).
func Start(c Common) (*Deps, error) {
	tc := telemetry.Config{Service: c.Service, LogLevel: c.LogLevel, TraceFile: c.TraceFile,
		OTLPEndpoint: c.OTLPEndpoint, OTLPHeaders: c.OTLPHeaders, TraceSampleRatio: c.TraceSampleRatio}
	tel, err := telemetry.Setup(tc)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		return nil, fmt.Errorf("serde: %w", err)
	}
	if c.SchemaRegistry != "" {
		cl, err := sr.NewClient(sr.URLs(c.SchemaRegistry))
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = serde.UseRegistry(rctx, cl)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("schema registry %s: %w", c.SchemaRegistry, err)
		}
	}
	if c.MemoryLimit > 0 {
		// a soft limit: the GC works harder near it instead of letting the heap double (GOGC)
		debug.SetMemoryLimit(c.MemoryLimit)
	}
	meter := kotel.NewMeter(kotel.MeterProvider(tel.MeterProvider))
	d := &Deps{Common: c, Tel: tel, Log: tel.Logger, Serde: serde}
	if !tc.Tracing() {
		// tracing off: no per-record spans or header injection (they cost allocations on the hot path)
		d.Kotel = kotel.NewKotel(kotel.WithMeter(meter))
		return d, nil
	}
	d.Tracer = kotel.NewTracer(kotel.TracerProvider(tel.TracerProvider), kotel.ConsumerGroup(c.Group))
	d.Kotel = kotel.NewKotel(kotel.WithTracer(d.Tracer), kotel.WithMeter(meter))
	return d, nil
}

// RunnerConfig returns a runner configuration with the common Kafka settings, metrics and tracing.
func (d *Deps) RunnerConfig(stage string, topics []string) (stream.Config, error) {
	m, err := stream.NewMetrics(d.Tel.Meter("vigil/stream"), stage)
	if err != nil {
		return stream.Config{}, fmt.Errorf("stream metrics: %w", err)
	}
	return stream.Config{
		Stage:        stage,
		Group:        d.Common.Group,
		Topics:       topics,
		Kafka:        d.Common.Kafka,
		MaxBatch:     d.Common.MaxBatch,
		DrainTimeout: d.Common.ShutdownTimeout,
		Metrics:      m,
		Tracer:       d.Tracer,
		ExtraOpts:    []kgo.Opt{kgo.WithHooks(d.Kotel.Hooks()...)},
	}, nil
}

// Shutdown flushes telemetry.
func (d *Deps) Shutdown(ctx context.Context) error { return d.Tel.Shutdown(ctx) }

// Ops serves /healthz, /readyz, /metrics until ctx ends. ready reports whether the runner
// polled Kafka; checks adds dependency checks (Redis, ThreatQ, …).
func (d *Deps) Ops(ctx context.Context, ready func() bool, checks []telemetry.Check, extra map[string]http.Handler) error {
	all := append([]telemetry.Check{{Name: "kafka", Fn: func(context.Context) error {
		if !ready() {
			return fmt.Errorf("not yet consuming")
		}
		return nil
	}}}, checks...)
	return telemetry.Serve(ctx, d.Common.OpsAddr, telemetry.Handler(d.Tel, all, extra))
}

// NewRedis connects to Redis when configured; it returns nil, nil without an address.
func NewRedis(ctx context.Context, c RedisConfig) (redis.UniversalClient, error) {
	if c.Addr == "" {
		return nil, nil
	}
	opt := &redis.Options{Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
		PoolSize: c.PoolSize, MaxRetries: c.MaxRetries}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("read redis CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("redis CA %s: no certificates", c.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		opt.TLSConfig = tc
	}
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", c.Addr, err)
	}
	return rdb, nil
}

// RedisCheck is a readiness check for a Redis client (nil client: always ready).
func RedisCheck(rdb redis.UniversalClient) telemetry.Check {
	return telemetry.Check{Name: "redis", Fn: func(ctx context.Context) error {
		if rdb == nil {
			return nil
		}
		return rdb.Ping(ctx).Err()
	}}
}
