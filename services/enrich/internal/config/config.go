// Package config loads enrich's configuration from the environment.
//
// Every variable enrich reads (besides the common VIGIL_KAFKA_*, VIGIL_REDIS_*, VIGIL_OPS_ADDR,
// VIGIL_LOG_LEVEL, VIGIL_TRACE_*, VIGIL_SHUTDOWN_TIMEOUT, VIGIL_MAX_BATCH and VIGIL_GROUP of pkg/service;
// enrich's ops address defaults to 127.0.0.1:9402 and its group to vigil-enrich):
//
//	Variable                              Default                  Meaning
//	VIGIL_TOPIC_OBSERVED                  indicators.observed      input topic (Avro Observation)
//	VIGIL_TOPIC_ENRICHED                  indicators.enriched      output topic (Avro Enrichment, same key as the input)
//	VIGIL_INTERNAL_NETS                   default                  internal networks never sent to providers ("default" = RFC 1918, documentation, benchmarking, …; extend with "default,10.9.0.0/16")
//	VIGIL_INTERNAL_SUFFIXES               default                  internal domain suffixes never sent to providers
//	VIGIL_ENRICH_CONCURRENCY              16                       provider lookups in flight per batch
//	VIGIL_ENRICH_L1_SIZE                  2000                     in-process cache entries, one per provider and indicator (~2.5 KB each with the four HTTP providers; Redis is L2)
//	VIGIL_ENRICH_L1_TTL                   10m                      longest an entry stays in the in-process cache (its own TTL still applies)
//	VIGIL_ENRICH_RECORD_CACHE_SIZE        20000                    indicators whose encoded results are reused for their next observations (0 = off; ~1 KB each; lives at most L1_TTL)
//	VIGIL_ENRICH_LOCK_TTL                 60s                      cross-replica fill lock lifetime; must exceed RETRY_MAX_ELAPSED + the longest provider TIMEOUT
//	VIGIL_ENRICH_LOCK_WAIT                = LOCK_TTL               how long a replica waits for another replica's fetch
//	VIGIL_ENRICH_RETRY_ATTEMPTS           3                        attempts per lookup (transient errors only)
//	VIGIL_ENRICH_RETRY_INITIAL            200ms                    first retry backoff (doubles, ±50% jitter)
//	VIGIL_ENRICH_RETRY_MAX                5s                       cap of one backoff
//	VIGIL_ENRICH_RETRY_MAX_ELAPSED        30s                      give up retrying after this long
//	VIGIL_ENRICH_BREAKER_FAILURES         5                        consecutive failures that open a provider's breaker
//	VIGIL_ENRICH_BREAKER_OPEN_FOR         30s                      time open before a half-open probe
//	VIGIL_ENRICH_BREAKER_PROBES           1                        calls allowed while half-open
//	VIGIL_ENRICH_NETWORK_PREFERENCE       criminalip,offline       order of the sources of ASN / org / country in the merged view
//
// Per provider, <P> one of CRIMINALIP, INTERNETDB, ABUSEIPDB, GREYNOISE (defaults in the table below):
//
//	VIGIL_ENRICH_<P>_ENABLED              see below                query this provider
//	VIGIL_ENRICH_<P>_BASE_URL             the production API       http(s) base URL (the provider emulator in development)
//	VIGIL_ENRICH_<P>_API_KEY              ""                       API key (secret; or VIGIL_ENRICH_<P>_API_KEY_FILE naming a file)
//	VIGIL_ENRICH_<P>_TIMEOUT              10s                      one HTTP attempt
//	VIGIL_ENRICH_<P>_TTL_HIT              24h                      how long an answer with data is served from the cache
//	VIGIL_ENRICH_<P>_TTL_NOT_FOUND        6h                       how long a "no data" answer is served from the cache
//	VIGIL_ENRICH_<P>_RATE                 see below                calls per second shared by all replicas (0 = unlimited)
//	VIGIL_ENRICH_<P>_BURST                see below                token bucket size (0 = ceil(RATE))
//	VIGIL_ENRICH_<P>_QUOTAS               see below                plan quotas "window=calls,…", e.g. "1m=60,24h=1000,720h=10000" ("none" = no quota)
//	VIGIL_ENRICH_<P>_MAX_CONCURRENT       see below                calls in flight per replica (0 = unlimited)
//	VIGIL_ENRICH_<P>_MAX_WAIT             5s                       longest a call waits for a token/quota before "rate_limited"
//	VIGIL_ENRICH_<P>_TYPES                every supported type     indicator types to query, e.g. "ipv4,domain"
//	VIGIL_ENRICH_<P>_ALLOW_INTERNAL       false                    also query internal addresses / names
//	VIGIL_ENRICH_<P>_ALLOW_ALLOWLISTED    false                    also query indicators that matched an allow-list at ingest
//	VIGIL_ENRICH_<P>_REQUIRED             false                    pause consumption while this provider's breaker is open
//	VIGIL_ENRICH_ABUSEIPDB_MAX_AGE_DAYS   90                       AbuseIPDB report window (1–365)
//
//	Provider    ENABLED default   types served        RATE  BURST  QUOTAS    MAX_CONCURRENT
//	criminalip  when a key is set ipv4, ipv6, domain  1     1      none      1 (no concurrent calls below Enterprise)
//	internetdb  true (no key)     ipv4                1     5      none      4
//	abuseipdb   when a key is set ipv4, ipv6          1     5      24h=1000  4 (standard tier: 1,000 checks/day)
//	greynoise   when a key is set ipv4                0.1   1      24h=50    1 (Community quota is small)
//
// The offline ASN/country provider (no network):
//
//	VIGIL_ENRICH_OFFLINE_ENABLED          true                     look up ASN and country in local files
//	VIGIL_ENRICH_OFFLINE_DIR              data/geo                 directory of asn-ipv4.csv, asn-ipv6.csv and the country MMDB files; missing files: provider reports "skipped"
//	VIGIL_ENRICH_OFFLINE_TTL_HIT          24h                      cache TTL of an answer
//	VIGIL_ENRICH_OFFLINE_TTL_NOT_FOUND    24h                      cache TTL of "no data"
//	VIGIL_ENRICH_OFFLINE_TYPES, _ALLOW_INTERNAL, _ALLOW_ALLOWLISTED, _REQUIRED   as above
package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/abuseipdb"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/criminalip"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/greynoise"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/internetdb"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/offline"
)

