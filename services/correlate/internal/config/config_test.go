package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(envconf.New(envconf.FromMap(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.InTopic != "indicators.enriched" || c.FeedbackTopic != "indicators.feedback" || c.OutTopic != "indicators.verdicts" {
		t.Errorf("topics = %q %q %q", c.InTopic, c.FeedbackTopic, c.OutTopic)
	}
	if c.PolicyFile != "" || c.AssetsFile != "" || len(c.AllowFiles) != 0 {
		t.Errorf("files = %q %q %v, want none", c.PolicyFile, c.AssetsFile, c.AllowFiles)
	}
	if !slices.Equal(c.Warninglists, []string{"all"}) {
		t.Errorf("warninglists = %v", c.Warninglists)
	}
	if c.Common.OpsAddr != "127.0.0.1:9403" || c.Common.Group != "vigil-correlate" {
		t.Errorf("ops %q group %q", c.Common.OpsAddr, c.Common.Group)
	}
	if w := c.State.Windows; w.Short != time.Hour || w.Medium != 24*time.Hour || w.Long != 7*24*time.Hour {
		t.Errorf("windows = %+v", w)
	}
	if c.DecaySweepInterval != time.Minute || c.DecaySweepBatch != 500 {
		t.Errorf("decay sweep every %v, %d at a time; want 1m, 500", c.DecaySweepInterval, c.DecaySweepBatch)
	}
	if c.Shards != 2 {
		t.Errorf("shards = %d, want 2", c.Shards)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	c, err := Load(envconf.New(envconf.FromMap(map[string]string{
		"VIGIL_CORRELATE_POLICY_FILE":          "../../testdata/policy.strict.yaml",
		"VIGIL_CORRELATE_ASSETS_FILE":          "../../testdata/assets.yaml",
		"VIGIL_ALLOWLIST_FILES":                "../../testdata/allow.local.yaml",
		"VIGIL_WARNINGLISTS":                   "none",
		"VIGIL_CORRELATE_WINDOW_SHORT":         "30m",
		"VIGIL_CORRELATE_WINDOW_LONG":          "72h",
		"VIGIL_CORRELATE_SEEN_TTL":             "96h",
		"VIGIL_TOPIC_VERDICTS":                 "v.out",
		"VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL": "0",
		"VIGIL_CORRELATE_DECAY_SWEEP_BATCH":    "50",
		"VIGIL_CORRELATE_SHARDS":               "8",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if c.Warninglists != nil {
		t.Errorf("none -> %v, want nil", c.Warninglists)
	}
	if c.State.Windows.Short != 30*time.Minute || c.State.Windows.Long != 72*time.Hour || c.State.SeenTTL != 96*time.Hour {
		t.Errorf("state = %+v", c.State)
	}
	if c.OutTopic != "v.out" || len(c.ListConfig().LocalFiles) != 1 {
		t.Errorf("out %q lists %+v", c.OutTopic, c.ListConfig())
	}
	if c.DecaySweepInterval != 0 || c.DecaySweepBatch != 50 {
		t.Errorf("decay sweep every %v, %d at a time; want 0 (off), 50", c.DecaySweepInterval, c.DecaySweepBatch)
	}
	if c.Shards != 8 {
		t.Errorf("shards = %d, want 8", c.Shards)
	}
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"missing policy", map[string]string{"VIGIL_CORRELATE_POLICY_FILE": "/nonexistent/policy.yaml"}, "VIGIL_CORRELATE_POLICY_FILE"},
		{"policy is dir", map[string]string{"VIGIL_CORRELATE_POLICY_FILE": "../../testdata"}, "VIGIL_CORRELATE_POLICY_FILE"},
		{"missing assets", map[string]string{"VIGIL_CORRELATE_ASSETS_FILE": "nope.yaml"}, "VIGIL_CORRELATE_ASSETS_FILE"},
		{"missing allow file", map[string]string{"VIGIL_ALLOWLIST_FILES": "../../testdata/allow.local.yaml,missing.yaml"}, "VIGIL_ALLOWLIST_FILES"},
		{"unknown warninglist", map[string]string{"VIGIL_WARNINGLISTS": "public-dns-v4,no-such-list"}, "VIGIL_WARNINGLISTS"},
		{"short window too long", map[string]string{"VIGIL_CORRELATE_WINDOW_SHORT": "7h"}, "VIGIL_CORRELATE_WINDOW_SHORT"},
		{"long below medium", map[string]string{"VIGIL_CORRELATE_WINDOW_LONG": "12h"}, "VIGIL_CORRELATE_WINDOW_LONG"},
		{"long above 30d", map[string]string{"VIGIL_CORRELATE_WINDOW_LONG": "800h"}, "VIGIL_CORRELATE_WINDOW_LONG"},
		{"medium below short", map[string]string{"VIGIL_CORRELATE_WINDOW_SHORT": "5h", "VIGIL_CORRELATE_WINDOW_MEDIUM": "2h"}, "VIGIL_CORRELATE_WINDOW_MEDIUM"},
		{"window not a duration", map[string]string{"VIGIL_CORRELATE_WINDOW_MEDIUM": "a day"}, "VIGIL_CORRELATE_WINDOW_MEDIUM"},
		{"negative seen ttl", map[string]string{"VIGIL_CORRELATE_SEEN_TTL": "-1h"}, "VIGIL_CORRELATE_SEEN_TTL"},
		{"state ttl below long", map[string]string{"VIGIL_CORRELATE_STATE_TTL": "1h"}, "VIGIL_CORRELATE_STATE_TTL"},
		{"same in and out", map[string]string{"VIGIL_TOPIC_VERDICTS": "indicators.enriched"}, "VIGIL_TOPIC_ENRICHED"},
		{"feedback is out", map[string]string{"VIGIL_TOPIC_FEEDBACK": "indicators.verdicts"}, "VIGIL_TOPIC_FEEDBACK"},
		{"out is dlq", map[string]string{"VIGIL_TOPIC_VERDICTS": "vigil.dlq"}, "VIGIL_TOPIC_VERDICTS"},
		{"common: batch", map[string]string{"VIGIL_MAX_BATCH": "0"}, "VIGIL_MAX_BATCH"},
		{"negative sweep interval", map[string]string{"VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL": "-1m"}, "VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL"},
		{"sweep interval not a duration", map[string]string{"VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL": "often"}, "VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL"},
		{"sweep batch zero", map[string]string{"VIGIL_CORRELATE_DECAY_SWEEP_BATCH": "0"}, "VIGIL_CORRELATE_DECAY_SWEEP_BATCH"},
		{"sweep batch too big", map[string]string{"VIGIL_CORRELATE_DECAY_SWEEP_BATCH": "20000"}, "VIGIL_CORRELATE_DECAY_SWEEP_BATCH"},
		{"sweep batch not a number", map[string]string{"VIGIL_CORRELATE_DECAY_SWEEP_BATCH": "many"}, "VIGIL_CORRELATE_DECAY_SWEEP_BATCH"},
		{"shards not a power of two", map[string]string{"VIGIL_CORRELATE_SHARDS": "3"}, "VIGIL_CORRELATE_SHARDS"},
		{"shards zero", map[string]string{"VIGIL_CORRELATE_SHARDS": "0"}, "VIGIL_CORRELATE_SHARDS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(envconf.New(envconf.FromMap(tc.env)))
			if err == nil {
				t.Fatalf("Load(%v) = nil error, want one naming %s", tc.env, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not name %s", err, tc.wantErr)
			}
		})
	}
}
