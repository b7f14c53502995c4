// Package enricher turns a batch of observations into enrichments: for every enabled provider it skips what
// must not be queried, de-duplicates the batch, looks all keys up in the cache in one round trip, and fetches
// the misses concurrently through the call economy (stampede guard → retry with backoff → rate/quota limiter →
// circuit breaker → provider), then merges the answers into one exposure view.
//
// Outcomes never stop a batch: a provider that is down, throttled or open yields a per-provider status
// (error, rate_limited, breaker_open) and the records go on partially enriched. The one exception is a
// provider configured Required whose breaker is open: EnrichBatch then returns ErrRequiredProviderDown and the
// caller pauses its partitions until it recovers.
package enricher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// ErrRequiredProviderDown is returned by EnrichBatch when a provider configured Required has its breaker open
// and a record needed it. The caller should pause consumption and retry the batch later.
var ErrRequiredProviderDown = errors.New("required provider down")

// Skip reasons, in ProviderResult.Error when Status is events.StatusSkipped.
const (
	ReasonUnsupported = "unsupported_type"
	ReasonInvalid     = "invalid_indicator"
	ReasonAllowlisted = "allowlisted"
	ReasonInternal    = "internal"
	ReasonNoData      = "no_data" // the provider has no data source loaded (e.g. offline files missing)
)

// Error classes, in ProviderResult.Error for error / rate_limited / breaker_open, and the status label of
// Metrics.ProviderCall. Provider messages are never emitted.
const (
	ClassUnavailable  = "unavailable"
	ClassTimeout      = "timeout"
	ClassAuth         = "auth"
	ClassBadResponse  = "bad_response"
	ClassInvalidInput = "invalid_input"
	ClassRateLimited  = "rate_limited"
	ClassQuota        = "quota_exhausted"
	ClassBreakerOpen  = "breaker_open"
	ClassLockWait     = "lock_wait"
	ClassCanceled     = "canceled"
	ClassInternal     = "internal_error"
)

// Cache is what the enricher needs from the result cache (*cache.Store).
type Cache interface {
	// GetMany returns the fresh entries among keys in one round trip.
	GetMany(ctx context.Context, keys []string) (map[string]cache.Entry, error)
	// Load returns the cached entry accept agrees to, or runs fetch once across callers and replicas,
	// storing answers.
	Load(ctx context.Context, key string, accept func(cache.Entry) bool, fetch cache.FetchFunc) (cache.Entry, bool, error)
	// Claim takes the cross-replica fill locks of a batch's misses in one round trip.
	Claim(ctx context.Context, keys []string) *cache.Claim
	// FillHeld fetches and stores a key whose fill lock a Claim holds.
	FillHeld(ctx context.Context, key string, fetch cache.FetchFunc) (cache.Entry, error)
	// Release gives back a Claim's locks in one round trip.
	Release(ctx context.Context, c *cache.Claim)
}

// Limiter is what the enricher needs from the call budget (*limit.Limiter).
type Limiter interface {
	// Configure sets a provider's budget; New calls it once per enabled provider.
	Configure(provider string, cfg limit.Config) error
	// Acquire waits (bounded) for a slot, a token and quota; Release the permit after the call.
	Acquire(ctx context.Context, provider string) (limit.Permit, error)
	// Reserve takes up to n calls' budget in one step without waiting and returns how many it took and
	// the calls left in the tightest quota window (-1: none).
	Reserve(ctx context.Context, provider string, n int) (int, int64, error)
	// AcquireReserved waits only for a concurrency slot, for a call Reserve already budgeted.
	AcquireReserved(ctx context.Context, provider string) (limit.Permit, error)
}

var (
	_ Cache   = (*cache.Store)(nil)
	_ Limiter = (*limit.Limiter)(nil)
)

// errAborted marks an attempt cut short by the caller's ctx: not the provider's fault, so the breaker
// ignores it.
var errAborted = errors.New("aborted by caller")