// DefaultOpsAddr is enrich's default ops (health, metrics, debug) address.
const DefaultOpsAddr = "127.0.0.1:9402"

// Provider is one provider's configuration.
type Provider struct {
	Name       string // provider id, e.g. "criminalip"
	EnvName    string // upper-case part of its variables, e.g. "CRIMINALIP"
	BaseURL    string // HTTP providers only
	APIKey     string // secret: never logged; see LogValue
	Dir        string // offline only: data directory
	MaxAgeDays int    // abuseipdb only: report window
	// Settings are the enricher's settings; Settings.Enabled says whether the provider is queried.
	Settings enricher.ProviderConfig
}

// LogValue shows the provider without its key (only whether one is set and its fingerprint).
func (p Provider) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("enabled", p.Settings.Enabled)}
	if p.Name == offline.Name {
		attrs = append(attrs, slog.String("dir", p.Dir))
	} else {
		key := "unset"
		if p.APIKey != "" {
			key = "set (fingerprint " + cache.Fingerprint(p.APIKey) + ")"
		}
		attrs = append(attrs, slog.String("base_url", p.BaseURL), slog.String("api_key", key),
			slog.Float64("rate", p.Settings.Rate), slog.Int("burst", p.Settings.Burst),
			slog.String("quotas", formatQuotas(p.Settings.Quotas)), slog.Int("max_concurrent", p.Settings.MaxConcurrent),
			slog.String("timeout", fmtDuration(p.Settings.Timeout)))
	}
	attrs = append(attrs, slog.String("ttl_hit", fmtDuration(p.Settings.TTLHit)), slog.String("ttl_not_found", fmtDuration(p.Settings.TTLNotFound)),
		slog.Bool("required", p.Settings.Required))
	return slog.GroupValue(attrs...)
}

