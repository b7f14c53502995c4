// Package cache is the enrichment result cache: an in-process LRU with TTL (L1) in front of an optional shared
// Redis (L2), plus a stampede guard that lets exactly one caller across all replicas fetch a missing entry.
//
// Only answers (events.StatusOK and events.StatusNotFound) are ever stored; errors, throttling and breaker
// outcomes are refused with ErrNotCacheable. Every entry carries its own fetch time and TTL, and an expired
// entry is treated as a miss on read whatever L1 or Redis still hold.
//
// Usage:
//
//	store, err := cache.New(cache.Config{L1Size: 100_000}, rdb, logger) // rdb may be nil: L1 only
//	key := cache.Key("criminalip", cache.Fingerprint(apiKey), ind)
//	hits, err := store.GetMany(ctx, keys)                               // one Redis round trip
//	e, fromCache, err := store.Load(ctx, key, fetch)                    // stampede-guarded fill
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/vigilsec/vigil/pkg/events"
)

// KeyPrefix starts every cache key; bump the version when the entry encoding changes incompatibly.
const KeyPrefix = "vigil:enrich:v1:"

// lockPrefix starts the stampede lock keys (separate from entries so a purge of entries never drops a lock).
const lockPrefix = "vigil:enrich:lock:v1:"

// ErrNotCacheable is returned by Set and SetMany for an entry whose status is not ok / not_found or whose
// TTL is not positive.
var ErrNotCacheable = errors.New("entry not cacheable")

// ErrLockWait is returned by Load when another replica holds the fill lock longer than Config.LockWait and
// has not published a result.
var ErrLockWait = errors.New("wait for fill lock timed out")

// Entry is one provider's cached answer for one indicator.
type Entry struct {
	Status    string            // events.StatusOK or events.StatusNotFound
	Fields    map[string]string // provider evidence
	Exposure  events.Exposure   // the provider's contribution to the merged view
	FetchedAt time.Time         // when the provider answered
	TTL       time.Duration     // how long the answer stays valid after FetchedAt

	// Sorted is Fields as sorted key/value pairs, kept next to the map so an encoder need not sort the
	// map for every record that uses the entry. The Store fills it for what it returns; nil means unknown.
	Sorted events.SortedFields
}

// ExpiresAt is when the entry stops being served.
func (e Entry) ExpiresAt() time.Time { return e.FetchedAt.Add(e.TTL) }

// Fresh reports whether the entry may still be served at now.
func (e Entry) Fresh(now time.Time) bool { return now.Before(e.ExpiresAt()) }

// Cacheable reports whether the entry may be stored: an answer (ok / not_found) with a positive TTL.
func (e Entry) Cacheable() bool {
	return (e.Status == events.StatusOK || e.Status == events.StatusNotFound) && e.TTL > 0 && !e.FetchedAt.IsZero()
}

// Key builds the cache key of one provider answer. credFP is the provider credential's Fingerprint, so two
// accounts (which may see different data or plans) never share results.
func Key(provider, credFP string, ind events.Indicator) string {
	return KeyPrefix + provider + ":" + credFP + ":" + ind.Key()
}

// Fingerprint returns a short, non-reversible id of a credential (first 8 hex digits of its SHA-256), or
// "anon" for an empty one. Only the fingerprint is ever stored or logged.
func Fingerprint(secret string) string {
	if secret == "" {
		return "anon"
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

// Config tunes a Store. Zero values take the defaults noted on each field.
type Config struct {
	L1Size       int           // max L1 entries (default 100,000)
	L1TTL        time.Duration // upper bound an entry stays in L1 (default 10m); each entry's own TTL still applies
	LockTTL      time.Duration // lifetime of the cross-replica fill lock; must exceed one full provider call with retries, i.e. enricher Retry.MaxElapsed + Timeout (default 60s)
	LockWait     time.Duration // how long a follower waits for the leader's result (default LockTTL)
	PollInterval time.Duration // follower poll period (default 20ms)
}

func (c *Config) setDefaults() {
	if c.L1Size <= 0 {
		c.L1Size = 100_000
	}
	if c.L1TTL <= 0 {
		c.L1TTL = 10 * time.Minute
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 60 * time.Second
	}
	if c.LockWait <= 0 {
		c.LockWait = c.LockTTL
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 20 * time.Millisecond
	}
}

// Store is the two-tier cache. It is safe for concurrent use. With a nil Redis client it serves from L1 only
// and the stampede guard is per process.
//
// The L1 (hashicorp expirable LRU v2) runs one cleanup goroutine for the life of the process; create one Store
// per process, not per request.
type Store struct {
	cfg    Config
	l1     *expirable.LRU[string, Entry]
	rdb    redis.UniversalClient
	log    *slog.Logger
	flight singleflight.Group
	writes groupWriter
	now    func() time.Time
}

// New returns a Store. rdb may be nil (L1 only). logger may be nil (discard).
func New(cfg Config, rdb redis.UniversalClient, logger *slog.Logger) *Store {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		cfg: cfg,
		l1:  expirable.NewLRU[string, Entry](cfg.L1Size, nil, cfg.L1TTL),
		rdb: rdb,
		log: logger,
		now: time.Now,
	}
}

// Shared reports whether the Store has a Redis tier.
func (s *Store) Shared() bool { return s.rdb != nil }

// Get returns the fresh entry for key, from L1 or else Redis.
func (s *Store) Get(ctx context.Context, key string) (Entry, bool, error) {
	m, err := s.GetMany(ctx, []string{key})
	e, ok := m[key]
	return e, ok, err
}

// GetMany returns the fresh entries among keys: L1 first, then the remaining keys in ONE Redis round trip
// (a pipeline of GETs, which also works on a cluster). Redis hits are copied into L1. Expired or undecodable
// entries are misses. On a Redis error the L1 hits are returned together with the error.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string]Entry, error) {
	now := s.now()
	out := make(map[string]Entry, len(keys))
	var misses []string
	for _, k := range keys {
		if e, ok := s.l1.Get(k); ok {
			if e.Fresh(now) {
				out[k] = e
				continue
			}
			s.l1.Remove(k)
		}
		misses = append(misses, k)
	}
	if s.rdb == nil || len(misses) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(misses))
	for i, k := range misses {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("redis get %d keys: %w", len(misses), err)
	}
	for i, cmd := range cmds {
		raw, err := cmd.Bytes()
		if err != nil {
			continue // redis.Nil: a miss
		}
		e, err := decode(raw)
		if err != nil {
			s.log.WarnContext(ctx, "undecodable cache entry", "key", misses[i], "err", err)
			continue
		}
		if !e.Fresh(now) {
			continue
		}
		out[misses[i]] = e
		s.l1.Add(misses[i], e)
	}
	return out, nil
}