type prov struct {
	name   string
	p      provider.Provider
	cfg    ProviderConfig
	types  map[string]bool // nil: whatever p.Supports
	br     *gobreaker.CircuitBreaker[provider.Result]
	noData bool // p reported at New that it has nothing to answer from
}

// availability is implemented by providers that can have no data source at all (the offline provider
// without its files). Such a provider is reported "skipped" with ReasonNoData instead of being called.
type availability interface {
	Available() bool
}

func (p *prov) serves(typ string) bool {
	if p.types != nil && !p.types[typ] {
		return false
	}
	return p.p.Supports(typ)
}

// Enricher enriches batches of observations. It is safe for concurrent use by several partitions' loops.
type Enricher struct {
	cfg   Config
	provs []*prov // enabled providers, sorted by name
	cache Cache
	lim   Limiter
	log   *slog.Logger
	m     Metrics
	now   func() time.Time
}

// New builds an Enricher over the providers that cfg enables, registers their budgets with lim and creates a
// breaker per provider. Every provider needs an entry in cfg.Providers (disabled ones are ignored). logger and
// m may be nil.
func New(cfg Config, providers []provider.Provider, c Cache, lim Limiter, logger *slog.Logger, m Metrics) (*Enricher, error) {
	cfg.setDefaults()
	if c == nil || lim == nil {
		return nil, fmt.Errorf("%w: cache and limiter are required", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics{}
	}
	e := &Enricher{cfg: cfg, cache: c, lim: lim, log: logger, m: m, now: time.Now}
	seen := map[string]bool{}
	for _, p := range providers {
		name := p.Name()
		if seen[name] {
			return nil, fmt.Errorf("%w: provider %s given twice", ErrInvalidConfig, name)
		}
		seen[name] = true
		pc, ok := cfg.Providers[name]
		if !ok {
			return nil, fmt.Errorf("%w: no config for provider %s", ErrInvalidConfig, name)
		}
		if !pc.Enabled {
			continue
		}
		pc.setDefaults()
		if err := pc.validate(name); err != nil {
			return nil, err
		}
		if err := lim.Configure(name, pc.limits()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		pr := &prov{name: name, p: p, cfg: pc}
		if a, ok := p.(availability); ok && !a.Available() {
			pr.noData = true
			e.log.Warn("provider has no data; its results will be skipped", "provider", name)
		}
		if len(pc.Types) > 0 {
			pr.types = map[string]bool{}
			for _, t := range pc.Types {
				pr.types[t] = true
			}
		}
		pr.br = e.newBreaker(name)
		m.Breaker(name, gobreaker.StateClosed.String())
		e.provs = append(e.provs, pr)
	}
	slices.SortFunc(e.provs, func(a, b *prov) int { return compareStrings(a.name, b.name) })
	return e, nil
}

// Providers returns the names of the enabled providers, sorted.
func (e *Enricher) Providers() []string {
	out := make([]string, len(e.provs))
	for i, p := range e.provs {
		out[i] = p.name
	}
	return out
}

// Breakers returns the current breaker state ("closed", "half-open", "open") of every enabled provider.
func (e *Enricher) Breakers() map[string]string {
	out := make(map[string]string, len(e.provs))
	for _, p := range e.provs {
		out[p.name] = p.br.State().String()
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *Enricher) newBreaker(name string) *gobreaker.CircuitBreaker[provider.Result] {
	bc := e.cfg.Breaker
	return gobreaker.NewCircuitBreaker[provider.Result](gobreaker.Settings{
		Name:        name,
		MaxRequests: bc.HalfOpenProbes,
		Timeout:     bc.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= bc.Failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			e.m.Breaker(name, to.String())
			e.log.Warn("provider breaker state", "provider", name, "from", from.String(), "to", to.String())
		},
		// not-found is a nil error; a rejected indicator is the input's fault, not the provider's.
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, provider.ErrInvalidInput) },
		// Throttling is handled by the limiter and retries; the caller giving up says nothing about health.
		IsExcluded: func(err error) bool {
			return errors.Is(err, errAborted) || errors.Is(err, provider.ErrRateLimited) || errors.Is(err, provider.ErrQuota)
		},
	})
}

