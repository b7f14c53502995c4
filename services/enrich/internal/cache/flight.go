package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

// FetchFunc produces a fresh answer for a missing key. Its entry is stored only when Entry.Cacheable; an
// error is handed to the callers and never stored.
type FetchFunc func(ctx context.Context) (Entry, error)

// releaseScript deletes the lock only if it still holds our token (compare-and-delete), so a leader whose
// lock already expired never removes the next leader's lock.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

type loadResult struct {
	entry     Entry
	fromCache bool
}

// Load returns the fresh entry for key from the cache or, on a miss, runs fetch exactly once for all
// concurrent callers: singleflight inside this Store, and with Redis a short lock (SET NX PX with a random
// token) across replicas. A replica that does not get the lock polls the cache every PollInterval until the
// leader's answer appears; if the lock disappears without an answer (the leader got an error, which is never
// cached) it competes for the lock again. After LockWait it returns ErrLockWait.
//
// accept, when not nil, narrows which cached entries count as hits (e.g. a caller's shorter configured TTL);
// a rejected entry is treated as a miss and re-fetched. fromCache reports that the entry was read from the
// cache rather than produced by this Store's fetch.
// The ctx of the first caller of a key bounds the shared work. Without Redis, or when Redis fails, the
// guard is per process only.
func (s *Store) Load(ctx context.Context, key string, accept func(Entry) bool, fetch FetchFunc) (e Entry, fromCache bool, err error) {
	if accept == nil {
		accept = func(Entry) bool { return true }
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		return s.load(ctx, key, accept, fetch)
	})
	r, _ := v.(loadResult)
	return r.entry, r.fromCache, err
}

func (s *Store) load(ctx context.Context, key string, accept func(Entry) bool, fetch FetchFunc) (loadResult, error) {
	if e, ok := s.lookup(ctx, key, accept); ok {
		return loadResult{entry: e, fromCache: true}, nil
	}
	if s.rdb == nil {
		return s.fill(ctx, key, fetch)
	}
	lockKey := lockKeyOf(key)
	token := newToken()
	deadline := time.Now().Add(s.cfg.LockWait)
	for {
		won, err := s.rdb.SetNX(ctx, lockKey, token, s.cfg.LockTTL).Result()
		if err != nil {
			if ctx.Err() != nil {
				return loadResult{}, fmt.Errorf("acquire fill lock: %w", ctx.Err())
			}
			s.log.WarnContext(ctx, "fill lock unavailable, fetching without it", "key", key, "err", err)
			return s.fill(ctx, key, fetch)
		}
		if won {
			defer s.release(ctx, lockKey, token)
			// The previous leader may have published between our miss and taking the lock.
			if e, ok := s.lookup(ctx, key, accept); ok {
				return loadResult{entry: e, fromCache: true}, nil
			}
			return s.fill(ctx, key, fetch)
		}
		wait := s.cfg.PollInterval
		if left := time.Until(deadline); left <= 0 {
			return loadResult{}, fmt.Errorf("load %s: %w", key, ErrLockWait)
		} else if left < wait {
			wait = left
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return loadResult{}, fmt.Errorf("wait for fill lock: %w", ctx.Err())
		case <-t.C:
		}
		if e, ok := s.lookup(ctx, key, accept); ok {
			return loadResult{entry: e, fromCache: true}, nil
		}
	}
}

// lookup reads one key; a Redis error is logged and treated as a miss so enrichment degrades to fetching.
func (s *Store) lookup(ctx context.Context, key string, accept func(Entry) bool) (Entry, bool) {
	e, ok, err := s.Get(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, "cache read", "key", key, "err", err)
	}
	return e, ok && accept(e)
}

func (s *Store) fill(ctx context.Context, key string, fetch FetchFunc) (loadResult, error) {
	e, err := fetch(ctx)
	if err != nil {
		return loadResult{}, err
	}
	if e.Sorted == nil {
		e.Sorted = events.SortFields(e.Fields)
	}
	if e.Cacheable() {
		if err := s.setGrouped(ctx, key, e); err != nil {
			// The answer is still good for this batch; only sharing it failed.
			s.log.WarnContext(ctx, "cache write", "key", key, "err", err)
		}
	}
	return loadResult{entry: e}, nil
}

