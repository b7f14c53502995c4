// Package config loads the sink's configuration from the environment.
//
// Variables the sink reads besides the common ones (VIGIL_KAFKA_*, VIGIL_REDIS_*, VIGIL_OPS_ADDR
// default 127.0.0.1:9404, VIGIL_GROUP default vigil-sink, VIGIL_LOG_LEVEL, VIGIL_TRACE_FILE,
// VIGIL_SHUTDOWN_TIMEOUT; VIGIL_MAX_BATCH is not used: VIGIL_SINK_FLUSH_MAX sizes the batch):
//
//	Variable                            Default                  Meaning
//	VIGIL_TOPIC_VERDICTS                indicators.verdicts      input topic (Avro Verdict)
//	VIGIL_TOPIC_FEEDBACK                indicators.feedback      output topic for analysts' decisions (Avro Feedback)
//	VIGIL_THREATQ_URL                   http://127.0.0.1:18443   ThreatQ base URL (default: the dev emulator)
//	VIGIL_THREATQ_ALLOW_INSECURE_HTTP   true for a loopback URL, plain http:// allowed; otherwise https is required
//	                                    else false
//	VIGIL_THREATQ_CLIENT_ID             vigil-dev on loopback    OAuth client id (required for a non-loopback URL)
//	VIGIL_THREATQ_EMAIL                 analyst@vigil.local on   password grant user
//	                                    loopback
//	VIGIL_THREATQ_PASSWORD[_FILE]       vigil-dev on loopback    password grant password (secret)
//	VIGIL_THREATQ_CLIENT_SECRET[_FILE]  ""                       client-credentials grant secret (secret); set
//	                                                             this or EMAIL+PASSWORD
//	VIGIL_THREATQ_CA_FILE               ""                       PEM bundle added to the system roots
//	VIGIL_THREATQ_TIMEOUT               30s                      per HTTP request
//	VIGIL_SINK_BATCH_SIZE               500                      indicators per consume call (1–500)
//	VIGIL_SINK_FLUSH_MAX                10000                    verdicts per flush window (= records per batch)
//	VIGIL_SINK_FLUSH_INTERVAL           500ms                    longest wait to fill a flush window, counted from
//	                                                             the oldest verdict's production (bounds the
//	                                                             latency a verdict gains from coalescing)
//	VIGIL_SINK_WRITE_CONCURRENCY        8                        indicators updated in parallel after a consume
//	                                                             (attribute deletes, status, score; 1–64)
//	VIGIL_SINK_CONSUME_CONCURRENCY      4                        consume batches of one flush written in parallel
//	VIGIL_SINK_STATUS_MAP               block=Active,alert=Active,review=Review,suppress=Whitelisted,annotate=Active
//	                                                             verdict action → ThreatQ status; entries
//	                                                             override the defaults
//	VIGIL_SINK_DEFAULT_STATUS           Review                   status for actions not in the map
//	VIGIL_SINK_OVERRIDE_STATUS          false                    also change a status Vigil did not set
//	VIGIL_SINK_TLP                      AMBER                    TLP of Vigil's sources (CLEAR, WHITE, GREEN,
//	                                                             AMBER, AMBER+STRICT, RED)
//	VIGIL_SINK_SOURCE_NAME              Vigil                    ThreatQ source of Vigil's writes
//	VIGIL_SINK_SOURCE_NAMES             ""                       provider=ThreatQ source name, comma-separated
//	VIGIL_SINK_TAGS                     ""                       tags added to every indicator, comma-separated
//	VIGIL_SINK_OMIT_ATTRIBUTES          ""                       attribute names never written (comma-separated), e.g. "Sightings 24h,Distinct Assets"
//	VIGIL_SINK_MAX_ATTEMPTS             4                        attempts per ThreatQ call before the window pauses
//	VIGIL_SINK_BREAKER_FAILURES         5                        consecutive failures that open the breaker
//	VIGIL_SINK_BREAKER_OPEN_FOR         30s                      open time before a half-open probe
//	VIGIL_SINK_FINGERPRINT_TTL          720h                     lifetime of the last-write record per indicator
//	                                                             in Redis (0: forever)
//	VIGIL_SINK_FEEDBACK_INTERVAL        60s                      feedback poll period (0 disables the poller)
//	VIGIL_SINK_FEEDBACK_SETTLE          30s                      ignore ThreatQ changes younger than this
//	VIGIL_SINK_FEEDBACK_REMOVAL_CHECK   200                      Vigil indicators looked up by id per poll to
//	                                                             detect deletions (0 disables)
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