// Set stores one entry in L1 and Redis. It refuses anything but ok / not_found with ErrNotCacheable.
func (s *Store) Set(ctx context.Context, key string, e Entry) error {
	return s.SetMany(ctx, map[string]Entry{key: e})
}

// SetMany stores entries in L1 and, pipelined in one round trip, in Redis with each entry's remaining TTL.
// If any entry is not cacheable nothing is stored and ErrNotCacheable is returned.
func (s *Store) SetMany(ctx context.Context, entries map[string]Entry) error {
	keys := make([]string, 0, len(entries))
	vals := make([]Entry, 0, len(entries))
	for k, e := range entries {
		keys = append(keys, k)
		vals = append(vals, e)
	}
	return s.setEntries(ctx, keys, vals)
}

// setEntries is SetMany over parallel slices.
func (s *Store) setEntries(ctx context.Context, keys []string, entries []Entry) error {
	for i, e := range entries {
		if !e.Cacheable() {
			return fmt.Errorf("set %s (status %q, ttl %s): %w", keys[i], e.Status, e.TTL, ErrNotCacheable)
		}
	}
	now := s.now()
	pipe := (redis.Pipeliner)(nil)
	if s.rdb != nil {
		pipe = s.rdb.Pipeline()
	}
	queued := 0
	for i, e := range entries {
		k := keys[i]
		left := e.ExpiresAt().Sub(now)
		if left <= 0 {
			continue
		}
		if e.Sorted == nil {
			e.Sorted = events.SortFields(e.Fields)
		}
		s.l1.Add(k, e)
		if pipe == nil {
			continue
		}
		raw, err := encode(e)
		if err != nil {
			return fmt.Errorf("encode %s: %w", k, err)
		}
		pipe.Set(ctx, k, raw, left)
		queued++
	}
	if queued == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis set %d keys: %w", queued, err)
	}
	return nil
}

// Purge removes key from L1 and Redis (vigilctl). Other replicas' L1 copies live until their L1TTL or the
// entry's TTL runs out.
func (s *Store) Purge(ctx context.Context, key string) error {
	s.l1.Remove(key)
	if s.rdb == nil {
		return nil
	}
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("redis del %s: %w", key, err)
	}
	return nil
}

// RecordPrefix starts the keys of the shared tier of enrich's record cache: one indicator's provider results
// and merged exposure, already encoded (see the enrich stage). A purge (vigilctl) deletes them with the
// provider entries.
const RecordPrefix = "vigil:enrich:rec:v1:"

// RecordKey is the shared record-cache key of an indicator under a configuration scope (see the enricher's
// ReuseScope); allowlisted records are kept apart (providers skip them).
func RecordKey(scope string, allowlisted bool, ind events.Indicator) string {
	flag := "p"
	if allowlisted {
		flag = "a"
	}
	return RecordPrefix + scope + ":" + flag + ":" + ind.Key()
}

// GetRecords returns the stored values of keys, nil where there is none, in one round trip. Without Redis
// every value is nil.
func (s *Store) GetRecords(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if s.rdb == nil || len(keys) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("redis get %d records: %w", len(keys), err)
	}
	for i, c := range cmds {
		if b, err := c.Bytes(); err == nil {
			out[i] = b
		}
	}
	return out, nil
}

// SetRecords stores vals under keys, each with its TTL (entries with a TTL <= 0 are skipped), in one round
// trip. Without Redis it does nothing.
func (s *Store) SetRecords(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	if s.rdb == nil || len(keys) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	n := 0
	for i, k := range keys {
		if ttls[i] <= 0 {
			continue
		}
		pipe.Set(ctx, k, vals[i], ttls[i])
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis set %d records: %w", n, err)
	}
	return nil
}