func (s *Store) release(ctx context.Context, lockKey, token string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := releaseScript.Run(rctx, s.rdb, []string{lockKey}, token).Err(); err != nil {
		s.log.WarnContext(ctx, "release fill lock (expires by itself)", "key", lockKey, "err", err)
	}
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// Claim is a set of fill locks taken together for one batch's misses (see Store.Claim). The zero Claim
// holds nothing. It is read-only after Claim returns, so concurrent fills may consult it.
type Claim struct {
	token string
	held  map[string]bool  // entry keys whose fill lock this claim holds
	found map[string]Entry // held keys another replica published just before the lock was taken
}

// Held reports whether the claim holds key's fill lock: the caller may fetch it with FillHeld without
// waiting for anybody.
func (c *Claim) Held(key string) bool { return c != nil && c.held[key] }

// Found returns the entry that was published for a held key between the caller's miss and the lock.
func (c *Claim) Found(key string) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	e, ok := c.found[key]
	return e, ok
}

// Claim takes the cross-replica fill locks of keys (a batch's cache misses) in ONE pipelined round trip
// (SET NX PX per key), then re-reads the won keys in one more (the previous leader may have published
// between the miss and the lock). Keys another replica holds are not in the claim: fetch those with Load,
// which waits for that replica's answer. Without Redis, or when Redis fails, the claim holds nothing and
// every key goes through Load. Release the claim when its fills are done.
func (s *Store) Claim(ctx context.Context, keys []string) *Claim {
	c := &Claim{token: newToken()}
	if s.rdb == nil || len(keys) == 0 {
		return c
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.SetNX(ctx, lockKeyOf(k), c.token, s.cfg.LockTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "claim fill locks", "keys", len(keys), "err", err)
		// Some locks may have been taken: give them back so other replicas need not wait them out.
		for i, k := range keys {
			if won, err := cmds[i].Result(); err == nil && won {
				if c.held == nil {
					c.held = map[string]bool{}
				}
				c.held[k] = true
			}
		}
		s.Release(ctx, c)
		return &Claim{}
	}
	won := make([]string, 0, len(keys))
	for i, k := range keys {
		if cmds[i].Val() {
			won = append(won, k)
		}
	}
	c.held = make(map[string]bool, len(won))
	for _, k := range won {
		c.held[k] = true
	}
	if len(won) == 0 {
		return c
	}
	hits, err := s.GetMany(ctx, won)
	if err != nil {
		s.log.WarnContext(ctx, "re-read claimed keys", "keys", len(won), "err", err)
	}
	if len(hits) > 0 {
		c.found = hits
	}
	return c
}

// FillHeld runs fetch for a key whose fill lock c holds and stores a cacheable answer (L1 and Redis), so
// replicas waiting on the lock see it. It does not release the lock: Release does, for the whole claim.
func (s *Store) FillHeld(ctx context.Context, key string, fetch FetchFunc) (Entry, error) {
	r, err := s.fill(ctx, key, fetch)
	return r.entry, err
}

// Release gives back every lock of c in one pipelined round trip (compare-and-delete, so a lock that
// expired and was taken by another replica is left alone). Locks not released expire after LockTTL.
func (s *Store) Release(ctx context.Context, c *Claim) {
	if s.rdb == nil || c == nil || len(c.held) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	pipe := s.rdb.Pipeline()
	for k := range c.held {
		releaseScript.Eval(rctx, pipe, []string{lockKeyOf(k)}, c.token)
	}
	if _, err := pipe.Exec(rctx); err != nil {
		s.log.WarnContext(ctx, "release fill locks (they expire by themselves)", "locks", len(c.held), "err", err)
	}
}

// lockKeyOf is the fill lock key of an entry key.
func lockKeyOf(key string) string { return lockPrefix + strings.TrimPrefix(key, KeyPrefix) }