// Config is enrich's configuration.
type Config struct {
	Common            service.Common
	InTopic           string
	OutTopic          string
	InternalNets      *indicator.Nets
	InternalSuffixes  *indicator.InternalSuffixes
	Providers         []Provider // criminalip, internetdb, abuseipdb, greynoise, offline (disabled ones included)
	Cache             cache.Config
	RecordCacheSize   int // stage.Config.RecordCacheSize
	Concurrency       int
	Retry             enricher.RetryConfig
	Breaker           enricher.BreakerConfig
	NetworkPreference []string
}

// Provider returns the named provider's configuration.
func (c Config) Provider(name string) (Provider, bool) {
	for _, p := range c.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// Enricher returns the enricher configuration (one entry per provider, disabled ones included, credential
// fingerprints filled in).
func (c Config) Enricher() enricher.Config {
	ps := make(map[string]enricher.ProviderConfig, len(c.Providers))
	for _, p := range c.Providers {
		s := p.Settings
		s.CredentialFingerprint = cache.Fingerprint(p.APIKey)
		ps[p.Name] = s
	}
	return enricher.Config{
		Providers:        ps,
		Concurrency:      c.Concurrency,
		Retry:            c.Retry,
		Breaker:          c.Breaker,
		Merge:            enricher.MergeConfig{NetworkPreference: c.NetworkPreference},
		InternalNets:     c.InternalNets,
		InternalSuffixes: c.InternalSuffixes,
	}
}

// Secrets lists every configured secret value, so callers can scrub them from messages.
func (c Config) Secrets() []string {
	out := c.Common.Secrets()
	for _, p := range c.Providers {
		if p.APIKey != "" {
			out = append(out, p.APIKey)
		}
	}
	return out
}

// LogValue is the configuration as logged at start: no secret appears in it.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("in", c.InTopic), slog.String("out", c.OutTopic),
		slog.String("kafka", c.Common.Kafka.LogValue()), slog.String("redis", redisLog(c.Common.Redis)),
		slog.Int("concurrency", c.Concurrency), slog.Int("l1_size", c.Cache.L1Size),
		slog.Int("record_cache_size", c.RecordCacheSize),
	}
	for _, p := range c.Providers {
		attrs = append(attrs, slog.Any(p.Name, p))
	}
	return slog.GroupValue(attrs...)
}

func redisLog(r service.RedisConfig) string {
	if r.Addr == "" {
		return "none (in-process cache and limits)"
	}
	return fmt.Sprintf("%s db=%d tls=%t", r.Addr, r.DB, r.TLS)
}

// spec holds a provider's defaults.
type spec struct {
	name, env      string
	baseURL        string
	types          []string // types the client serves
	keyRequired    bool     // the API refuses calls without a key
	enabledDefault func(key string) bool
	rate           float64
	burst          int
	quotas         string
	maxConcurrent  int
}

func whenKeySet(key string) bool { return key != "" }
func always(string) bool         { return true }

var specs = []spec{
	{name: criminalip.Name, env: "CRIMINALIP", baseURL: criminalip.DefaultBaseURL, keyRequired: true, enabledDefault: whenKeySet,
		types: []string{events.TypeIPv4, events.TypeIPv6, events.TypeDomain}, rate: 1, burst: 1, quotas: "none", maxConcurrent: 1},
	{name: internetdb.Name, env: "INTERNETDB", baseURL: internetdb.DefaultBaseURL, enabledDefault: always,
		types: []string{events.TypeIPv4}, rate: 1, burst: 5, quotas: "none", maxConcurrent: 4},
	{name: abuseipdb.Name, env: "ABUSEIPDB", baseURL: abuseipdb.DefaultBaseURL, keyRequired: true, enabledDefault: whenKeySet,
		types: []string{events.TypeIPv4, events.TypeIPv6}, rate: 1, burst: 5, quotas: "24h=1000", maxConcurrent: 4},
	{name: greynoise.Name, env: "GREYNOISE", baseURL: greynoise.DefaultBaseURL, enabledDefault: whenKeySet,
		types: []string{events.TypeIPv4}, rate: 0.1, burst: 1, quotas: "24h=50", maxConcurrent: 1},
}

