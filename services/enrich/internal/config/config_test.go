package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
)

func load(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	return Load(envconf.New(envconf.FromMap(env)))
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.InTopic != "indicators.observed" || c.OutTopic != "indicators.enriched" {
		t.Errorf("topics = %q -> %q", c.InTopic, c.OutTopic)
	}
	if c.Common.OpsAddr != DefaultOpsAddr || c.Common.Group != "vigil-enrich" {
		t.Errorf("ops %q group %q", c.Common.OpsAddr, c.Common.Group)
	}
	want := map[string]bool{"criminalip": false, "internetdb": true, "abuseipdb": false, "greynoise": false, "offline": true}
	if len(c.Providers) != len(want) {
		t.Fatalf("%d providers, want %d", len(c.Providers), len(want))
	}
	for _, p := range c.Providers {
		if p.Settings.Enabled != want[p.Name] {
			t.Errorf("%s enabled = %t, want %t", p.Name, p.Settings.Enabled, want[p.Name])
		}
	}
	ab, _ := c.Provider("abuseipdb")
	if len(ab.Settings.Quotas) != 1 || ab.Settings.Quotas[0] != (limit.Quota{Window: 24 * time.Hour, Limit: 1000}) {
		t.Errorf("abuseipdb quotas = %v", ab.Settings.Quotas)
	}
	cip, _ := c.Provider("criminalip")
	if cip.Settings.MaxConcurrent != 1 || cip.BaseURL != "https://api.criminalip.io" {
		t.Errorf("criminalip defaults: %+v", cip)
	}
	off, _ := c.Provider("offline")
	if off.Dir != "data/geo" {
		t.Errorf("offline dir = %q", off.Dir)
	}
	ec := c.Enricher()
	if len(ec.Providers) != 5 || ec.Providers["criminalip"].CredentialFingerprint != "anon" {
		t.Errorf("enricher config providers: %+v", ec.Providers)
	}
}

