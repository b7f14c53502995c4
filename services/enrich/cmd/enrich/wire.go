package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/config"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/otelmetrics"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/abuseipdb"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/criminalip"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/greynoise"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/internetdb"
	"github.com/vigilsec/vigil/services/enrich/internal/provider/offline"
	"github.com/vigilsec/vigil/services/enrich/internal/stage"
)

// app is everything enrich runs besides Kafka: providers, cache, limiter, enricher, metrics and the stage.
type app struct {
	enr     *enricher.Enricher
	lim     *limit.Limiter
	store   *cache.Store
	metrics *otelmetrics.Metrics
	handler *stage.Handler
	close   func() error // releases provider resources (offline MMDB files)
}

// build wires the stage from cfg. rdb may be nil (in-process cache and limits).
func build(cfg config.Config, rdb redis.UniversalClient, serde *events.Serde, meter metric.Meter, log *slog.Logger) (*app, error) {
	m, err := otelmetrics.New(meter)
	if err != nil {
		return nil, fmt.Errorf("enrich metrics: %w", err)
	}
	provs, closeProvs, err := buildProviders(cfg, newHTTPClient(cfg.Concurrency), log)
	if err != nil {
		return nil, err
	}
	store := cache.New(cfg.Cache, rdb, log)
	lim := limit.New(rdb)
	enr, err := enricher.New(cfg.Enricher(), provs, store, lim, log, m)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("enricher: %w", err), closeProvs())
	}
	scfg := stage.Config{OutTopic: cfg.OutTopic, RecordCacheSize: cfg.RecordCacheSize, RecordCacheTTL: cfg.Cache.L1TTL}
	if store.Shared() {
		scfg.Shared = store // records enriched by any replica are served by every other
	}
	h := stage.New(scfg, enr, serde, m, log)
	return &app{enr: enr, lim: lim, store: store, metrics: m, handler: h, close: closeProvs}, nil
}

// buildProviders creates a client for every enabled provider.
func buildProviders(cfg config.Config, hc *http.Client, log *slog.Logger) ([]provider.Provider, func() error, error) {
	var provs []provider.Provider
	closeAll := func() error { return nil }
	for _, pc := range cfg.Providers {
		if !pc.Settings.Enabled {
			continue
		}
		var (
			p   provider.Provider
			err error
		)
		switch pc.Name {
		case criminalip.Name:
			p, err = criminalip.New(criminalip.Config{BaseURL: pc.BaseURL, APIKey: pc.APIKey, Timeout: pc.Settings.Timeout, HTTPClient: hc})
		case internetdb.Name:
			p, err = internetdb.New(internetdb.Config{BaseURL: pc.BaseURL, Timeout: pc.Settings.Timeout, HTTPClient: hc})
		case abuseipdb.Name:
			p, err = abuseipdb.New(abuseipdb.Config{BaseURL: pc.BaseURL, APIKey: pc.APIKey, Timeout: pc.Settings.Timeout, HTTPClient: hc, MaxAgeInDays: pc.MaxAgeDays})
		case greynoise.Name:
			p, err = greynoise.New(greynoise.Config{BaseURL: pc.BaseURL, APIKey: pc.APIKey, Timeout: pc.Settings.Timeout, HTTPClient: hc})
		case offline.Name:
			var oc *offline.Client
			oc, err = offline.New(pc.Dir)
			if err == nil {
				closeAll = oc.Close
				ranges, dbs := oc.Loaded()
				log.Info("offline data", "dir", pc.Dir, "asn_ranges", ranges, "country_dbs", dbs)
				p = oc
			}
		default:
			err = fmt.Errorf("no client for provider %q", pc.Name)
		}
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("provider %s: %w", pc.Name, err), closeAll())
		}
		provs = append(provs, p)
	}
	return provs, closeAll, nil
}

// newHTTPClient is the client shared by the HTTP providers: TLS verified, bounded connection set-up.
// Each provider bounds a whole call with its own timeout. The idle pool keeps a connection for every call
// that can be in flight (the batch concurrency; several providers may share one host, e.g. the emulator),
// so a steady stream of calls reuses connections instead of dialling and closing one per call.
func newHTTPClient(concurrency int) *http.Client {
	idle := max(64, 2*concurrency)
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// breakerSource reports live breaker states (*enricher.Enricher).
type breakerSource interface {
	Providers() []string
	Breakers() map[string]string
}

// quotaSource reports the calls left in a provider's quota windows (*limit.Limiter).
type quotaSource interface {
	Remaining(ctx context.Context, provider string) (int64, error)
}

// debugProvider is one provider on /debug/enrich.
type debugProvider struct {
	Provider       string                  `json:"provider"`
	Breaker        string                  `json:"breaker"`         // closed / half-open / open
	QuotaRemaining int64                   `json:"quota_remaining"` // -1: no quota configured
	QuotaError     string                  `json:"quota_error,omitempty"`
	Cache          otelmetrics.CacheCounts `json:"cache"` // this process since start
	CacheHitRatio  float64                 `json:"cache_hit_ratio"`
}

// debugState is the body of /debug/enrich (read by vigilctl).
type debugState struct {
	SharedCache   bool            `json:"shared_cache"`    // Redis behind the in-process cache
	CacheHitRatio float64         `json:"cache_hit_ratio"` // all providers, this process since start
	Providers     []debugProvider `json:"providers"`
}

// debugHandler serves /debug/enrich: breaker state, quota remaining and cache hit ratio per provider.
func debugHandler(br breakerSource, q quotaSource, m *otelmetrics.Metrics, shared bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		counts := map[string]otelmetrics.CacheCounts{}
		for _, s := range m.Summary() {
			counts[s.Provider] = s.Cache
		}
		states := br.Breakers()
		st := debugState{SharedCache: shared, Providers: []debugProvider{}}
		var total otelmetrics.CacheCounts
		for _, name := range br.Providers() {
			c := counts[name]
			dp := debugProvider{Provider: name, Breaker: states[name], Cache: c, CacheHitRatio: c.HitRatio(), QuotaRemaining: -1}
			if n, err := q.Remaining(ctx, name); err != nil {
				dp.QuotaError = err.Error()
			} else {
				dp.QuotaRemaining = n
			}
			total.Hit += c.Hit
			total.Negative += c.Negative
			total.Miss += c.Miss
			total.Stale += c.Stale
			st.Providers = append(st.Providers, dp)
		}
		st.CacheHitRatio = total.HitRatio()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}