// Load reads the environment through e and validates it. Every problem names its variable.
func Load(e *envconf.Env) (Config, error) {
	c := Config{
		Common:            service.LoadCommon(e, "enrich", DefaultOpsAddr),
		InTopic:           e.String("VIGIL_TOPIC_OBSERVED", "indicators.observed"),
		OutTopic:          e.String("VIGIL_TOPIC_ENRICHED", "indicators.enriched"),
		Concurrency:       e.Int("VIGIL_ENRICH_CONCURRENCY", 16),
		RecordCacheSize:   e.Int("VIGIL_ENRICH_RECORD_CACHE_SIZE", 20_000),
		NetworkPreference: e.List("VIGIL_ENRICH_NETWORK_PREFERENCE", []string{criminalip.Name, offline.Name}),
		Cache: cache.Config{
			L1Size:  e.Int("VIGIL_ENRICH_L1_SIZE", 2_000),
			L1TTL:   e.Duration("VIGIL_ENRICH_L1_TTL", 10*time.Minute),
			LockTTL: e.Duration("VIGIL_ENRICH_LOCK_TTL", 60*time.Second),
		},
		Retry: enricher.RetryConfig{
			MaxAttempts: uint(max(0, e.Int("VIGIL_ENRICH_RETRY_ATTEMPTS", 3))),
			Initial:     e.Duration("VIGIL_ENRICH_RETRY_INITIAL", 200*time.Millisecond),
			Max:         e.Duration("VIGIL_ENRICH_RETRY_MAX", 5*time.Second),
			MaxElapsed:  e.Duration("VIGIL_ENRICH_RETRY_MAX_ELAPSED", 30*time.Second),
		},
		Breaker: enricher.BreakerConfig{
			Failures:       uint32(max(0, e.Int("VIGIL_ENRICH_BREAKER_FAILURES", 5))),
			OpenFor:        e.Duration("VIGIL_ENRICH_BREAKER_OPEN_FOR", 30*time.Second),
			HalfOpenProbes: uint32(max(0, e.Int("VIGIL_ENRICH_BREAKER_PROBES", 1))),
		},
	}
	c.Cache.LockWait = e.Duration("VIGIL_ENRICH_LOCK_WAIT", c.Cache.LockTTL)

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

	for _, s := range specs {
		c.Providers = append(c.Providers, loadHTTP(e, s))
	}
	c.Providers = append(c.Providers, loadOffline(e))
	c.validate(e)
	return c, e.Err()
}

func prefix(env string) string { return "VIGIL_ENRICH_" + env + "_" }

// loadCommonSettings reads the variables every provider has (types, TTLs, flags).
func loadCommonSettings(e *envconf.Env, env string, served []string, enabledDefault bool, ttlNotFound, timeout time.Duration) enricher.ProviderConfig {
	pre := prefix(env)
	s := enricher.ProviderConfig{
		Enabled:          e.Bool(pre+"ENABLED", enabledDefault),
		TTLHit:           e.Duration(pre+"TTL_HIT", 24*time.Hour),
		TTLNotFound:      e.Duration(pre+"TTL_NOT_FOUND", ttlNotFound),
		Timeout:          e.Duration(pre+"TIMEOUT", timeout),
		AllowInternal:    e.Bool(pre+"ALLOW_INTERNAL", false),
		AllowAllowlisted: e.Bool(pre+"ALLOW_ALLOWLISTED", false),
		Required:         e.Bool(pre+"REQUIRED", false),
		Types:            e.List(pre+"TYPES", nil),
	}
	for _, t := range s.Types {
		if !slices.Contains(served, t) {
			e.Fail(pre+"TYPES", strings.Join(s.Types, ","), fmt.Sprintf("type %q is not served (served: %s)", t, strings.Join(served, ", ")))
		}
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"TTL_HIT", s.TTLHit}, {"TTL_NOT_FOUND", s.TTLNotFound}, {"TIMEOUT", s.Timeout}} {
		if v.d == 0 {
			e.Fail(pre+v.name, "0", "must be positive")
		}
	}
	if s.Required && !s.Enabled {
		e.Fail(pre+"REQUIRED", "true", "a required provider must be enabled")
	}
	return s
}

