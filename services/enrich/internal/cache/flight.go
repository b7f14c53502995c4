package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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
	lockKey := lockPrefix + strings.TrimPrefix(key, KeyPrefix)
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
	if e.Cacheable() {
		if err := s.Set(ctx, key, e); err != nil {
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
