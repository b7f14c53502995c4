package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

func load(env map[string]string) (Config, error) {
	return Load(envconf.New(envconf.FromMap(env)))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"in topic", c.InTopic, "indicators.verdicts"},
		{"feedback topic", c.FeedbackTopic, "indicators.feedback"},
		{"url", c.ThreatQ.BaseURL, DefaultThreatQURL},
		{"insecure on loopback", c.ThreatQ.AllowInsecureHTTP, true},
		{"client id", c.ThreatQ.ClientID, tqemu.DefaultClientID},
		{"email", c.ThreatQ.Email, tqemu.DefaultEmail},
		{"password", c.ThreatQ.Password, tqemu.DefaultPassword},
		{"timeout", c.ThreatQ.Timeout, 30 * time.Second},
		{"batch size", c.Writer.BatchSize, 500},
		{"flush max", c.FlushMax(), 10000},
		{"flush interval", c.FlushInterval(), 500 * time.Millisecond},
		{"write concurrency", c.Writer.Concurrency, 8},
		{"consume concurrency", c.Writer.ChunkConcurrency, 4},
		{"threatq idle connections", c.ThreatQ.MaxIdleConns, 36},
		{"tlp", c.Writer.TLP, "AMBER"},
		{"block status", c.Writer.Statuses["block"], "Active"},
		{"suppress status", c.Writer.Statuses["suppress"], "Whitelisted"},
		{"fingerprint ttl", c.FingerprintTTL, 720 * time.Hour},
		{"feedback interval", c.FeedbackInterval, time.Minute},
		{"ops addr", c.Common.OpsAddr, "127.0.0.1:9404"},
		{"group", c.Common.Group, "vigil-sink"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(map[string]string{
		"VIGIL_THREATQ_URL":                "https://tq.example.org",
		"VIGIL_THREATQ_CLIENT_ID":          "prod",
		"VIGIL_THREATQ_CLIENT_SECRET_FILE": secret,
		"VIGIL_SINK_STATUS_MAP":            "review=Under Review, suppress = False Positive",
		"VIGIL_SINK_SOURCE_NAMES":          "criminalip=Criminal IP",
		"VIGIL_SINK_TLP":                   "green",
		"VIGIL_SINK_FLUSH_MAX":             "2000",
		"VIGIL_SINK_FLUSH_INTERVAL":        "500ms",
		"VIGIL_SINK_FEEDBACK_INTERVAL":     "0",
		"VIGIL_SINK_OMIT_ATTRIBUTES":       "Sightings 24h, Distinct Assets",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ThreatQ.AllowInsecureHTTP || c.ThreatQ.ClientSecret != "s3cret" || c.ThreatQ.Email != "" {
		t.Errorf("threatq = %v (secret read %v)", c.ThreatQ, c.ThreatQ.ClientSecret == "s3cret")
	}
	if c.Writer.Statuses["review"] != "Under Review" || c.Writer.Statuses["suppress"] != "False Positive" || c.Writer.Statuses["block"] != "Active" {
		t.Errorf("statuses = %v", c.Writer.Statuses)
	}
	if c.Writer.SourceNames["criminalip"] != "Criminal IP" || c.Writer.TLP != "GREEN" {
		t.Errorf("source names %v, tlp %s", c.Writer.SourceNames, c.Writer.TLP)
	}
	if c.FlushMax() != 2000 || c.FlushInterval() != 500*time.Millisecond || c.FeedbackInterval != 0 {
		t.Errorf("window %d/%s, feedback %s", c.FlushMax(), c.FlushInterval(), c.FeedbackInterval)
	}
	if got := strings.Join(c.Writer.OmitAttributes, "|"); got != "Sightings 24h|Distinct Assets" {
		t.Errorf("omitted attributes %q", got)
	}
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	remote := func(kv ...string) map[string]string {
		m := map[string]string{"VIGIL_THREATQ_URL": "https://tq.example.org", "VIGIL_THREATQ_CLIENT_ID": "id",
			"VIGIL_THREATQ_CLIENT_SECRET": "s"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"url not a url", map[string]string{"VIGIL_THREATQ_URL": "tq.example.org"}, "VIGIL_THREATQ_URL"},
		{"url bad scheme", map[string]string{"VIGIL_THREATQ_URL": "ftp://127.0.0.1"}, "VIGIL_THREATQ_URL"},
		{"remote http", remote("VIGIL_THREATQ_URL", "http://tq.example.org"), "must use https"},
		{"loopback http refused", map[string]string{"VIGIL_THREATQ_ALLOW_INSECURE_HTTP": "false"}, "VIGIL_THREATQ_URL"},
		{"insecure not bool", map[string]string{"VIGIL_THREATQ_ALLOW_INSECURE_HTTP": "maybe"}, "VIGIL_THREATQ_ALLOW_INSECURE_HTTP"},
		{"remote no client id", remote("VIGIL_THREATQ_CLIENT_ID", ""), "VIGIL_THREATQ_CLIENT_ID"},
		{"remote no credentials", remote("VIGIL_THREATQ_CLIENT_SECRET", ""), "VIGIL_THREATQ_CLIENT_SECRET"},
		{"email without password", remote("VIGIL_THREATQ_EMAIL", "a@b.c"), "VIGIL_THREATQ_PASSWORD"},
		{"password without email", remote("VIGIL_THREATQ_PASSWORD", "p"), "VIGIL_THREATQ_EMAIL"},
		{"secret file missing", remote("VIGIL_THREATQ_CLIENT_SECRET", "", "VIGIL_THREATQ_CLIENT_SECRET_FILE", "/nonexistent/secret"), "VIGIL_THREATQ_CLIENT_SECRET_FILE"},
		{"timeout zero", map[string]string{"VIGIL_THREATQ_TIMEOUT": "0s"}, "VIGIL_THREATQ_TIMEOUT"},
		{"timeout garbage", map[string]string{"VIGIL_THREATQ_TIMEOUT": "soon"}, "VIGIL_THREATQ_TIMEOUT"},
		{"batch too big", map[string]string{"VIGIL_SINK_BATCH_SIZE": "501"}, "VIGIL_SINK_BATCH_SIZE"},
		{"batch zero", map[string]string{"VIGIL_SINK_BATCH_SIZE": "0"}, "VIGIL_SINK_BATCH_SIZE"},
		{"flush max zero", map[string]string{"VIGIL_SINK_FLUSH_MAX": "0"}, "VIGIL_SINK_FLUSH_MAX"},
		{"flush max huge", map[string]string{"VIGIL_SINK_FLUSH_MAX": "1000000"}, "VIGIL_SINK_FLUSH_MAX"},
		{"flush interval zero", map[string]string{"VIGIL_SINK_FLUSH_INTERVAL": "0s"}, "VIGIL_SINK_FLUSH_INTERVAL"},
		{"flush interval long", map[string]string{"VIGIL_SINK_FLUSH_INTERVAL": "1h"}, "VIGIL_SINK_FLUSH_INTERVAL"},
		{"write concurrency zero", map[string]string{"VIGIL_SINK_WRITE_CONCURRENCY": "0"}, "VIGIL_SINK_WRITE_CONCURRENCY"},
		{"write concurrency huge", map[string]string{"VIGIL_SINK_WRITE_CONCURRENCY": "1000"}, "VIGIL_SINK_WRITE_CONCURRENCY"},
		{"consume concurrency zero", map[string]string{"VIGIL_SINK_CONSUME_CONCURRENCY": "0"}, "VIGIL_SINK_CONSUME_CONCURRENCY"},
		{"consume concurrency huge", map[string]string{"VIGIL_SINK_CONSUME_CONCURRENCY": "17"}, "VIGIL_SINK_CONSUME_CONCURRENCY"},
		{"status map no equals", map[string]string{"VIGIL_SINK_STATUS_MAP": "block"}, "VIGIL_SINK_STATUS_MAP"},
		{"status map unknown action", map[string]string{"VIGIL_SINK_STATUS_MAP": "quarantine=Active"}, "VIGIL_SINK_STATUS_MAP"},
		{"status map empty status", map[string]string{"VIGIL_SINK_STATUS_MAP": "block="}, "VIGIL_SINK_STATUS_MAP"},
		{"source names bad", map[string]string{"VIGIL_SINK_SOURCE_NAMES": "=x"}, "VIGIL_SINK_SOURCE_NAMES"},
		{"tlp unknown", map[string]string{"VIGIL_SINK_TLP": "PURPLE"}, "VIGIL_SINK_TLP"},
		{"max attempts zero", map[string]string{"VIGIL_SINK_MAX_ATTEMPTS": "0"}, "VIGIL_SINK_MAX_ATTEMPTS"},
		{"breaker failures zero", map[string]string{"VIGIL_SINK_BREAKER_FAILURES": "0"}, "VIGIL_SINK_BREAKER_FAILURES"},
		{"breaker open zero", map[string]string{"VIGIL_SINK_BREAKER_OPEN_FOR": "0s"}, "VIGIL_SINK_BREAKER_OPEN_FOR"},
		{"fingerprint ttl negative", map[string]string{"VIGIL_SINK_FINGERPRINT_TTL": "-1h"}, "VIGIL_SINK_FINGERPRINT_TTL"},
		{"feedback interval tiny", map[string]string{"VIGIL_SINK_FEEDBACK_INTERVAL": "10ms"}, "VIGIL_SINK_FEEDBACK_INTERVAL"},
		{"removal check negative", map[string]string{"VIGIL_SINK_FEEDBACK_REMOVAL_CHECK": "-1"}, "VIGIL_SINK_FEEDBACK_REMOVAL_CHECK"},
		{"removal check garbage", map[string]string{"VIGIL_SINK_FEEDBACK_REMOVAL_CHECK": "x"}, "VIGIL_SINK_FEEDBACK_REMOVAL_CHECK"},
		{"feedback settle garbage", map[string]string{"VIGIL_SINK_FEEDBACK_SETTLE": "x"}, "VIGIL_SINK_FEEDBACK_SETTLE"},
		{"feedback topic equals input", map[string]string{"VIGIL_TOPIC_FEEDBACK": "indicators.verdicts"}, "VIGIL_TOPIC_FEEDBACK"},
		{"common max batch", map[string]string{"VIGIL_MAX_BATCH": "0"}, "VIGIL_MAX_BATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

// Secrets never appear in a configuration error.
func TestErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	_, err := load(map[string]string{"VIGIL_THREATQ_URL": "http://tq.example.org", "VIGIL_THREATQ_CLIENT_ID": "id",
		"VIGIL_THREATQ_EMAIL": "a@b.c", "VIGIL_THREATQ_PASSWORD": "hunter2-secret"})
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("err = %v", err)
	}
}

// The dev defaults are the emulator's credentials.
func TestDevCredentialsMatchEmulator(t *testing.T) {
	t.Parallel()
	if DevClientID != tqemu.DefaultClientID || DevEmail != tqemu.DefaultEmail || DevPassword != tqemu.DefaultPassword {
		t.Fatalf("dev credentials %s/%s/%s differ from the emulator's", DevClientID, DevEmail, DevPassword)
	}
}