func loadHTTP(e *envconf.Env, s spec) Provider {
	pre := prefix(s.env)
	p := Provider{Name: s.name, EnvName: s.env, APIKey: e.Secret(pre + "API_KEY"), BaseURL: e.String(pre+"BASE_URL", s.baseURL)}
	p.Settings = loadCommonSettings(e, s.env, s.types, s.enabledDefault(p.APIKey), 6*time.Hour, 10*time.Second)
	p.Settings.Rate = e.Float(pre+"RATE", s.rate)
	p.Settings.Burst = e.Int(pre+"BURST", s.burst)
	p.Settings.MaxConcurrent = e.Int(pre+"MAX_CONCURRENT", s.maxConcurrent)
	p.Settings.MaxWait = e.Duration(pre+"MAX_WAIT", 5*time.Second)
	raw := e.String(pre+"QUOTAS", s.quotas)
	qs, err := ParseQuotas(raw)
	if err != nil {
		e.Fail(pre+"QUOTAS", raw, err.Error())
	}
	p.Settings.Quotas = qs
	if s.name == abuseipdb.Name {
		p.MaxAgeDays = e.Int(pre+"MAX_AGE_DAYS", 90)
		if p.MaxAgeDays < 1 || p.MaxAgeDays > 365 {
			e.Fail(pre+"MAX_AGE_DAYS", strconv.Itoa(p.MaxAgeDays), "must be between 1 and 365")
		}
	}

	if p.Settings.Rate < 0 {
		e.Fail(pre+"RATE", fmt.Sprint(p.Settings.Rate), "must not be negative (0 = unlimited)")
	}
	if p.Settings.Burst < 0 {
		e.Fail(pre+"BURST", strconv.Itoa(p.Settings.Burst), "must not be negative")
	}
	if p.Settings.MaxConcurrent < 0 {
		e.Fail(pre+"MAX_CONCURRENT", strconv.Itoa(p.Settings.MaxConcurrent), "must not be negative (0 = unlimited)")
	}
	if !p.Settings.Enabled {
		return p
	}
	if _, err := provider.ParseBaseURL(p.BaseURL); err != nil {
		shown := p.BaseURL
		if strings.Contains(shown, "@") {
			shown = "" // may hold credentials
		}
		e.Fail(pre+"BASE_URL", shown, err.Error())
	}
	if s.keyRequired && p.APIKey == "" {
		e.Fail(pre+"API_KEY", "", "required when the provider is enabled (set it or "+pre+"API_KEY_FILE, or set "+pre+"ENABLED=false)")
	}
	return p
}

func loadOffline(e *envconf.Env) Provider {
	p := Provider{Name: offline.Name, EnvName: "OFFLINE", Dir: e.String("VIGIL_ENRICH_OFFLINE_DIR", "data/geo")}
	p.Settings = loadCommonSettings(e, "OFFLINE", []string{events.TypeIPv4, events.TypeIPv6}, true, 24*time.Hour, 2*time.Second)
	return p
}

// ParseQuotas parses "window=calls,…" (e.g. "1m=60,24h=1000,720h=10000"); "none" means no quota.
func ParseQuotas(s string) ([]limit.Quota, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []limit.Quota
	seen := map[time.Duration]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		w, n, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("entry %q: want window=calls, e.g. 24h=1000", item)
		}
		d, err := time.ParseDuration(strings.TrimSpace(w))
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("entry %q: window must be a duration of at least 1s", item)
		}
		limitN, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil || limitN <= 0 {
			return nil, fmt.Errorf("entry %q: calls must be a positive integer", item)
		}
		if seen[d] {
			return nil, fmt.Errorf("window %s given twice", d)
		}
		seen[d] = true
		out = append(out, limit.Quota{Window: d, Limit: limitN})
	}
	return out, nil
}

