package feedback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Leader decides which replica polls ThreatQ, so N sink replicas do not publish each analyst
// decision N times. Acquire is called before every poll; it returns true while this replica
// holds the lease. Implementations are safe for concurrent use.
type Leader interface {
	Acquire(ctx context.Context) (bool, error)
}

// RedisLeader is a lease in Redis (SET NX PX), renewed by its holder on every Acquire.
type RedisLeader struct {
	rdb   redis.UniversalClient
	key   string
	ttl   time.Duration
	token string
}

// renewLease extends the lease only when this replica still holds it.
var renewLease = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// NewRedisLeader returns a lease on key (default "vigil:sink:feedback:leader") that expires
// after ttl without renewal; use a ttl of a few poll intervals.
func NewRedisLeader(rdb redis.UniversalClient, key string, ttl time.Duration) (*RedisLeader, error) {
	if key == "" {
		key = "vigil:sink:feedback:leader"
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("leader token: %w", err)
	}
	return &RedisLeader{rdb: rdb, key: key, ttl: ttl, token: hex.EncodeToString(b)}, nil
}

// Acquire takes the lease if it is free, or renews it if this replica holds it.
func (l *RedisLeader) Acquire(ctx context.Context) (bool, error) {
	ok, err := l.rdb.SetNX(ctx, l.key, l.token, l.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("acquire feedback lease: %w", err)
	}
	if ok {
		return true, nil
	}
	n, err := renewLease.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("renew feedback lease: %w", err)
	}
	return n == 1, nil
}
