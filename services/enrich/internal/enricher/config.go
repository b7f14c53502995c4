package enricher

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
)

// ErrInvalidConfig is returned by New for a config that fails validation.
var ErrInvalidConfig = errors.New("invalid enricher config")

// ProviderConfig is one provider's settings. Zero values take the defaults noted on each field.
type ProviderConfig struct {
	Enabled     bool
	Types       []string      // indicator types to query (events.Type*); empty: every type the provider Supports
	TTLHit      time.Duration // how long an ok answer is served (default 24h)
	TTLNotFound time.Duration // how long a not_found answer is served (default 6h)

	Rate          float64       // calls per second shared by all replicas (0: unlimited)
	Burst         int           // token bucket size (default ceil(Rate))
	Quotas        []limit.Quota // plan quotas, e.g. {24h, 1000}; all windows checked together
	MaxConcurrent int           // in-flight calls per replica (0: unlimited)
	MaxWait       time.Duration // longest a call waits for a token or quota before rate_limited (default 5s)
	Timeout       time.Duration // one attempt (default 10s)

	AllowInternal    bool // also query internal addresses and names (e.g. an offline ASN database)
	AllowAllowlisted bool // also query indicators that matched an allow-list at ingest
	Required         bool // while this provider's breaker is open EnrichBatch fails with ErrRequiredProviderDown

	// CredentialFingerprint is cache.Fingerprint(secret) of the account's credential, part of the cache key
	// so two accounts never share results. Pass the fingerprint, never the secret (default "anon").
	CredentialFingerprint string
}

// RetryConfig bounds the retries of transient errors (provider unavailable, timeout, throttled).
type RetryConfig struct {
	MaxAttempts uint          // attempts per lookup including the first (default 3)
	Initial     time.Duration // first backoff (default 200ms), doubled per attempt with ±50% jitter
	Max         time.Duration // cap of one backoff (default 5s)
	MaxElapsed  time.Duration // give up when the next wait would pass this since the first attempt (default 30s)
}

// BreakerConfig tunes the per-provider circuit breaker.
type BreakerConfig struct {
	Failures       uint32        // consecutive failures that open it (default 5)
	OpenFor        time.Duration // time open before one half-open probe (default 30s)
	HalfOpenProbes uint32        // calls allowed while half-open (default 1)
}

// MergeConfig names the providers the merge rule treats specially.
type MergeConfig struct {
	// NetworkPreference orders the sources of ASN, AS name, org and country; providers not listed follow in
	// name order (default criminalip, offline).
	NetworkPreference []string
	AbuseProvider     string // source of AbuseConfidence (default "abuseipdb")
	GreyNoiseProvider string // source of GreyNoiseClass (default "greynoise")
}

// Config configures an Enricher.
type Config struct {
	Providers   map[string]ProviderConfig // keyed by Provider.Name(); every provider passed to New needs an entry
	Concurrency int                       // max provider lookups in flight per batch (default 16)
	Retry       RetryConfig
	Breaker     BreakerConfig
	Merge       MergeConfig

	InternalNets     *indicator.Nets             // default indicator.DefaultNets()
	InternalSuffixes *indicator.InternalSuffixes // default indicator.DefaultInternalSuffixes()
}

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 3
	}
	if c.Retry.Initial <= 0 {
		c.Retry.Initial = 200 * time.Millisecond
	}
	if c.Retry.Max <= 0 {
		c.Retry.Max = 5 * time.Second
	}
	if c.Retry.MaxElapsed <= 0 {
		c.Retry.MaxElapsed = 30 * time.Second
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.OpenFor <= 0 {
		c.Breaker.OpenFor = 30 * time.Second
	}
	if c.Breaker.HalfOpenProbes == 0 {
		c.Breaker.HalfOpenProbes = 1
	}
	if c.Merge.NetworkPreference == nil {
		c.Merge.NetworkPreference = []string{"criminalip", "offline"}
	}
	if c.Merge.AbuseProvider == "" {
		c.Merge.AbuseProvider = "abuseipdb"
	}
	if c.Merge.GreyNoiseProvider == "" {
		c.Merge.GreyNoiseProvider = "greynoise"
	}
	if c.InternalNets == nil {
		c.InternalNets = indicator.DefaultNets()
	}
	if c.InternalSuffixes == nil {
		c.InternalSuffixes = indicator.DefaultInternalSuffixes()
	}
}

func (p *ProviderConfig) setDefaults() {
	if p.TTLHit <= 0 {
		p.TTLHit = 24 * time.Hour
	}
	if p.TTLNotFound <= 0 {
		p.TTLNotFound = 6 * time.Hour
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if p.CredentialFingerprint == "" {
		p.CredentialFingerprint = "anon"
	}
}

func (p ProviderConfig) validate(name string) error {
	if p.Rate < 0 || p.Burst < 0 || p.MaxConcurrent < 0 || p.MaxWait < 0 {
		return fmt.Errorf("%w: provider %s: negative limit", ErrInvalidConfig, name)
	}
	if len(p.CredentialFingerprint) > 16 {
		return fmt.Errorf("%w: provider %s: CredentialFingerprint looks like a secret; pass cache.Fingerprint(secret)", ErrInvalidConfig, name)
	}
	return nil
}

func (p ProviderConfig) limits() limit.Config {
	return limit.Config{Rate: p.Rate, Burst: p.Burst, Quotas: p.Quotas, MaxConcurrent: p.MaxConcurrent, MaxWait: p.MaxWait}
}
