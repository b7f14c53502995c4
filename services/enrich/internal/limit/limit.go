// Package limit enforces per-provider call budgets: a token bucket for the rate, fixed-window quota counters
// for several windows at once (e.g. per minute, day and month), and a cap on concurrent calls.
//
// With Redis the bucket and the counters are shared by every replica and checked and consumed together in one
// atomic Lua script (using Redis' clock); without Redis they live in the process (x/time/rate and local
// counters). The concurrency cap is always per process.
//
// A caller that is out of tokens or quota waits until the budget frees up, at most Config.MaxWait; past that
// Acquire returns ErrRateLimited or ErrQuotaExhausted without waiting, which the enricher reports as a
// rate_limited outcome.
//
//	lim := limit.New(rdb)                         // rdb may be nil
//	_ = lim.Configure("abuseipdb", limit.Config{Rate: 1, Burst: 5, Quotas: []limit.Quota{{Window: 24 * time.Hour, Limit: 1000}}})
//	p, err := lim.Acquire(ctx, "abuseipdb")
//	if err != nil { /* rate_limited */ }
//	defer p.Release()
package limit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors returned by Acquire and Configure.
var (
	// ErrRateLimited means no token (or no concurrency slot) became free within MaxWait.
	ErrRateLimited = errors.New("rate limit: no token within max wait")
	// ErrQuotaExhausted means a quota window stays full for longer than MaxWait.
	ErrQuotaExhausted = errors.New("quota exhausted")
	// ErrNotConfigured means the provider was never passed to Configure.
	ErrNotConfigured = errors.New("provider not configured")
	// ErrInvalidConfig means a Config failed validation.
	ErrInvalidConfig = errors.New("invalid limit config")
)

// KeyPrefix starts every Redis key of this package. Keys embed the provider in a hash tag so one provider's
// bucket and counters share a cluster slot.
const KeyPrefix = "vigil:limit:v1:"

// Quota is a number of calls allowed per fixed window. Windows are aligned to the Unix epoch (a 24h window
// resets at 00:00 UTC; a "month" is whatever Window says, e.g. 30 days).
type Quota struct {
	Window time.Duration
	Limit  int64
}

// Config is one provider's budget. Zero Rate means no rate limit; empty Quotas means no quota; zero
// MaxConcurrent means no concurrency cap.
type Config struct {
	Rate          float64       // sustained calls per second
	Burst         int           // bucket size (default: max(1, ceil(Rate)))
	Quotas        []Quota       // all windows are checked and consumed together
	MaxConcurrent int           // max in-flight calls in this process
	MaxWait       time.Duration // longest Acquire waits for a token, slot or window (default 5s)
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.Rate < 0 || c.Burst < 0 || c.MaxConcurrent < 0 || c.MaxWait < 0 {
		return fmt.Errorf("%w: negative value", ErrInvalidConfig)
	}
	seen := map[time.Duration]bool{}
	for _, q := range c.Quotas {
		if q.Window < time.Millisecond || q.Limit <= 0 || seen[q.Window] {
			return fmt.Errorf("%w: quota window %s limit %d (windows must be >= 1ms, unique, limit > 0)", ErrInvalidConfig, q.Window, q.Limit)
		}
		seen[q.Window] = true
	}
	if c.Rate > 0 && c.Burst == 0 {
		c.Burst = max(1, int(c.Rate+0.999999))
	}
	if c.MaxWait == 0 {
		c.MaxWait = 5 * time.Second
	}
	return nil
}

// Permit is a granted call. Release it when the call returns.
type Permit struct {
	// Remaining is the smallest number of calls left over all quota windows after this one, or -1 when the
	// provider has no quota.
	Remaining int64
	release   func()
}

// Release frees the concurrency slot. It is safe to call on a zero Permit and more than once.
func (p *Permit) Release() {
	if p.release != nil {
		p.release()
		p.release = nil
	}
}

// decision is one attempt to take a token and a quota unit.
type decision struct {
	ok        bool
	wait      time.Duration // when !ok: how long until it may succeed
	quota     bool          // when !ok: a quota window (not the bucket) refused
	remaining int64
}

// budget takes one call's worth of tokens and quota atomically.
type budget interface {
	take(ctx context.Context) (decision, error)
	// takeN takes up to n calls' worth at once (as many as the bucket and every quota window allow now)
	// and returns how many, plus the smallest number of calls left over the quota windows (-1: no quota).
	takeN(ctx context.Context, n int) (int, int64, error)
	remaining(ctx context.Context) (int64, error)
}

type entry struct {
	cfg Config
	b   budget
	sem chan struct{} // nil: no cap
}

// Limiter holds the budgets of all providers. It is safe for concurrent use.
type Limiter struct {
	rdb redis.UniversalClient
	mu  sync.RWMutex
	m   map[string]*entry
}

// New returns a Limiter that shares budgets through rdb, or keeps them in the process when rdb is nil.
func New(rdb redis.UniversalClient) *Limiter {
	return &Limiter{rdb: rdb, m: map[string]*entry{}}
}

