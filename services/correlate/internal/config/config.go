// Package config loads correlate's configuration from the environment.
//
// Variables read here (besides the common VIGIL_KAFKA_*, VIGIL_REDIS_*, VIGIL_OPS_ADDR, … of
// service.LoadCommon; correlate's ops default is 127.0.0.1:9403 and its group vigil-correlate):
//
//	Variable                         Default                 Meaning
//	VIGIL_TOPIC_ENRICHED             indicators.enriched     input: Avro Enrichments
//	VIGIL_TOPIC_FEEDBACK             indicators.feedback     input: Avro Feedback (analyst decisions from ThreatQ)
//	VIGIL_TOPIC_VERDICTS             indicators.verdicts     output: Avro Verdicts, keyed by indicator
//	VIGIL_CORRELATE_POLICY_FILE      (embedded default)      governance policy YAML; reloaded on SIGHUP
//	VIGIL_CORRELATE_ASSETS_FILE      (none)                  asset inventory (.yaml/.yml/.csv); reloaded on SIGHUP
//	VIGIL_WARNINGLISTS               all                     shipped warninglists by name, "all" or "none"
//	VIGIL_ALLOWLIST_FILES            (none)                  comma-separated local allow-list YAML files; reloaded on SIGHUP
//	VIGIL_CORRELATE_WINDOW_SHORT     1h                      short sighting window (minute buckets, 1m..6h)
//	VIGIL_CORRELATE_WINDOW_MEDIUM    24h                     medium window (hour buckets, >= 1h and >= short)
//	VIGIL_CORRELATE_WINDOW_LONG      168h                    long window (hour buckets, >= medium, <= 720h)
//	VIGIL_CORRELATE_SEEN_TTL         long + 24h              how long a source offset is remembered for replay dedupe (minimum long + 24h)
//	VIGIL_CORRELATE_STATE_TTL        long + 168h             state of an indicator unseen this long expires
//	VIGIL_CORRELATE_LOCAL_STATES     20000                   indicator states the partition owner keeps in process to update Redis with plain commands instead of a script (not on Redis Cluster; 0 = script always)
//	VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL 1m                  how often idle indicators whose verdict decay (or the refresh interval) may change are re-scored; 0 disables
//	VIGIL_CORRELATE_DECAY_SWEEP_BATCH    500                 due indicators claimed per store call (1..10000)
package config

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// Config is correlate's configuration.
type Config struct {
	Common        service.Common
	InTopic       string // enrichments
	FeedbackTopic string
	OutTopic      string // verdicts
	PolicyFile    string // empty: the embedded default policy
	AssetsFile    string // empty: no inventory
	Warninglists  []string
	AllowFiles    []string
	State         state.Config
	// DecaySweepInterval is the time between decay sweeps (stage.Sweeper);
	// 0 disables re-scoring without new sightings.
	DecaySweepInterval time.Duration
	// DecaySweepBatch is how many due indicators a sweep claims at a time.
	DecaySweepBatch int
	// Shards is how many parts of a poll batch are correlated in parallel
	// (stage.Config.Shards).
	Shards int
}