// outcome is one provider's answer for one indicator plus its exposure contribution.
type outcome struct {
	res    events.ProviderResult
	exp    events.Exposure
	sorted events.SortedFields // res.Fields as sorted pairs, when the cache entry has them
}

// Cache lookup outcomes counted per batch (indexes into cacheResultNames).
const (
	cacheHit = iota
	cacheNegative
	cacheMiss
	cacheStale
	numCacheResults
)

var cacheResultNames = [numCacheResults]string{"hit", "negative", "miss", "stale"}

// task is one (provider, indicator) lookup shared by every record of the batch that needs it.
type task struct {
	pi   int
	key  string
	ind  events.Indicator
	recs []int
}

// EnrichBatch enriches obs and returns one Enrichment per observation, in order. Per-provider failures are
// reported as statuses, never as an error. It returns ErrRequiredProviderDown (wrapped with the provider name)
// when a Required provider's breaker is open for a record that needed it, and the ctx error when ctx ends;
// in both cases no enrichments are returned.
func (e *Enricher) EnrichBatch(ctx context.Context, obs []events.Observation) ([]events.Enrichment, error) {
	ens, _, err := e.enrich(ctx, obs, false)
	return ens, err
}

// EnrichBatchSorted is EnrichBatch that also returns, per enrichment and result, the result's Fields as
// events.SortedFields where the cache has them (nil elsewhere), for events.Serde.EncodeEnrichmentSorted.
func (e *Enricher) EnrichBatchSorted(ctx context.Context, obs []events.Observation) ([]events.Enrichment, [][]events.SortedFields, error) {
	return e.enrich(ctx, obs, true)
}