// Configure sets (or replaces) a provider's budget.
func (l *Limiter) Configure(provider string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configure %s: %w", provider, err)
	}
	e := &entry{cfg: cfg}
	if cfg.MaxConcurrent > 0 {
		e.sem = make(chan struct{}, cfg.MaxConcurrent)
	}
	if l.rdb != nil {
		e.b = newRedisBudget(l.rdb, provider, cfg)
	} else {
		e.b = newLocalBudget(cfg)
	}
	l.mu.Lock()
	l.m[provider] = e
	l.mu.Unlock()
	return nil
}

func (l *Limiter) get(provider string) (*entry, error) {
	l.mu.RLock()
	e, ok := l.m[provider]
	l.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", provider, ErrNotConfigured)
	}
	return e, nil
}

// Acquire waits for a concurrency slot, a token and a unit of every quota window, at most the provider's
// MaxWait in total, and returns a Permit to Release after the call. It returns ErrRateLimited or
// ErrQuotaExhausted at once when the budget will not free up within the remaining wait, and the ctx error
// when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context, provider string) (Permit, error) {
	e, err := l.get(provider)
	if err != nil {
		return Permit{}, err
	}
	deadline := time.Now().Add(e.cfg.MaxWait)
	var release func()
	if e.sem != nil {
		t := time.NewTimer(e.cfg.MaxWait)
		select {
		case e.sem <- struct{}{}:
			t.Stop()
			var once sync.Once
			release = func() { once.Do(func() { <-e.sem }) }
		case <-t.C:
			return Permit{}, fmt.Errorf("%s: concurrency slot: %w", provider, ErrRateLimited)
		case <-ctx.Done():
			t.Stop()
			return Permit{}, fmt.Errorf("%s: wait for slot: %w", provider, ctx.Err())
		}
	}
	fail := func(err error) (Permit, error) {
		if release != nil {
			release()
		}
		return Permit{}, err
	}
	for {
		d, err := e.b.take(ctx)
		if err != nil {
			return fail(fmt.Errorf("%s: take budget: %w", provider, err))
		}
		if d.ok {
			return Permit{Remaining: d.remaining, release: release}, nil
		}
		if time.Now().Add(d.wait).After(deadline) {
			if d.quota {
				return fail(fmt.Errorf("%s: window resets in %s: %w", provider, d.wait.Round(time.Millisecond), ErrQuotaExhausted))
			}
			return fail(fmt.Errorf("%s: %w", provider, ErrRateLimited))
		}
		// A little jitter keeps waiting replicas from retrying in lockstep.
		wait := d.wait + time.Duration(rand.Int64N(int64(d.wait/10)+1))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(fmt.Errorf("%s: wait for budget: %w", provider, ctx.Err()))
		}
	}
}

// Reserve takes up to n calls' worth of tokens and quota in ONE step (one script call with Redis), as many
// as the budget allows right now, without waiting, and returns how many it took (0..n) and the calls left in
// the tightest quota window (-1: no quota). Each reserved call then needs only AcquireReserved. Reserved
// budget is consumed even if the call is never made, so the limits are never exceeded. It is meant for a
// batch that knows how many calls it is about to make; the calls beyond the reservation use Acquire.
func (l *Limiter) Reserve(ctx context.Context, provider string, n int) (int, int64, error) {
	e, err := l.get(provider)
	if err != nil {
		return 0, 0, err
	}
	if n <= 0 {
		return 0, -1, nil
	}
	got, left, err := e.b.takeN(ctx, n)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: reserve budget: %w", provider, err)
	}
	return got, left, nil
}

// AcquireReserved is Acquire for a call whose token and quota Reserve already took: it waits (at most
// MaxWait) only for a concurrency slot. The Permit's Remaining is -1.
func (l *Limiter) AcquireReserved(ctx context.Context, provider string) (Permit, error) {
	e, err := l.get(provider)
	if err != nil {
		return Permit{}, err
	}
	if e.sem == nil {
		return Permit{Remaining: -1}, nil
	}
	t := time.NewTimer(e.cfg.MaxWait)
	defer t.Stop()
	select {
	case e.sem <- struct{}{}:
		var once sync.Once
		return Permit{Remaining: -1, release: func() { once.Do(func() { <-e.sem }) }}, nil
	case <-t.C:
		return Permit{}, fmt.Errorf("%s: concurrency slot: %w", provider, ErrRateLimited)
	case <-ctx.Done():
		return Permit{}, fmt.Errorf("%s: wait for slot: %w", provider, ctx.Err())
	}
}

// Remaining returns the smallest number of calls left over the provider's quota windows, or -1 when it has
// no quota.
func (l *Limiter) Remaining(ctx context.Context, provider string) (int64, error) {
	e, err := l.get(provider)
	if err != nil {
		return 0, err
	}
	n, err := e.b.remaining(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: remaining: %w", provider, err)
	}
	return n, nil
}
