package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// otlpExporter sends finished spans to an OpenTelemetry collector over OTLP/HTTP with the JSON
// encoding of the protocol (POST application/json to the traces URL).
//
// Why not the SDK's otlptracehttp exporter: it links gRPC and the generated protobuf packages into
// every service (+18 MB of binary and +5 MiB of resident memory per process, measured on correlate,
// whose budget is 150 MiB), for a payload this file encodes in a hundred lines. The encoding is
// checked in the tests by decoding it with the official OTLP protobuf types (protojson).
type otlpExporter struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func newOTLPExporter(url string, headers map[string]string) *otlpExporter {
	return &otlpExporter{url: url, headers: headers, client: &http.Client{Timeout: 10 * time.Second}}
}

// OTLP JSON shapes (opentelemetry-proto, trace/v1 and common/v1; 64-bit integers as strings,
// trace and span ids as lowercase hex, enums as numbers).
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name    string `json:"name,omitempty"`
		Version string `json:"version,omitempty"`
	}
	otlpSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		ParentSpanID      string         `json:"parentSpanId,omitempty"`
		Name              string         `json:"name"`
		Kind              int            `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []otlpKeyValue `json:"attributes,omitempty"`
		Events            []otlpEvent    `json:"events,omitempty"`
		Links             []otlpLink     `json:"links,omitempty"`
		Status            otlpStatus     `json:"status"`
		DroppedAttributes int            `json:"droppedAttributesCount,omitempty"`
	}
	otlpEvent struct {
		TimeUnixNano string         `json:"timeUnixNano"`
		Name         string         `json:"name"`
		Attributes   []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpLink struct {
		TraceID    string         `json:"traceId"`
		SpanID     string         `json:"spanId"`
		Attributes []otlpKeyValue `json:"attributes,omitempty"`
	}
	otlpStatus struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		StringValue *string         `json:"stringValue,omitempty"`
		BoolValue   *bool           `json:"boolValue,omitempty"`
		IntValue    *string         `json:"intValue,omitempty"`
		DoubleValue *float64        `json:"doubleValue,omitempty"`
		ArrayValue  *otlpArrayValue `json:"arrayValue,omitempty"`
	}
	otlpArrayValue struct {
		Values []otlpAnyValue `json:"values"`
	}
)

// ExportSpans implements sdktrace.SpanExporter: one POST per batch, grouped by resource and scope.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	var req otlpRequest
	var resKeys []attribute.Distinct // resource of req.ResourceSpans[i]
	for _, s := range spans {
		res := s.Resource()
		var rs *otlpResourceSpans
		for i, k := range resKeys {
			if k == res.Equivalent() {
				rs = &req.ResourceSpans[i]
				break
			}
		}
		if rs == nil {
			req.ResourceSpans = append(req.ResourceSpans, otlpResourceSpans{Resource: otlpResource{Attributes: otlpAttrs(res.Attributes())}})
			resKeys = append(resKeys, res.Equivalent())
			rs = &req.ResourceSpans[len(req.ResourceSpans)-1]
		}
		scope := otlpScope{Name: s.InstrumentationScope().Name, Version: s.InstrumentationScope().Version}
		var ss *otlpScopeSpans
		for i := range rs.ScopeSpans {
			if rs.ScopeSpans[i].Scope == scope {
				ss = &rs.ScopeSpans[i]
				break
			}
		}
		if ss == nil {
			rs.ScopeSpans = append(rs.ScopeSpans, otlpScopeSpans{Scope: scope})
			ss = &rs.ScopeSpans[len(rs.ScopeSpans)-1]
		}
		ss.Spans = append(ss.Spans, otlpSpanOf(s))
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode OTLP spans: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("OTLP request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	for k, v := range e.headers {
		hreq.Header.Set(k, v)
	}
	resp, err := e.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("export %d spans: %w", len(spans), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("export %d spans: collector answered %s", len(spans), resp.Status)
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (e *otlpExporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

func otlpSpanOf(s sdktrace.ReadOnlySpan) otlpSpan {
	sc := s.SpanContext()
	out := otlpSpan{
		TraceID:           sc.TraceID().String(),
		SpanID:            sc.SpanID().String(),
		Name:              s.Name(),
		Kind:              int(s.SpanKind()), // trace.SpanKind numbers match OTLP's SpanKind
		StartTimeUnixNano: unixNano(s.StartTime()),
		EndTimeUnixNano:   unixNano(s.EndTime()),
		Attributes:        otlpAttrs(s.Attributes()),
		DroppedAttributes: s.DroppedAttributes(),
		Status:            otlpStatus{Message: s.Status().Description},
	}
	if p := s.Parent(); p.IsValid() {
		out.ParentSpanID = p.SpanID().String()
	}
	switch s.Status().Code { // OTLP: 0 unset, 1 ok, 2 error
	case codes.Ok:
		out.Status.Code = 1
	case codes.Error:
		out.Status.Code = 2
	}
	for _, ev := range s.Events() {
		out.Events = append(out.Events, otlpEvent{TimeUnixNano: unixNano(ev.Time), Name: ev.Name, Attributes: otlpAttrs(ev.Attributes)})
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, otlpLink{TraceID: l.SpanContext.TraceID().String(),
			SpanID: l.SpanContext.SpanID().String(), Attributes: otlpAttrs(l.Attributes)})
	}
	return out
}

func unixNano(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func otlpAttrs(kvs []attribute.KeyValue) []otlpKeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]otlpKeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, otlpKeyValue{Key: string(kv.Key), Value: otlpValue(kv.Value)})
	}
	return out
}

func otlpValue(v attribute.Value) otlpAnyValue {
	str := func(s string) otlpAnyValue { return otlpAnyValue{StringValue: &s} }
	boolean := func(b bool) otlpAnyValue { return otlpAnyValue{BoolValue: &b} }
	integer := func(n int64) otlpAnyValue { s := strconv.FormatInt(n, 10); return otlpAnyValue{IntValue: &s} }
	double := func(f float64) otlpAnyValue {
		if math.IsNaN(f) || math.IsInf(f, 0) { // not representable in JSON numbers
			return str(strconv.FormatFloat(f, 'g', -1, 64))
		}
		return otlpAnyValue{DoubleValue: &f}
	}
	array := func(vs []otlpAnyValue) otlpAnyValue { return otlpAnyValue{ArrayValue: &otlpArrayValue{Values: vs}} }
	switch v.Type() {
	case attribute.BOOL:
		return boolean(v.AsBool())
	case attribute.INT64:
		return integer(v.AsInt64())
	case attribute.FLOAT64:
		return double(v.AsFloat64())
	case attribute.BOOLSLICE:
		return array(mapSlice(v.AsBoolSlice(), boolean))
	case attribute.INT64SLICE:
		return array(mapSlice(v.AsInt64Slice(), integer))
	case attribute.FLOAT64SLICE:
		return array(mapSlice(v.AsFloat64Slice(), double))
	case attribute.STRINGSLICE:
		return array(mapSlice(v.AsStringSlice(), str))
	}
	return str(v.Emit())
}

func mapSlice[T any](in []T, f func(T) otlpAnyValue) []otlpAnyValue {
	out := make([]otlpAnyValue, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}