func (e *Enricher) enrich(ctx context.Context, obs []events.Observation, withSorted bool) ([]events.Enrichment, [][]events.SortedFields, error) {
	np := len(e.provs)
	out := make([][]outcome, len(obs))
	cells := make([]outcome, len(obs)*np) // one allocation for every (record, provider) cell
	tasks := make(map[string]*task, len(obs))
	var keys []string
	for i, o := range obs {
		out[i] = cells[i*np : (i+1)*np : (i+1)*np]
		verr := indicator.Validate(o.Indicator)
		internal := verr == nil && e.internal(o.Indicator)
		for pi, p := range e.provs {
			skip := ""
			switch {
			case !p.serves(o.Indicator.Type):
				skip = ReasonUnsupported
			case verr != nil:
				skip = ReasonInvalid
			case p.noData:
				skip = ReasonNoData
			case o.Allowlist != nil && !p.cfg.AllowAllowlisted:
				skip = ReasonAllowlisted
			case internal && !p.cfg.AllowInternal:
				skip = ReasonInternal
			}
			if skip != "" {
				out[i][pi].res = events.ProviderResult{Provider: p.name, Status: events.StatusSkipped, Error: skip}
				continue
			}
			key := cache.Key(p.name, p.cfg.CredentialFingerprint, o.Indicator)
			t, ok := tasks[key]
			if !ok {
				t = &task{pi: pi, key: key, ind: o.Indicator}
				tasks[key] = t
				keys = append(keys, key)
			}
			t.recs = append(t.recs, i)
		}
	}

	now := e.now()
	var misses []*task
	if len(keys) > 0 {
		hits, err := e.cache.GetMany(ctx, keys)
		if err != nil {
			// Degrade to fetching: a cache outage costs calls, not records.
			e.log.WarnContext(ctx, "cache lookup", "keys", len(keys), "err", err)
		}
		// Counted per batch, provider and result: one metric call each instead of one per key.
		counts := make([][numCacheResults]int64, np)
		for _, k := range keys {
			t := tasks[k]
			p := e.provs[t.pi]
			en, ok := hits[k]
			switch {
			case !ok:
				counts[t.pi][cacheMiss]++
			case !e.fresh(p, en, now):
				counts[t.pi][cacheStale]++
				ok = false
			case en.Status == events.StatusNotFound:
				counts[t.pi][cacheNegative]++
			default:
				counts[t.pi][cacheHit]++
			}
			if !ok {
				misses = append(misses, t)
				continue
			}
			e.assign(out, t, fromEntry(p.name, en, true))
		}
		for pi, c := range counts {
			for r, n := range c {
				if n > 0 {
					e.m.CacheResult(e.provs[pi].name, cacheResultNames[r], n)
				}
			}
		}
	}

	var claim *cache.Claim
	if len(misses) > 0 {
		// One round trip takes the fill locks of every miss; keys another replica is filling go through
		// Load, which waits for its answer.
		mkeys := make([]string, len(misses))
		for i, t := range misses {
			mkeys[i] = t.key
		}
		claim = e.cache.Claim(ctx, mkeys)
		defer e.cache.Release(ctx, claim)
		left := misses[:0]
		for _, t := range misses {
			p := e.provs[t.pi]
			if en, ok := claim.Found(t.key); ok && e.fresh(p, en, now) {
				e.assign(out, t, fromEntry(p.name, en, true))
				continue
			}
			left = append(left, t)
		}
		misses = left
	}

	e.fetchAll(ctx, out, misses, claim)
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("enrich batch: %w", err)
	}

	for pi, p := range e.provs {
		if !p.cfg.Required {
			continue
		}
		for i := range out {
			if out[i][pi].res.Status == events.StatusBreakerOpen {
				return nil, nil, fmt.Errorf("provider %s: %w", p.name, ErrRequiredProviderDown)
			}
		}
	}

	enrichedAt := e.now()
	res := make([]events.Enrichment, len(obs))
	allResults := make([]events.ProviderResult, len(obs)*np)
	var sorted [][]events.SortedFields
	var allSorted []events.SortedFields
	if withSorted {
		sorted = make([][]events.SortedFields, len(obs))
		allSorted = make([]events.SortedFields, len(obs)*np)
	}
	for i, o := range obs {
		results := allResults[i*np : (i+1)*np : (i+1)*np]
		if withSorted {
			sorted[i] = allSorted[i*np : (i+1)*np : (i+1)*np]
		}
		for pi := range out[i] {
			oc := &out[i][pi]
			results[pi] = oc.res
			if withSorted {
				sorted[i][pi] = oc.sorted
			}
			if s := oc.res.Status; s == events.StatusOK || s == events.StatusNotFound {
				e.m.Age(oc.res.Provider, enrichedAt.Sub(oc.res.FetchedAt))
			}
		}
		res[i] = events.Enrichment{Observation: o, Results: results, Exposure: merge(e.cfg.Merge, out[i]), EnrichedAt: enrichedAt}
	}
	return res, sorted, nil
}