// fmtDuration prints a duration without zero trailing units: 24h, 1m, 1h30m, 10s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatQuotas(qs []limit.Quota) string {
	if len(qs) == 0 {
		return "none"
	}
	parts := make([]string, len(qs))
	for i, q := range qs {
		parts[i] = fmt.Sprintf("%s=%d", fmtDuration(q.Window), q.Limit)
	}
	return strings.Join(parts, ",")
}

// validate checks cross-field rules.
func (c *Config) validate(e *envconf.Env) {
	if c.InTopic == "" {
		e.Fail("VIGIL_TOPIC_OBSERVED", "", "must not be empty")
	}
	if c.OutTopic == "" {
		e.Fail("VIGIL_TOPIC_ENRICHED", "", "must not be empty")
	}
	if c.InTopic != "" && c.InTopic == c.OutTopic {
		e.Fail("VIGIL_TOPIC_ENRICHED", c.OutTopic, "must differ from VIGIL_TOPIC_OBSERVED")
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		e.Fail("VIGIL_ENRICH_CONCURRENCY", strconv.Itoa(c.Concurrency), "must be between 1 and 1024")
	}
	if c.Cache.L1Size < 1 {
		e.Fail("VIGIL_ENRICH_L1_SIZE", strconv.Itoa(c.Cache.L1Size), "must be at least 1")
	}
	if c.RecordCacheSize < 0 {
		e.Fail("VIGIL_ENRICH_RECORD_CACHE_SIZE", strconv.Itoa(c.RecordCacheSize), "must not be negative")
	}
	if c.Cache.L1TTL == 0 {
		e.Fail("VIGIL_ENRICH_L1_TTL", "0", "must be positive")
	}
	if c.Retry.MaxAttempts < 1 {
		e.Fail("VIGIL_ENRICH_RETRY_ATTEMPTS", fmt.Sprint(c.Retry.MaxAttempts), "must be at least 1")
	}
	if c.Retry.Initial == 0 || c.Retry.Max < c.Retry.Initial {
		e.Fail("VIGIL_ENRICH_RETRY_MAX", c.Retry.Max.String(), "must be positive and at least VIGIL_ENRICH_RETRY_INITIAL")
	}
	if c.Breaker.Failures < 1 {
		e.Fail("VIGIL_ENRICH_BREAKER_FAILURES", fmt.Sprint(c.Breaker.Failures), "must be at least 1")
	}
	if c.Breaker.OpenFor == 0 {
		e.Fail("VIGIL_ENRICH_BREAKER_OPEN_FOR", "0", "must be positive")
	}
	if c.Breaker.HalfOpenProbes < 1 {
		e.Fail("VIGIL_ENRICH_BREAKER_PROBES", fmt.Sprint(c.Breaker.HalfOpenProbes), "must be at least 1")
	}
	names := map[string]bool{}
	enabled := 0
	var longest time.Duration
	for _, p := range c.Providers {
		names[p.Name] = true
		if p.Settings.Enabled {
			enabled++
			longest = max(longest, p.Settings.Timeout)
		}
	}
	for _, n := range c.NetworkPreference {
		if !names[n] {
			e.Fail("VIGIL_ENRICH_NETWORK_PREFERENCE", strings.Join(c.NetworkPreference, ","), fmt.Sprintf("unknown provider %q", n))
		}
	}
	if enabled == 0 {
		e.Fail("VIGIL_ENRICH_<PROVIDER>_ENABLED", "", "no provider is enabled")
	}
	// A fill lock that expires while its holder is still retrying lets another replica call the provider too.
	if need := c.Retry.MaxElapsed + longest; c.Cache.LockTTL <= need {
		e.Fail("VIGIL_ENRICH_LOCK_TTL", c.Cache.LockTTL.String(),
			fmt.Sprintf("must exceed VIGIL_ENRICH_RETRY_MAX_ELAPSED + the longest provider TIMEOUT (%s)", need))
	}
}
