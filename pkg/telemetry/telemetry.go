// Package telemetry sets up what every Vigil service shares for operations: a JSON slog logger,
// OpenTelemetry metrics exported for Prometheus, tracing with W3C trace context, and the ops HTTP
// server (/healthz, /readyz, /metrics, /debug/pprof).
//
//	tel, err := telemetry.Setup(telemetry.Config{Service: "enrich", TraceFile: cfg.TraceFile})
//	if err != nil { return err }
//	defer tel.Shutdown(ctx)
//	g.Go(func() error { return telemetry.Serve(ctx, cfg.OpsAddr, tel, checks) })
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Config configures telemetry for one service.
type Config struct {
	Service   string
	LogLevel  string    // debug, info, warn, error
	LogOutput io.Writer // default os.Stderr
	// TraceFile, when set, appends finished spans as JSON lines (one per span) to this file.
	TraceFile string
	// OTLPEndpoint, when set, exports finished spans over OTLP/HTTP (JSON encoding) to this collector
	// URL: a base such as http://otel-collector:4318 (spans go to its /v1/traces) or a full
	// traces URL. OTLPHeaders are sent with every export (e.g. an Authorization header).
	OTLPEndpoint string
	OTLPHeaders  map[string]string
	// TraceSampleRatio samples root spans (0..1); 0 means 1 when TraceFile or OTLPEndpoint is
	// set, else no tracing.
	TraceSampleRatio float64
}

// Tracing reports whether the configuration exports spans anywhere.
func (c Config) Tracing() bool {
	return c.TraceFile != "" || c.OTLPEndpoint != "" || c.TraceSampleRatio > 0
}

// OTLPTracesURL is the traces URL of an OTLP/HTTP endpoint: a URL without a path gets /v1/traces.
func OTLPTracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q: want an http(s) URL such as http://collector:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Telemetry holds the providers of one service.
type Telemetry struct {
	Logger         *slog.Logger
	MeterProvider  *sdkmetric.MeterProvider
	TracerProvider trace.TracerProvider
	Registry       *prometheus.Registry

	sdkTP   *sdktrace.TracerProvider
	closeTF io.Closer
}

// Meter returns a meter for an instrumentation scope.
func (t *Telemetry) Meter(name string) metric.Meter { return t.MeterProvider.Meter(name) }

// NewLogger returns a JSON slog logger at the given level.
func NewLogger(w io.Writer, level, service string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})
	return slog.New(traceHandler{h}).With("service", service), nil
}

// traceHandler adds trace_id and span_id from the context to every record.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}
func (h traceHandler) WithGroup(n string) slog.Handler { return traceHandler{h.Handler.WithGroup(n)} }

// Setup builds the logger, meter provider (Prometheus exporter) and tracer provider.
func Setup(cfg Config) (*Telemetry, error) {
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	log, err := NewLogger(cfg.LogOutput, cfg.LogLevel, cfg.Service)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("vigil-" + cfg.Service))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t := &Telemetry{Logger: log, MeterProvider: mp, Registry: reg}

	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	ratio := cfg.TraceSampleRatio
	if (cfg.TraceFile != "" || cfg.OTLPEndpoint != "") && ratio == 0 {
		ratio = 1
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if cfg.TraceFile != "" {
		f, err := os.OpenFile(cfg.TraceFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open trace file: %w", err)
		}
		t.closeTF = f
		opts = append(opts, sdktrace.WithBatcher(&fileExporter{w: f}, sdktrace.WithBatchTimeout(time.Second)))
	}
	if cfg.OTLPEndpoint != "" {
		u, err := OTLPTracesURL(cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		exp := newOTLPExporter(u, cfg.OTLPHeaders)
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	t.sdkTP = sdktrace.NewTracerProvider(opts...)
	t.TracerProvider = t.sdkTP
	otel.SetTracerProvider(t.sdkTP)
	return t, nil
}

// Shutdown flushes spans and metrics.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.sdkTP != nil {
		errs = append(errs, t.sdkTP.Shutdown(ctx))
	}
	errs = append(errs, t.MeterProvider.Shutdown(ctx))
	if t.closeTF != nil {
		errs = append(errs, t.closeTF.Close())
	}
	return errors.Join(errs...)
}

// SpanLine is one finished span as written to the trace file.
type SpanLine struct {
	Service  string    `json:"service"`
	Name     string    `json:"name"`
	TraceID  string    `json:"trace_id"`
	SpanID   string    `json:"span_id"`
	ParentID string    `json:"parent_id,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

type fileExporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (e *fileExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	enc := json.NewEncoder(e.w)
	for _, s := range spans {
		line := SpanLine{Name: s.Name(), TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
			Start: s.StartTime(), End: s.EndTime()}
		if p := s.Parent(); p.IsValid() {
			line.ParentID = p.SpanID().String()
		}
		for _, kv := range s.Resource().Attributes() {
			if kv.Key == semconv.ServiceNameKey {
				line.Service = kv.Value.AsString()
			}
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

func (e *fileExporter) Shutdown(context.Context) error { return nil }

// Check is one readiness check; it returns nil when the dependency is ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Handler returns the ops mux: /healthz (process alive), /readyz (every check passes),
// /metrics (Prometheus) and /debug/pprof.
func Handler(t *Telemetry, checks []Check, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				status[c.Name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[c.Name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/heap", pprof.Index)
	for p, h := range extra {
		mux.Handle(p, h)
	}
	return mux
}

// Serve runs the ops server on addr until ctx is cancelled. An empty addr disables it.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ops listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("ops server: %w", err)
	}
}

// SignalContext returns a context cancelled on the first SIGINT/SIGTERM; a second signal exits
// the process at once with status 130. stop releases the signal handler.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	return signalContext(parent)
}
