package telemetry

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// collector is a minimal OTLP/HTTP traces receiver: it decodes every export request with the
// official OTLP protobuf types and their JSON mapping (strict: an unknown field or a wrong type
// is a 400, as a collector would answer), after undoing OTLP/JSON's one deviation from that
// mapping: trace and span ids are hex strings, not base64.
type collector struct {
	mu      sync.Mutex
	reqs    []*coltrace.ExportTraceServiceRequest
	paths   []string
	headers []http.Header
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON body", http.StatusBadRequest)
		return
	}
	// the collector's own OTLP/JSON decoder must read it too (it knows the hex ids)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		http.Error(w, "collector decoder: "+err.Error(), http.StatusBadRequest)
		return
	}
	if td.SpanCount() == 0 {
		http.Error(w, "collector decoder: no spans", http.StatusBadRequest)
		return
	}
	body, err = hexIDsToBase64(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, &req)
	c.paths = append(c.paths, r.URL.Path)
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

// hexIDsToBase64 rewrites every traceId, spanId and parentSpanId of an OTLP/JSON document from
// hex (16 or 8 bytes) to the base64 that protojson expects.
func hexIDsToBase64(body []byte) ([]byte, error) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				size := map[string]int{"traceId": 16, "spanId": 8, "parentSpanId": 8}[k]
				if s, ok := val.(string); ok && size > 0 {
					b, err := hex.DecodeString(s)
					if err != nil || len(b) != size {
						return fmt.Errorf("%s %q: want %d bytes in hex", k, s, size)
					}
					x[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
				if err := walk(val); err != nil {
					return err
				}
			}
		case []any:
			for _, val := range x {
				if err := walk(val); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// TestOTLPExport: with an OTLP endpoint set, finished spans reach the collector over OTLP/HTTP
// on /v1/traces with the configured headers, the service's name as the resource, and the
// parent/child link of one trace.
func TestOTLPExport(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	tel, err := Setup(Config{Service: "test", LogOutput: io.Discard, OTLPEndpoint: srv.URL,
		OTLPHeaders: map[string]string{"Authorization": "Bearer t0ken"}})
	if err != nil {
		t.Fatal(err)
	}
	tr := tel.TracerProvider.Tracer("otlp-test")
	ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindConsumer))
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("s", "v"), attribute.Bool("b", true), attribute.Int64("i", math.MaxInt64),
		attribute.Float64("f", 0.5), attribute.Float64("nan", math.NaN()), attribute.StringSlice("ss", []string{"a", "b"}),
		attribute.Int64Slice("is", []int64{1, -2})))
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	child.SetStatus(codes.Error, "ThreatQ 503")
	child.End()
	parent.SetStatus(codes.Ok, "")
	parent.End()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil { // flushes the batcher
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.reqs) == 0 {
		t.Fatal("collector received nothing")
	}
	spans := map[string]*tracepb.Span{}
	services := map[string]string{}
	for i, req := range col.reqs {
		if col.paths[i] != "/v1/traces" {
			t.Errorf("export to %s, want /v1/traces", col.paths[i])
		}
		if h := col.headers[i].Get("Authorization"); h != "Bearer t0ken" {
			t.Errorf("Authorization header %q", h)
		}
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				if ss.GetScope().GetName() != "otlp-test" {
					t.Errorf("scope %q, want otlp-test", ss.GetScope().GetName())
				}
				for _, sp := range ss.Spans {
					spans[sp.Name], services[sp.Name] = sp, service
				}
			}
		}
	}
	p, c := spans["parent"], spans["child"]
	if p == nil || c == nil {
		t.Fatalf("spans received: %v, want parent and child", spans)
	}
	if services["parent"] != "vigil-test" || services["child"] != "vigil-test" {
		t.Errorf("service names %v, want vigil-test", services)
	}
	if hex.EncodeToString(c.TraceId) != hex.EncodeToString(p.TraceId) || hex.EncodeToString(c.ParentSpanId) != hex.EncodeToString(p.SpanId) {
		t.Errorf("child is not in the parent's trace under the parent")
	}
	if len(p.TraceId) != 16 || len(p.SpanId) != 8 {
		t.Errorf("id lengths %d/%d bytes, want 16/8 (lowercase hex decoded by the collector)", len(p.TraceId), len(p.SpanId))
	}
	if p.Kind != tracepb.Span_SPAN_KIND_CONSUMER || c.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kinds %v, %v", p.Kind, c.Kind)
	}
	if p.Status.GetCode() != tracepb.Status_STATUS_CODE_OK || c.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || c.Status.GetMessage() != "ThreatQ 503" {
		t.Errorf("statuses %v, %v", p.Status, c.Status)
	}
	if c.StartTimeUnixNano == 0 || c.EndTimeUnixNano < c.StartTimeUnixNano {
		t.Errorf("times %d..%d", c.StartTimeUnixNano, c.EndTimeUnixNano)
	}
	attrs := map[string]string{}
	for _, kv := range c.Attributes {
		attrs[kv.Key] = protojson.Format(kv.Value)
	}
	for k, want := range map[string]string{
		"s": `{"stringValue":"v"}`, "b": `{"boolValue":true}`, "i": `{"intValue":"9223372036854775807"}`,
		"f": `{"doubleValue":0.5}`, "nan": `{"stringValue":"NaN"}`,
		"ss": `{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}`,
		"is": `{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"-2"}]}}`,
	} {
		if got := compact(attrs[k]); got != want {
			t.Errorf("attribute %s = %s, want %s", k, got, want)
		}
	}
	if len(c.Events) != 1 || c.Events[0].Name != "retry" || c.Events[0].TimeUnixNano == 0 {
		t.Errorf("events %v", c.Events)
	}
}

// compact drops the spaces protojson.Format may put between tokens.
func compact(s string) string {
	out := make([]byte, 0, len(s))
	inStr := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '"' && (i == 0 || s[i-1] != '\\') {
			inStr = !inStr
		}
		if !inStr && (ch == ' ' || ch == '\n') {
			continue
		}
		out = append(out, ch)
	}
	return string(out)
}

// TestOTLPExportError: a collector that refuses the spans makes the export return an error
// naming its status (the SDK reports it; records are never held up by tracing).
func TestOTLPExportError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "quota", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, sp := tp.Tracer("t").Start(context.Background(), "x")
	sp.End()
	exp := newOTLPExporter(srv.URL+"/v1/traces", nil)
	if err := exp.ExportSpans(context.Background(), nil); err != nil {
		t.Fatalf("empty export: %v", err)
	}
	err := exp.ExportSpans(context.Background(), rec.Ended())
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("err = %v, want the collector's 429", err)
	}
}

func TestOTLPTracesURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://collector:4318", "http://collector:4318/v1/traces"},
		{"https://collector:4318/", "https://collector:4318/v1/traces"},
		{"https://gw.example/otlp/v1/traces", "https://gw.example/otlp/v1/traces"},
		{"collector:4318", ""},
		{"ftp://collector", ""},
		{"http://", ""},
	} {
		got, err := OTLPTracesURL(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