func TestKeyEnablesAndIsFingerprinted(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("file-secret-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, map[string]string{
		"VIGIL_ENRICH_CRIMINALIP_API_KEY":     "cip-secret-abc",
		"VIGIL_ENRICH_ABUSEIPDB_API_KEY_FILE": keyFile,
		"VIGIL_ENRICH_CRIMINALIP_QUOTAS":      "1m=60, 24h=1000,720h=10000",
		"VIGIL_ENRICH_CRIMINALIP_TYPES":       "ipv4",
		"VIGIL_ENRICH_CRIMINALIP_REQUIRED":    "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	cip, _ := c.Provider("criminalip")
	ab, _ := c.Provider("abuseipdb")
	if !cip.Settings.Enabled || !ab.Settings.Enabled || !cip.Settings.Required {
		t.Fatalf("keys should enable criminalip and abuseipdb: %+v %+v", cip.Settings, ab.Settings)
	}
	if ab.APIKey != "file-secret-123" {
		t.Errorf("key from file = %q", ab.APIKey)
	}
	if len(cip.Settings.Quotas) != 3 || cip.Settings.Quotas[2].Window != 720*time.Hour {
		t.Errorf("quotas = %v", cip.Settings.Quotas)
	}
	if fp := c.Enricher().Providers["criminalip"].CredentialFingerprint; fp == "anon" || strings.Contains(fp, "secret") {
		t.Errorf("fingerprint = %q", fp)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	for _, s := range []string{"cip-secret-abc", "file-secret-123"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("secret %q logged: %s", s, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "fingerprint") {
		t.Errorf("log should say a key is set: %s", buf.String())
	}
	if got := c.Secrets(); len(got) < 2 {
		t.Errorf("Secrets() = %d values", len(got))
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"enabled without key", map[string]string{"VIGIL_ENRICH_CRIMINALIP_ENABLED": "true"}, "VIGIL_ENRICH_CRIMINALIP_API_KEY"},
		{"abuseipdb enabled without key", map[string]string{"VIGIL_ENRICH_ABUSEIPDB_ENABLED": "yes"}, "VIGIL_ENRICH_ABUSEIPDB_API_KEY"},
		{"unreadable key file", map[string]string{"VIGIL_ENRICH_CRIMINALIP_API_KEY_FILE": "/nonexistent/key"}, "VIGIL_ENRICH_CRIMINALIP_API_KEY_FILE"},
		{"bad bool", map[string]string{"VIGIL_ENRICH_INTERNETDB_ENABLED": "maybe"}, "VIGIL_ENRICH_INTERNETDB_ENABLED"},
		{"bad base url", map[string]string{"VIGIL_ENRICH_INTERNETDB_BASE_URL": "ftp://x"}, "VIGIL_ENRICH_INTERNETDB_BASE_URL"},
		{"base url with query", map[string]string{"VIGIL_ENRICH_INTERNETDB_BASE_URL": "http://127.0.0.1:1/?a=b"}, "VIGIL_ENRICH_INTERNETDB_BASE_URL"},
		{"bad timeout", map[string]string{"VIGIL_ENRICH_INTERNETDB_TIMEOUT": "ten"}, "VIGIL_ENRICH_INTERNETDB_TIMEOUT"},
		{"zero timeout", map[string]string{"VIGIL_ENRICH_INTERNETDB_TIMEOUT": "0s"}, "VIGIL_ENRICH_INTERNETDB_TIMEOUT"},
		{"zero ttl", map[string]string{"VIGIL_ENRICH_INTERNETDB_TTL_HIT": "0s"}, "VIGIL_ENRICH_INTERNETDB_TTL_HIT"},
		{"negative ttl", map[string]string{"VIGIL_ENRICH_OFFLINE_TTL_NOT_FOUND": "-1h"}, "VIGIL_ENRICH_OFFLINE_TTL_NOT_FOUND"},
		{"negative rate", map[string]string{"VIGIL_ENRICH_INTERNETDB_RATE": "-1"}, "VIGIL_ENRICH_INTERNETDB_RATE"},
		{"rate not a number", map[string]string{"VIGIL_ENRICH_INTERNETDB_RATE": "fast"}, "VIGIL_ENRICH_INTERNETDB_RATE"},
		{"negative burst", map[string]string{"VIGIL_ENRICH_INTERNETDB_BURST": "-2"}, "VIGIL_ENRICH_INTERNETDB_BURST"},
		{"negative concurrency", map[string]string{"VIGIL_ENRICH_INTERNETDB_MAX_CONCURRENT": "-1"}, "VIGIL_ENRICH_INTERNETDB_MAX_CONCURRENT"},
		{"quota without =", map[string]string{"VIGIL_ENRICH_INTERNETDB_QUOTAS": "24h"}, "VIGIL_ENRICH_INTERNETDB_QUOTAS"},
		{"quota bad window", map[string]string{"VIGIL_ENRICH_INTERNETDB_QUOTAS": "day=10"}, "VIGIL_ENRICH_INTERNETDB_QUOTAS"},
		{"quota zero calls", map[string]string{"VIGIL_ENRICH_INTERNETDB_QUOTAS": "24h=0"}, "VIGIL_ENRICH_INTERNETDB_QUOTAS"},
		{"quota duplicate window", map[string]string{"VIGIL_ENRICH_INTERNETDB_QUOTAS": "24h=10,1440m=20"}, "VIGIL_ENRICH_INTERNETDB_QUOTAS"},
		{"unknown type", map[string]string{"VIGIL_ENRICH_INTERNETDB_TYPES": "ipv4,hostname"}, "VIGIL_ENRICH_INTERNETDB_TYPES"},
		{"type not served", map[string]string{"VIGIL_ENRICH_INTERNETDB_TYPES": "domain"}, "VIGIL_ENRICH_INTERNETDB_TYPES"},
		{"required but disabled", map[string]string{"VIGIL_ENRICH_GREYNOISE_REQUIRED": "true"}, "VIGIL_ENRICH_GREYNOISE_REQUIRED"},
		{"abuse max age", map[string]string{"VIGIL_ENRICH_ABUSEIPDB_MAX_AGE_DAYS": "400"}, "VIGIL_ENRICH_ABUSEIPDB_MAX_AGE_DAYS"},
		{"nothing enabled", map[string]string{"VIGIL_ENRICH_INTERNETDB_ENABLED": "false", "VIGIL_ENRICH_OFFLINE_ENABLED": "false"}, "no provider is enabled"},
		{"lock shorter than retries", map[string]string{"VIGIL_ENRICH_LOCK_TTL": "30s"}, "VIGIL_ENRICH_LOCK_TTL"},
		{"lock vs slow provider", map[string]string{"VIGIL_ENRICH_INTERNETDB_TIMEOUT": "45s"}, "VIGIL_ENRICH_LOCK_TTL"},
		{"l1 size", map[string]string{"VIGIL_ENRICH_L1_SIZE": "0"}, "VIGIL_ENRICH_L1_SIZE"},
		{"concurrency", map[string]string{"VIGIL_ENRICH_CONCURRENCY": "0"}, "VIGIL_ENRICH_CONCURRENCY"},
		{"retry attempts", map[string]string{"VIGIL_ENRICH_RETRY_ATTEMPTS": "0"}, "VIGIL_ENRICH_RETRY_ATTEMPTS"},
		{"retry max below initial", map[string]string{"VIGIL_ENRICH_RETRY_INITIAL": "2s", "VIGIL_ENRICH_RETRY_MAX": "1s"}, "VIGIL_ENRICH_RETRY_MAX"},
		{"breaker failures", map[string]string{"VIGIL_ENRICH_BREAKER_FAILURES": "0"}, "VIGIL_ENRICH_BREAKER_FAILURES"},
		{"breaker probes", map[string]string{"VIGIL_ENRICH_BREAKER_PROBES": "0"}, "VIGIL_ENRICH_BREAKER_PROBES"},
		{"network preference", map[string]string{"VIGIL_ENRICH_NETWORK_PREFERENCE": "criminalip,maxmind"}, "VIGIL_ENRICH_NETWORK_PREFERENCE"},
		{"same topics", map[string]string{"VIGIL_TOPIC_ENRICHED": "indicators.observed"}, "VIGIL_TOPIC_ENRICHED"},
		{"internal nets", map[string]string{"VIGIL_INTERNAL_NETS": "10.0.0.0/33"}, "VIGIL_INTERNAL_NETS"},
		{"common batch", map[string]string{"VIGIL_MAX_BATCH": "0"}, "VIGIL_MAX_BATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.env)
			if err == nil {
				t.Fatalf("no error, want one naming %s", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not name %s", err, tt.wantErr)
			}
		})
	}
}

// A secret never appears in a validation error.
func TestSecretNotInErrors(t *testing.T) {
	_, err := load(t, map[string]string{
		"VIGIL_ENRICH_CRIMINALIP_API_KEY":  "very-secret-key",
		"VIGIL_ENRICH_CRIMINALIP_BASE_URL": "http://user:very-secret-key@127.0.0.1/",
	})
	if err == nil {
		t.Fatal("want an error for a base URL with credentials")
	}
	if strings.Contains(err.Error(), "very-secret-key") {
		t.Fatalf("secret in error: %v", err)
	}
}

func TestParseQuotas(t *testing.T) {
	tests := []struct {
		in   string
		want []limit.Quota
	}{
		{"none", nil},
		{"", nil},
		{"1m=60", []limit.Quota{{Window: time.Minute, Limit: 60}}},
		{"1m=60,24h=1000", []limit.Quota{{Window: time.Minute, Limit: 60}, {Window: 24 * time.Hour, Limit: 1000}}},
	}
	for _, tt := range tests {
		got, err := ParseQuotas(tt.in)
		if err != nil {
			t.Errorf("ParseQuotas(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseQuotas(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseQuotas(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

func TestFmtDuration(t *testing.T) {
	tests := map[time.Duration]string{
		24 * time.Hour: "24h", time.Minute: "1m", 90 * time.Minute: "1h30m", 10 * time.Second: "10s",
		720 * time.Hour: "720h", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s",
	}
	for d, want := range tests {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