// fetchAll looks the misses up concurrently: each provider's calls run on their own, at most its
// MaxConcurrent (or Concurrency) at a time, and all of them together at most Concurrency at a time. A
// provider that is slow or allows one call at a time so never holds the slots of the others.
func (e *Enricher) fetchAll(ctx context.Context, out [][]outcome, misses []*task, claim *cache.Claim) {
	if len(misses) == 0 {
		return
	}
	byProv := make([][]*task, len(e.provs))
	for _, t := range misses {
		byProv[t.pi] = append(byProv[t.pi], t)
	}
	slots := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for pi, ts := range byProv {
		if len(ts) == 0 {
			continue
		}
		limit := e.cfg.Concurrency
		if mc := e.provs[pi].cfg.MaxConcurrent; mc > 0 && mc < limit {
			limit = mc
		}
		p := e.provs[pi]
		wg.Go(func() {
			// The calls of the keys this batch holds the fill lock of are certain: take their tokens and
			// quota in one step. Calls beyond the reservation, and retries, take theirs one by one.
			held := 0
			for _, t := range ts {
				if claim.Held(t.key) {
					held++
				}
			}
			var pool *atomic.Int64
			if held > 0 {
				n, left, err := e.lim.Reserve(ctx, p.name, held)
				if err != nil {
					e.log.WarnContext(ctx, "reserve call budget", "provider", p.name, "calls", held, "err", err)
				}
				if left >= 0 && err == nil {
					e.m.Quota(p.name, left)
				}
				pool = new(atomic.Int64)
				pool.Store(int64(n))
			}
			// A few workers take the tasks in turn (rather than a goroutine per task), so the deep stack of
			// a call is grown once per worker, not once per call.
			var next atomic.Int64
			var workers sync.WaitGroup
			for range min(limit, len(ts)) {
				workers.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= len(ts) || ctx.Err() != nil {
							return // on ctx's end EnrichBatch reports its error
						}
						select {
						case slots <- struct{}{}:
						case <-ctx.Done():
							return
						}
						t := ts[i]
						e.assign(out, t, e.lookup(ctx, t, claim, pool))
						<-slots
					}
				})
			}
			workers.Wait()
		})
	}
	wg.Wait()
}

// assign gives one task's outcome to every record that needed it. Tasks own disjoint (record, provider) cells,
// so concurrent tasks never write the same cell.
func (e *Enricher) assign(out [][]outcome, t *task, oc outcome) {
	for _, i := range t.recs {
		out[i][t.pi] = oc
	}
}

// fresh enforces the configured TTL on read, on top of the TTL the entry was stored with.
func (e *Enricher) fresh(p *prov, en cache.Entry, now time.Time) bool {
	ttl := p.cfg.TTLHit
	if en.Status == events.StatusNotFound {
		ttl = p.cfg.TTLNotFound
	}
	return now.Sub(en.FetchedAt) < min(ttl, en.TTL)
}

// internal reports an indicator that names something inside the organisation.
func (e *Enricher) internal(ind events.Indicator) bool {
	switch ind.Type {
	case events.TypeIPv4, events.TypeIPv6:
		a, err := indicator.ParseIP(ind.Value)
		return err == nil && e.cfg.InternalNets.Contains(a)
	case events.TypeDomain:
		return e.cfg.InternalSuffixes.Match(ind.Value)
	case events.TypeURL:
		u, err := url.Parse(ind.Value)
		if err != nil {
			return false
		}
		host, err := indicator.URLHost(u)
		if err != nil {
			return false
		}
		if a, err := indicator.ParseIP(host); err == nil {
			return e.cfg.InternalNets.Contains(a)
		}
		return e.cfg.InternalSuffixes.Match(host)
	}
	return false
}

func fromEntry(name string, en cache.Entry, cached bool) outcome {
	oc := outcome{res: events.ProviderResult{
		Provider:  name,
		Status:    en.Status,
		FetchedAt: en.FetchedAt,
		TTL:       en.TTL,
		Fields:    en.Fields,
	}, sorted: en.Sorted}
	if cached {
		oc.res.CachedAt = en.FetchedAt // entries are written when fetched
	}
	if en.Status == events.StatusOK {
		oc.exp = en.Exposure
	}
	return oc
}

// lookup fetches one missing key: directly when the batch's claim holds its fill lock, else through the
// stampede guard (which waits for the replica filling it).
func (e *Enricher) lookup(ctx context.Context, t *task, claim *cache.Claim, pool *atomic.Int64) outcome {
	p := e.provs[t.pi]
	fetch := func(ctx context.Context) (cache.Entry, error) { return e.call(ctx, p, t.ind, pool) }
	var (
		en        cache.Entry
		fromCache bool
		err       error
	)
	if claim.Held(t.key) {
		en, err = e.cache.FillHeld(ctx, t.key, fetch)
	} else {
		accept := func(en cache.Entry) bool { return e.fresh(p, en, e.now()) }
		en, fromCache, err = e.cache.Load(ctx, t.key, accept, fetch)
	}
	if err != nil {
		status, class := classify(err)
		if status == events.StatusError && class == ClassInternal {
			e.log.WarnContext(ctx, "provider lookup", "provider", p.name, "err", err)
		}
		return outcome{res: events.ProviderResult{Provider: p.name, Status: status, Error: class}}
	}
	return fromEntry(p.name, en, fromCache)
}

