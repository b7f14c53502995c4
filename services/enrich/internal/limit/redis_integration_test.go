//go:build integration

package limit

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestRedis(t *testing.T) {
	rdb := testRedis(t)
	runSuite(t, func(*testing.T) *Limiter { return New(rdb) })
}

// TestSharedAcrossInstances: two Limiters (two replicas) on one Redis draw from one bucket and one quota.
func TestSharedAcrossInstances(t *testing.T) {
	rdb := testRedis(t)
	a, b := New(rdb), New(rdb)
	t.Run("quota", func(t *testing.T) {
		p := uniqueProvider(t)
		cfg := Config{Quotas: []Quota{{Window: time.Hour, Limit: 3}}, MaxWait: 20 * time.Millisecond}
		mustConfigure(t, a, p, cfg)
		mustConfigure(t, b, p, cfg)
		acquire(t, a, p)
		acquire(t, a, p)
		acquire(t, b, p)
		if _, err := b.Acquire(t.Context(), p); !errors.Is(err, ErrQuotaExhausted) {
			t.Fatalf("b: err = %v, want ErrQuotaExhausted", err)
		}
		if n, err := a.Remaining(t.Context(), p); err != nil || n != 0 {
			t.Fatalf("a remaining = %d, %v", n, err)
		}
	})
	t.Run("rate", func(t *testing.T) {
		p := uniqueProvider(t)
		cfg := Config{Rate: 10, Burst: 2, MaxWait: time.Second}
		mustConfigure(t, a, p, cfg)
		mustConfigure(t, b, p, cfg)
		acquire(t, a, p)
		acquire(t, a, p)
		start := time.Now()
		acquire(t, b, p)
		if d := time.Since(start); d < 70*time.Millisecond {
			t.Fatalf("b got a token after %s: the bucket is not shared", d)
		}
	})
}
