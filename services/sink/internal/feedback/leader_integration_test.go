//go:build integration

package feedback

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestIntegrationRedisLeaderOneAtATime(t *testing.T) {
	t.Parallel()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	key := fmt.Sprintf("vigil:test:leader:%d", rand.Int64())
	defer rdb.Del(t.Context(), key)
	a, _ := NewRedisLeader(rdb, key, 300*time.Millisecond)
	b, _ := NewRedisLeader(rdb, key, 300*time.Millisecond)
	if ok, err := a.Acquire(t.Context()); err != nil || !ok {
		t.Fatalf("first replica must lead: %v %v", ok, err)
	}
	if ok, err := b.Acquire(t.Context()); err != nil || ok {
		t.Fatalf("second replica must not lead while the lease is held: %v %v", ok, err)
	}
	if ok, err := a.Acquire(t.Context()); err != nil || !ok {
		t.Fatalf("the holder renews: %v %v", ok, err)
	}
	time.Sleep(450 * time.Millisecond) // a stops renewing: the lease expires
	if ok, err := b.Acquire(t.Context()); err != nil || !ok {
		t.Fatalf("after expiry another replica takes over: %v %v", ok, err)
	}
	if ok, _ := a.Acquire(t.Context()); ok {
		t.Fatal("the old holder must not lead once another replica holds the lease")
	}
}