// Load reads the environment through e and validates it.
func Load(e *envconf.Env) (Config, error) {
	c := Config{
		Common:        service.LoadCommon(e, "correlate", "127.0.0.1:9403"),
		InTopic:       e.String("VIGIL_TOPIC_ENRICHED", "indicators.enriched"),
		FeedbackTopic: e.String("VIGIL_TOPIC_FEEDBACK", "indicators.feedback"),
		OutTopic:      e.String("VIGIL_TOPIC_VERDICTS", "indicators.verdicts"),
		PolicyFile:    e.String("VIGIL_CORRELATE_POLICY_FILE", ""),
		AssetsFile:    e.String("VIGIL_CORRELATE_ASSETS_FILE", ""),
		Warninglists:  e.List("VIGIL_WARNINGLISTS", []string{allowlist.All}),
		AllowFiles:    e.List("VIGIL_ALLOWLIST_FILES", nil),
		State: state.Config{
			Windows: state.Windows{
				Short:  e.Duration("VIGIL_CORRELATE_WINDOW_SHORT", time.Hour),
				Medium: e.Duration("VIGIL_CORRELATE_WINDOW_MEDIUM", 24*time.Hour),
				Long:   e.Duration("VIGIL_CORRELATE_WINDOW_LONG", 7*24*time.Hour),
			},
			SeenTTL:     e.Duration("VIGIL_CORRELATE_SEEN_TTL", 0),
			StateTTL:    e.Duration("VIGIL_CORRELATE_STATE_TTL", 0),
			LocalStates: e.Int("VIGIL_CORRELATE_LOCAL_STATES", 20_000),
		},
		DecaySweepInterval: e.Duration("VIGIL_CORRELATE_DECAY_SWEEP_INTERVAL", time.Minute),
		DecaySweepBatch:    e.Int("VIGIL_CORRELATE_DECAY_SWEEP_BATCH", 500),
		Shards:             e.Int("VIGIL_CORRELATE_SHARDS", 2),
	}
	topics := map[string]string{"VIGIL_TOPIC_ENRICHED": c.InTopic, "VIGIL_TOPIC_FEEDBACK": c.FeedbackTopic, "VIGIL_TOPIC_VERDICTS": c.OutTopic}
	for _, name := range []string{"VIGIL_TOPIC_ENRICHED", "VIGIL_TOPIC_FEEDBACK", "VIGIL_TOPIC_VERDICTS"} {
		if topics[name] == "" {
			e.Fail(name, "", "must not be empty")
		}
	}
	if c.InTopic != "" && (c.InTopic == c.OutTopic || c.InTopic == c.FeedbackTopic) {
		e.Fail("VIGIL_TOPIC_ENRICHED", c.InTopic, "must differ from VIGIL_TOPIC_VERDICTS and VIGIL_TOPIC_FEEDBACK")
	}
	if c.FeedbackTopic != "" && c.FeedbackTopic == c.OutTopic {
		e.Fail("VIGIL_TOPIC_FEEDBACK", c.FeedbackTopic, "must differ from VIGIL_TOPIC_VERDICTS")
	}
	if c.OutTopic != "" && c.OutTopic == c.Common.Kafka.DLQTopic {
		e.Fail("VIGIL_TOPIC_VERDICTS", c.OutTopic, "must differ from VIGIL_TOPIC_DLQ")
	}
	c.Warninglists = checkWarninglists(e, c.Warninglists)
	checkFile(e, "VIGIL_CORRELATE_POLICY_FILE", c.PolicyFile)
	checkFile(e, "VIGIL_CORRELATE_ASSETS_FILE", c.AssetsFile)
	for _, f := range c.AllowFiles {
		checkFile(e, "VIGIL_ALLOWLIST_FILES", f)
	}
	w := c.State.Windows
	switch {
	case w.Short < time.Minute || w.Short > 6*time.Hour:
		e.Fail("VIGIL_CORRELATE_WINDOW_SHORT", w.Short.String(), "must be between 1m and 6h")
	case w.Medium < time.Hour || w.Medium < w.Short:
		e.Fail("VIGIL_CORRELATE_WINDOW_MEDIUM", w.Medium.String(), "must be at least 1h and at least VIGIL_CORRELATE_WINDOW_SHORT")
	case w.Long < w.Medium || w.Long > 30*24*time.Hour:
		e.Fail("VIGIL_CORRELATE_WINDOW_LONG", w.Long.String(), "must be between VIGIL_CORRELATE_WINDOW_MEDIUM and 720h")
	default:
		if err := c.State.Validate(); err != nil {
			e.Fail("VIGIL_CORRELATE_WINDOW_LONG", w.Long.String(), err.Error())
		}
	}
	if c.DecaySweepBatch < 1 || c.DecaySweepBatch > maxSweepBatch {
		e.Fail("VIGIL_CORRELATE_DECAY_SWEEP_BATCH", strconv.Itoa(c.DecaySweepBatch), "must be between 1 and "+strconv.Itoa(maxSweepBatch))
	}
	switch c.Shards {
	case 1, 2, 4, 8:
	default:
		e.Fail("VIGIL_CORRELATE_SHARDS", strconv.Itoa(c.Shards), "must be 1, 2, 4 or 8")
	}
	if c.State.LocalStates < 0 {
		e.Fail("VIGIL_CORRELATE_LOCAL_STATES", strconv.Itoa(c.State.LocalStates), "must not be negative")
	}
	if long := c.State.Windows.Long; c.State.StateTTL != 0 && c.State.StateTTL < long {
		e.Fail("VIGIL_CORRELATE_STATE_TTL", c.State.StateTTL.String(), "must be at least VIGIL_CORRELATE_WINDOW_LONG")
	}
	return c, e.Err()
}

// maxSweepBatch bounds VIGIL_CORRELATE_DECAY_SWEEP_BATCH: one claim script
// and one load pipeline handle a batch.
const maxSweepBatch = 10_000

// ListConfig returns the allow-list selection (shipped warninglists and local files).
func (c Config) ListConfig() allowlist.Config {
	return allowlist.Config{Warninglists: c.Warninglists, LocalFiles: c.AllowFiles}
}

// checkWarninglists maps "none" to no list and rejects unknown names.
func checkWarninglists(e *envconf.Env, names []string) []string {
	if len(names) == 1 && strings.EqualFold(names[0], "none") {
		return nil
	}
	known := allowlist.EmbeddedNames()
	for _, n := range names {
		if n != allowlist.All && !slices.Contains(known, n) {
			e.Fail("VIGIL_WARNINGLISTS", n, "unknown warninglist (use all, none or shipped names)")
		}
	}
	return names
}

func checkFile(e *envconf.Env, name, path string) {
	if path == "" {
		return
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		e.Fail(name, path, "file does not exist")
	case err != nil:
		e.Fail(name, path, "cannot read file")
	case st.IsDir():
		e.Fail(name, path, "is a directory, want a file")
	}
}