// DefaultThreatQURL is the development emulator (cmd/threatq-emulator).
const DefaultThreatQURL = "http://127.0.0.1:18443"

// Development credentials of the emulator (cmd/threatq-emulator), used only for a loopback URL
// when no credential is configured.
const (
	DevClientID = "vigil-dev"
	DevEmail    = "analyst@vigil.local"
	DevPassword = "vigil-dev"
)

// MaxBatchSize is the largest consume batch ThreatQ accepts.
const MaxBatchSize = 500

// Config is the sink's configuration.
type Config struct {
	Common        service.Common
	InTopic       string // verdicts
	FeedbackTopic string
	ThreatQ       threatq.Config
	// Writer holds the ThreatQ write settings; Writer.MaxPending and Writer.FlushInterval are the
	// flush window, which is also the runner's MaxBatch and BatchWait.
	Writer           writer.Config
	FingerprintTTL   time.Duration
	FeedbackInterval time.Duration // 0: no feedback poller
	FeedbackSettle   time.Duration
	// FeedbackRemovalCheck is how many recorded indicators each poll looks up by id (0: off).
	FeedbackRemovalCheck int
}

// FlushMax is the number of verdicts in one flush window.
func (c Config) FlushMax() int { return c.Writer.MaxPending }

// FlushInterval is the longest a flush window waits to fill.
func (c Config) FlushInterval() time.Duration { return c.Writer.FlushInterval }

var tlps = []string{"CLEAR", "WHITE", "GREEN", "AMBER", "AMBER+STRICT", "RED"}

var actions = []string{events.VerdictBlock, events.VerdictAlert, events.VerdictAnnotate, events.VerdictReview, events.VerdictSuppress}

// Load reads the environment through e and validates it.
func Load(e *envconf.Env) (Config, error) {
	c := Config{
		Common:           service.LoadCommon(e, "sink", "127.0.0.1:9404"),
		InTopic:          e.String("VIGIL_TOPIC_VERDICTS", "indicators.verdicts"),
		FeedbackTopic:    e.String("VIGIL_TOPIC_FEEDBACK", "indicators.feedback"),
		FingerprintTTL:   e.Duration("VIGIL_SINK_FINGERPRINT_TTL", 30*24*time.Hour),
		FeedbackInterval: e.Duration("VIGIL_SINK_FEEDBACK_INTERVAL", time.Minute),
		FeedbackSettle:   e.Duration("VIGIL_SINK_FEEDBACK_SETTLE", 30*time.Second),
	}
	c.FeedbackRemovalCheck = e.Int("VIGIL_SINK_FEEDBACK_REMOVAL_CHECK", 200)
	c.ThreatQ = loadThreatQ(e)
	c.Writer = loadWriter(e)
	// every consume batch in flight, each with its follow-up calls, keeps its connection
	c.ThreatQ.MaxIdleConns = max(c.Writer.ChunkConcurrency, 1) * (max(c.Writer.Concurrency, 1) + 1)

	if c.InTopic == "" {
		e.Fail("VIGIL_TOPIC_VERDICTS", "", "must not be empty")
	}
	if c.FeedbackTopic == "" {
		e.Fail("VIGIL_TOPIC_FEEDBACK", "", "must not be empty")
	}
	if c.FeedbackTopic != "" && c.FeedbackTopic == c.InTopic {
		e.Fail("VIGIL_TOPIC_FEEDBACK", c.FeedbackTopic, "must differ from VIGIL_TOPIC_VERDICTS")
	}
	if c.FeedbackInterval > 0 && c.FeedbackInterval < time.Second {
		e.Fail("VIGIL_SINK_FEEDBACK_INTERVAL", c.FeedbackInterval.String(), "must be 0 (off) or at least 1s")
	}
	if c.FeedbackRemovalCheck < 0 || c.FeedbackRemovalCheck > 10000 {
		e.Fail("VIGIL_SINK_FEEDBACK_REMOVAL_CHECK", fmt.Sprint(c.FeedbackRemovalCheck), "must be 0 (off) to 10000")
	}
	if err := e.Err(); err != nil {
		return c, err
	}
	if err := c.ThreatQ.Validate(); err != nil { // the client's own rules, in case they are stricter
		return c, fmt.Errorf("VIGIL_THREATQ_*: %w", err)
	}
	return c, nil
}