// call asks the provider with retries: limiter → breaker → Lookup (with timeout) per attempt. The first
// attempt uses a call from pool (the batch's reserved budget) while it has one.
func (e *Enricher) call(ctx context.Context, p *prov, ind events.Indicator, pool *atomic.Int64) (cache.Entry, error) {
	first := true
	attempt := func() (provider.Result, error) {
		var (
			permit limit.Permit
			err    error
		)
		if first && pool != nil && pool.Add(-1) >= 0 {
			permit, err = e.lim.AcquireReserved(ctx, p.name)
		} else {
			permit, err = e.lim.Acquire(ctx, p.name)
		}
		first = false
		if err != nil {
			return provider.Result{}, backoff.Permanent(err)
		}
		defer permit.Release()
		if permit.Remaining >= 0 {
			e.m.Quota(p.name, permit.Remaining)
		}
		start := time.Now()
		res, err := p.br.Execute(func() (provider.Result, error) {
			cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
			defer cancel()
			r, err := p.p.Lookup(cctx, ind)
			if err != nil && ctx.Err() != nil {
				return r, fmt.Errorf("%w: %w", errAborted, err)
			}
			return r, err
		})
		e.m.ProviderCall(p.name, callStatus(res, err), time.Since(start))
		switch {
		case err == nil:
			return res, nil
		case !transient(err):
			return res, backoff.Permanent(err)
		}
		var pe *provider.Error
		if errors.As(err, &pe) && pe.RetryAfter > 0 {
			return res, fmt.Errorf("%w (%w)", err, &backoff.RetryAfterError{Duration: pe.RetryAfter})
		}
		return res, err
	}
	rc := e.cfg.Retry
	res, err := backoff.Retry(ctx, attempt,
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: rc.Initial, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: rc.Max}),
		backoff.WithMaxTries(rc.MaxAttempts),
		backoff.WithMaxElapsedTime(rc.MaxElapsed),
	)
	if err != nil {
		return cache.Entry{}, fmt.Errorf("lookup %s: %w", p.name, err)
	}
	en := cache.Entry{Status: events.StatusNotFound, FetchedAt: e.now(), TTL: p.cfg.TTLNotFound}
	if res.Found {
		en.Status, en.TTL, en.Fields, en.Exposure = events.StatusOK, p.cfg.TTLHit, res.Fields, res.Exposure
	}
	return en, nil
}

// transient reports errors worth another attempt.
func transient(err error) bool {
	if errors.Is(err, errAborted) || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return false
	}
	return errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRateLimited) || errors.Is(err, context.DeadlineExceeded)
}

func callStatus(res provider.Result, err error) string {
	if err != nil {
		_, class := classify(err)
		return class
	}
	if res.Found {
		return events.StatusOK
	}
	return events.StatusNotFound
}

// classify maps an error to a ProviderResult status and class.
func classify(err error) (status, class string) {
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return events.StatusBreakerOpen, ClassBreakerOpen
	case errors.Is(err, limit.ErrQuotaExhausted), errors.Is(err, provider.ErrQuota):
		return events.StatusRateLimited, ClassQuota
	case errors.Is(err, limit.ErrRateLimited), errors.Is(err, provider.ErrRateLimited):
		return events.StatusRateLimited, ClassRateLimited
	case errors.Is(err, cache.ErrLockWait):
		return events.StatusError, ClassLockWait
	case errors.Is(err, errAborted), errors.Is(err, context.Canceled):
		return events.StatusError, ClassCanceled
	case errors.Is(err, provider.ErrAuth):
		return events.StatusError, ClassAuth
	case errors.Is(err, provider.ErrInvalidInput):
		return events.StatusError, ClassInvalidInput
	case errors.Is(err, provider.ErrBadResponse):
		return events.StatusError, ClassBadResponse
	case errors.Is(err, context.DeadlineExceeded):
		return events.StatusError, ClassTimeout
	case errors.Is(err, provider.ErrUnavailable):
		return events.StatusError, ClassUnavailable
	}
	return events.StatusError, ClassInternal
}

