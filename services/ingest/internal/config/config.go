// Package config loads ingest's configuration from the environment.
package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/pkg/service"
)

// Config is ingest's configuration.
type Config struct {
	Common           service.Common
	Topics           []string // raw topics (or regexes when TopicRegex)
	TopicRegex       bool
	Formats          map[string]string // topic -> parser name; missing: DefaultFormat
	DefaultFormat    string            // "auto" or a parser name
	OutTopic         string
	MaxRecordBytes   int
	InternalNets     *indicator.Nets
	InternalSuffixes *indicator.InternalSuffixes
	Warninglists     []string      // names of shipped lists, "all", or none
	AllowFiles       []string      // local allow-list YAML files
	Collapse         bool          // collapse identical observations within a batch
	CollapseWindow   time.Duration // keep polling this long to fill a batch (0: one poll)
}

// Load reads the environment through e and validates it.
func Load(e *envconf.Env) (Config, error) {
	c := Config{
		Common:         service.LoadCommon(e, "ingest", "127.0.0.1:9401"),
		Topics:         e.List("VIGIL_INGEST_TOPICS", []string{"raw.suricata", "raw.zeek", "raw.cef", "raw.fortigate", "raw.panos", "raw.asa", "raw.sysmon", "raw.edr", "raw.ocsf", "raw.ecs"}),
		TopicRegex:     e.Bool("VIGIL_INGEST_TOPIC_REGEX", false),
		DefaultFormat:  e.String("VIGIL_INGEST_DEFAULT_FORMAT", "auto"),
		OutTopic:       e.String("VIGIL_TOPIC_OBSERVED", "indicators.observed"),
		MaxRecordBytes: e.Int("VIGIL_INGEST_MAX_RECORD_BYTES", 1<<20),
		Warninglists:   e.List("VIGIL_WARNINGLISTS", []string{"all"}),
		AllowFiles:     e.List("VIGIL_ALLOWLIST_FILES", nil),
		Collapse:       e.Bool("VIGIL_INGEST_COLLAPSE", true),
		CollapseWindow: e.Duration("VIGIL_INGEST_COLLAPSE_WINDOW", 0),
		Formats:        map[string]string{},
	}
	for _, kv := range e.List("VIGIL_INGEST_FORMATS", nil) {
		topic, format, ok := strings.Cut(kv, "=")
		if !ok || topic == "" || format == "" {
			e.Fail("VIGIL_INGEST_FORMATS", kv, "entries must be topic=format")
			continue
		}
		c.Formats[strings.TrimSpace(topic)] = strings.TrimSpace(format)
	}
	nets, err := indicator.ParseNets(e.String("VIGIL_INTERNAL_NETS", "default"))
	if err != nil {
		e.Fail("VIGIL_INTERNAL_NETS", e.String("VIGIL_INTERNAL_NETS", ""), err.Error())
	}
	c.InternalNets = nets
	suffixes, err := indicator.ParseInternalSuffixes(e.String("VIGIL_INTERNAL_SUFFIXES", "default"))
	if err != nil {
		e.Fail("VIGIL_INTERNAL_SUFFIXES", "", err.Error())
	}
	c.InternalSuffixes = suffixes
	if c.MaxRecordBytes < 64 {
		e.Fail("VIGIL_INGEST_MAX_RECORD_BYTES", fmt.Sprint(c.MaxRecordBytes), "must be at least 64")
	}
	if c.CollapseWindow > time.Minute {
		e.Fail("VIGIL_INGEST_COLLAPSE_WINDOW", c.CollapseWindow.String(), "must be at most 1m (records are held, uncommitted, for the window)")
	}
	if len(c.Topics) == 0 {
		e.Fail("VIGIL_INGEST_TOPICS", "", "at least one topic is required")
	}
	if c.OutTopic == "" {
		e.Fail("VIGIL_TOPIC_OBSERVED", "", "must not be empty")
	}
	return c, e.Err()
}