func loadThreatQ(e *envconf.Env) threatq.Config {
	raw := e.String("VIGIL_THREATQ_URL", DefaultThreatQURL)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		e.Fail("VIGIL_THREATQ_URL", raw, "must be an absolute http(s) URL")
		u = &url.URL{}
	}
	loop := isLoopback(u.Hostname())
	c := threatq.Config{
		BaseURL:           raw,
		AllowInsecureHTTP: e.Bool("VIGIL_THREATQ_ALLOW_INSECURE_HTTP", loop),
		ClientID:          e.String("VIGIL_THREATQ_CLIENT_ID", ""),
		Email:             e.String("VIGIL_THREATQ_EMAIL", ""),
		Password:          e.Secret("VIGIL_THREATQ_PASSWORD"),
		ClientSecret:      e.Secret("VIGIL_THREATQ_CLIENT_SECRET"),
		CAFile:            e.String("VIGIL_THREATQ_CA_FILE", ""),
		Timeout:           e.Duration("VIGIL_THREATQ_TIMEOUT", 30*time.Second),
	}
	if u.Scheme == "http" && !c.AllowInsecureHTTP {
		e.Fail("VIGIL_THREATQ_URL", raw, "must use https (set VIGIL_THREATQ_ALLOW_INSECURE_HTTP=true only for an emulator)")
	}
	// The development emulator's credentials apply only on loopback and only when none is set.
	if loop && c.Email == "" && c.Password == "" && c.ClientSecret == "" {
		c.Email, c.Password = DevEmail, DevPassword
		if c.ClientID == "" {
			c.ClientID = DevClientID
		}
	}
	if c.ClientID == "" {
		e.Fail("VIGIL_THREATQ_CLIENT_ID", "", "is required")
	}
	switch {
	case c.Email != "" && c.Password == "":
		e.Fail("VIGIL_THREATQ_PASSWORD", "", "is required with VIGIL_THREATQ_EMAIL")
	case c.Email == "" && c.Password != "":
		e.Fail("VIGIL_THREATQ_EMAIL", "", "is required with VIGIL_THREATQ_PASSWORD")
	case c.Email == "" && c.ClientSecret == "":
		e.Fail("VIGIL_THREATQ_CLIENT_SECRET", "", "set VIGIL_THREATQ_CLIENT_SECRET or VIGIL_THREATQ_EMAIL and VIGIL_THREATQ_PASSWORD")
	}
	if c.Timeout <= 0 {
		e.Fail("VIGIL_THREATQ_TIMEOUT", c.Timeout.String(), "must be positive")
	}
	return c
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func loadWriter(e *envconf.Env) writer.Config {
	c := writer.Config{
		BatchSize:        e.Int("VIGIL_SINK_BATCH_SIZE", MaxBatchSize),
		MaxPending:       e.Int("VIGIL_SINK_FLUSH_MAX", 10000),
		FlushInterval:    e.Duration("VIGIL_SINK_FLUSH_INTERVAL", writer.DefaultFlushInterval),
		Concurrency:      e.Int("VIGIL_SINK_WRITE_CONCURRENCY", writer.DefaultConcurrency),
		ChunkConcurrency: e.Int("VIGIL_SINK_CONSUME_CONCURRENCY", writer.DefaultChunkConcurrency),
		SourceName:       e.String("VIGIL_SINK_SOURCE_NAME", "Vigil"),
		TLP:              strings.ToUpper(e.String("VIGIL_SINK_TLP", "AMBER")),
		Statuses:         writer.DefaultStatuses(),
		DefaultStatus:    e.String("VIGIL_SINK_DEFAULT_STATUS", "Review"),
		OverrideStatus:   e.Bool("VIGIL_SINK_OVERRIDE_STATUS", false),
		Tags:             e.List("VIGIL_SINK_TAGS", nil),
		OmitAttributes:   e.List("VIGIL_SINK_OMIT_ATTRIBUTES", nil),
		MaxAttempts:      e.Int("VIGIL_SINK_MAX_ATTEMPTS", 4),
		BreakerFailures:  uint32(max(e.Int("VIGIL_SINK_BREAKER_FAILURES", 5), 0)),
		BreakerOpenFor:   e.Duration("VIGIL_SINK_BREAKER_OPEN_FOR", 30*time.Second),
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		e.Fail("VIGIL_SINK_BATCH_SIZE", fmt.Sprint(c.BatchSize), fmt.Sprintf("must be between 1 and %d", MaxBatchSize))
	}
	if c.MaxPending < 1 || c.MaxPending > 100000 {
		e.Fail("VIGIL_SINK_FLUSH_MAX", fmt.Sprint(c.MaxPending), "must be between 1 and 100000")
	}
	if c.FlushInterval <= 0 || c.FlushInterval > 5*time.Minute {
		e.Fail("VIGIL_SINK_FLUSH_INTERVAL", c.FlushInterval.String(), "must be between 1ns and 5m")
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		e.Fail("VIGIL_SINK_WRITE_CONCURRENCY", fmt.Sprint(c.Concurrency), "must be between 1 and 64")
	}
	if c.ChunkConcurrency < 1 || c.ChunkConcurrency > 16 {
		e.Fail("VIGIL_SINK_CONSUME_CONCURRENCY", fmt.Sprint(c.ChunkConcurrency), "must be between 1 and 16")
	}
	if !contains(tlps, c.TLP) {
		e.Fail("VIGIL_SINK_TLP", c.TLP, "must be one of "+strings.Join(tlps, ", "))
	}
	if c.SourceName == "" {
		e.Fail("VIGIL_SINK_SOURCE_NAME", "", "must not be empty")
	}
	for _, kv := range e.List("VIGIL_SINK_STATUS_MAP", nil) {
		action, status, ok := strings.Cut(kv, "=")
		action, status = strings.ToLower(strings.TrimSpace(action)), strings.TrimSpace(status)
		if !ok || status == "" || !contains(actions, action) {
			e.Fail("VIGIL_SINK_STATUS_MAP", kv, "entries must be action=Status with action one of "+strings.Join(actions, ", "))
			continue
		}
		c.Statuses[action] = status
	}
	for _, kv := range e.List("VIGIL_SINK_SOURCE_NAMES", nil) {
		provider, name, ok := strings.Cut(kv, "=")
		provider, name = strings.ToLower(strings.TrimSpace(provider)), strings.TrimSpace(name)
		if !ok || provider == "" || name == "" {
			e.Fail("VIGIL_SINK_SOURCE_NAMES", kv, "entries must be provider=Source Name")
			continue
		}
		if c.SourceNames == nil {
			c.SourceNames = map[string]string{}
		}
		c.SourceNames[provider] = name
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 20 {
		e.Fail("VIGIL_SINK_MAX_ATTEMPTS", fmt.Sprint(c.MaxAttempts), "must be between 1 and 20")
	}
	if c.BreakerFailures < 1 {
		e.Fail("VIGIL_SINK_BREAKER_FAILURES", fmt.Sprint(c.BreakerFailures), "must be at least 1")
	}
	if c.BreakerOpenFor <= 0 {
		e.Fail("VIGIL_SINK_BREAKER_OPEN_FOR", c.BreakerOpenFor.String(), "must be positive")
	}
	return c
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
