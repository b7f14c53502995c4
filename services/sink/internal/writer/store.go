package writer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	json "github.com/segmentio/encoding/json"
)

// Record is what the sink remembers about the last write of one indicator: the fingerprint of the
// payload (to skip no-op writes) and Vigil's decision (the baseline the feedback poller compares
// analysts' changes with).
type Record struct {
	Fingerprint string    `json:"fp"`
	ThreatQID   int64     `json:"id,omitempty"`
	Status      string    `json:"status,omitempty"`     // status Vigil last set ("" when Vigil never set one)
	Score       float64   `json:"score"`                // manual score Vigil last set, -1 none
	Action      string    `json:"action,omitempty"`     // verdict action
	Priority    int32     `json:"priority"`             // verdict priority
	AttrNames   []string  `json:"attr_names,omitempty"` // attribute names Vigil wrote last time
	AttrsFP     string    `json:"attrs_fp,omitempty"`   // fingerprint of the attribute set last written
	WrittenAt   time.Time `json:"written_at"`
	// Observed is the last analyst state the feedback poller reported (nil: none), so that one
	// change is reported once.
	Observed *Observed `json:"obs,omitempty"`
	// Removed is set by the feedback poller once it reported the indicator (ThreatQID) deleted
	// from ThreatQ; a later write replaces the record and clears it.
	Removed bool `json:"removed,omitempty"`
}

// Observed is an indicator state read back from ThreatQ.
type Observed struct {
	Status string  `json:"status,omitempty"`
	Score  float64 `json:"score"` // manual score, -1 none
}

// FingerprintStore keeps one Record per indicator key ("type:value").
// Implementations are safe for concurrent use; GetMany omits keys it does not hold.
type FingerprintStore interface {
	GetMany(ctx context.Context, keys []string) (map[string]Record, error)
	SetMany(ctx context.Context, recs map[string]Record) error
}

// MemoryStore is an in-process FingerprintStore (single replica, tests). It is unbounded.
type MemoryStore struct {
	mu   sync.RWMutex
	recs map[string]Record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{recs: map[string]Record{}} }

// GetMany implements FingerprintStore.
func (m *MemoryStore) GetMany(_ context.Context, keys []string) (map[string]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]Record, len(keys))
	for _, k := range keys {
		if r, ok := m.recs[k]; ok {
			out[k] = clone(r)
		}
	}
	return out, nil
}

// SetMany implements FingerprintStore.
func (m *MemoryStore) SetMany(_ context.Context, recs map[string]Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range recs {
		m.recs[k] = clone(r)
	}
	return nil
}

// Len returns the number of records held.
func (m *MemoryStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.recs)
}

func clone(r Record) Record {
	r.AttrNames = append([]string(nil), r.AttrNames...)
	if r.Observed != nil {
		o := *r.Observed
		r.Observed = &o
	}
	return r
}

// RedisKeyPrefix prefixes the Redis keys of RedisStore.
const RedisKeyPrefix = "vigil:sink:fp:v1:"

// RedisStore is a FingerprintStore in Redis: one JSON value per key under RedisKeyPrefix,
// read with MGET and written with one pipeline. TTL 0 keeps records forever.
type RedisStore struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewRedisStore returns a RedisStore over rdb.
func NewRedisStore(rdb redis.UniversalClient, ttl time.Duration) *RedisStore {
	return &RedisStore{rdb: rdb, ttl: ttl}
}

// GetMany implements FingerprintStore. Undecodable values are treated as absent.
func (s *RedisStore) GetMany(ctx context.Context, keys []string) (map[string]Record, error) {
	out := make(map[string]Record, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	// One pipeline of GETs rather than MGET, so keys may live on different cluster slots.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, RedisKeyPrefix+k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis get fingerprints: %w", err)
	}
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if err != nil {
			continue
		}
		var r Record
		if json.Unmarshal(b, &r) == nil {
			out[keys[i]] = r
		}
	}
	return out, nil
}

// SetMany implements FingerprintStore.
func (s *RedisStore) SetMany(ctx context.Context, recs map[string]Record) error {
	if len(recs) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for k, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode fingerprint %s: %w", k, err)
		}
		pipe.Set(ctx, RedisKeyPrefix+k, b, s.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis set fingerprints: %w", err)
	}
	return nil
}

// ScanMany returns up to about count records in key order after cursor ("" starts at the
// beginning) and the cursor of the next slice ("" when the scan wrapped around). It sorts the keys
// on every call: fine for the single-replica and test store it is.
func (m *MemoryStore) ScanMany(_ context.Context, cursor string, count int) (map[string]Record, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	keys := make([]string, 0, len(m.recs))
	for k := range m.recs {
		if k > cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	next := ""
	if count > 0 && len(keys) > count {
		keys = keys[:count]
		next = keys[count-1]
	}
	out := make(map[string]Record, len(keys))
	for _, k := range keys {
		out[k] = clone(m.recs[k])
	}
	return out, next, nil
}

// ScanMany returns the records of one SCAN step (COUNT count, so about count records) after
// cursor ("" or "0" starts) and the next cursor ("" when the scan completed). A SCAN may return a
// key twice; callers must tolerate it. With a Redis Cluster client it scans one node only.
func (s *RedisStore) ScanMany(ctx context.Context, cursor string, count int) (map[string]Record, string, error) {
	var cur uint64
	if cursor != "" {
		var err error
		if cur, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", fmt.Errorf("scan fingerprints: bad cursor %q: %w", cursor, err)
		}
	}
	keys, next, err := s.rdb.Scan(ctx, cur, RedisKeyPrefix+"*", int64(count)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("scan fingerprints: %w", err)
	}
	short := make([]string, 0, len(keys))
	for _, k := range keys {
		short = append(short, strings.TrimPrefix(k, RedisKeyPrefix))
	}
	recs, err := s.GetMany(ctx, short)
	if err != nil {
		return nil, "", err
	}
	if next == 0 {
		return recs, "", nil
	}
	return recs, strconv.FormatUint(next, 10), nil
}

var (
	_ FingerprintStore = (*MemoryStore)(nil)
	_ FingerprintStore = (*RedisStore)(nil)
)
