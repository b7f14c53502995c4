package service

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// TestLoadCommonOTLP: the OTLP endpoint is validated by name, its headers parse as name=value
// pairs, and header values are secrets: listed for scrubbing, never echoed in an error.
func TestLoadCommonOTLP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		headers map[string]string
		errVar  string
	}{
		{"off", nil, nil, ""},
		{"endpoint and headers", map[string]string{"VIGIL_OTLP_ENDPOINT": "http://collector:4318",
			"VIGIL_OTLP_HEADERS":          "Authorization=Bearer s3cret, X-Tenant = soc",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318", "OTEL_EXPORTER_OTLP_HEADERS": "X-Ignored=1"},
			map[string]string{"Authorization": "Bearer s3cret", "X-Tenant": "soc"}, ""},
		{"endpoint without scheme", map[string]string{"VIGIL_OTLP_ENDPOINT": "collector:4318"}, nil, "VIGIL_OTLP_ENDPOINT"},
		{"OpenTelemetry's variables", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://col:4318/",
			"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cret"},
			map[string]string{"Authorization": "Bearer s3cret"}, ""},
		{"OpenTelemetry's gRPC endpoint ignored", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://col:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, nil, ""},
		{"bad OpenTelemetry endpoint named", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "col:4318"}, nil, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"header without value", map[string]string{"VIGIL_OTLP_HEADERS": "Authorization Bearer s3cret"}, nil, "VIGIL_OTLP_HEADERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := envconf.New(envconf.FromMap(tc.env))
			c := LoadCommon(e, "test", "127.0.0.1:0")
			err := e.Err()
			if tc.errVar != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errVar) {
					t.Fatalf("err = %v, want one naming %s", err, tc.errVar)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(c.OTLPHeaders, tc.headers) {
				t.Fatalf("headers %v, want %v", c.OTLPHeaders, tc.headers)
			}
			wantURL := map[string]string{"endpoint and headers": "http://collector:4318", "OpenTelemetry's variables": "http://col:4318/v1/traces"}[tc.name]
			if c.OTLPEndpoint != wantURL {
				t.Fatalf("endpoint %q, want %q", c.OTLPEndpoint, wantURL)
			}
			for _, v := range tc.headers {
				if !slices.Contains(c.Secrets(), v) {
					t.Errorf("header value %q not among the secrets to scrub", v)
				}
			}
		})
	}
}