// ReuseKey is the key under which an observation's provider results may be reused for another observation
// (see ReusableUntil): the results depend only on the indicator and on whether an allow-list matched at
// ingest (which providers skip), given this Enricher's configuration.
func (e *Enricher) ReuseKey(ind events.Indicator, allowlisted bool) string {
	if allowlisted {
		return ind.Key() + "\x00allowlisted"
	}
	return ind.Key()
}

// ReuseScope identifies the configuration results are reused under, for a cache shared by replicas: a
// hash of every setting an enrichment depends on (the enabled providers, their credentials' fingerprints,
// types, TTLs and what they may be sent, whether they have data, the merge rules and the internal networks
// and suffixes). Replicas with the same configuration share records; a changed setting starts afresh.
func (e *Enricher) ReuseScope() string {
	h := sha256.New()
	for _, p := range e.provs {
		fmt.Fprintf(h, "%s|%s|%v|%d|%d|%t|%t|%t\n", p.name, p.cfg.CredentialFingerprint, p.cfg.Types,
			p.cfg.TTLHit, p.cfg.TTLNotFound, p.cfg.AllowInternal, p.cfg.AllowAllowlisted, p.noData)
	}
	fmt.Fprintf(h, "merge %v|%s|%s\n", e.cfg.Merge.NetworkPreference, e.cfg.Merge.AbuseProvider, e.cfg.Merge.GreyNoiseProvider)
	fmt.Fprintf(h, "internal %v\n", e.cfg.InternalNets.Prefixes())
	fmt.Fprintf(h, "suffixes %v\n", e.cfg.InternalSuffixes)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ReusableUntil reports until when results (one Enrichment's, in provider order) may be served again to an
// observation with the same ReuseKey without asking the cache: the earliest time one of its answers stops
// being fresh (the same rule as a cache read: fetch time plus the smaller of the entry's and the
// configured TTL). It reports false when a result is not an answer or a deterministic skip (error,
// rate_limited, breaker_open): those are retried by the next lookup, never reused. A zero time with true
// means no answer limits the reuse (every result is a skip).
func (e *Enricher) ReusableUntil(results []events.ProviderResult) (time.Time, bool) {
	if len(results) != len(e.provs) {
		return time.Time{}, false
	}
	var until time.Time
	for i := range results {
		r := &results[i]
		p := e.provs[i]
		if r.Provider != p.name {
			return time.Time{}, false
		}
		var ttl time.Duration
		switch r.Status {
		case events.StatusSkipped:
			continue
		case events.StatusOK:
			ttl = p.cfg.TTLHit
		case events.StatusNotFound:
			ttl = p.cfg.TTLNotFound
		default:
			return time.Time{}, false
		}
		exp := r.FetchedAt.Add(min(ttl, r.TTL))
		if until.IsZero() || exp.Before(until) {
			until = exp
		}
	}
	return until, true
}

// Reused counts n results of status served again without a cache lookup (see ReusableUntil) as the cache
// lookups they replace: hits for answers with data, negative hits for not-found; skips are not lookups.
func (e *Enricher) Reused(provider, status string, n int64) {
	switch status {
	case events.StatusOK:
		e.m.CacheResult(provider, cacheResultNames[cacheHit], n)
	case events.StatusNotFound:
		e.m.CacheResult(provider, cacheResultNames[cacheNegative], n)
	}
}

// ReusedAge records the age at use of an answer served again.
func (e *Enricher) ReusedAge(provider string, age time.Duration) { e.m.Age(provider, age) }
