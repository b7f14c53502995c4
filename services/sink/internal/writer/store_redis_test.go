//go:build integration

package writer

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	return rdb
}

func TestRedisStoreContract(t *testing.T) {
	rdb := testRedis(t)
	ns := fmt.Sprintf("test-%d:", time.Now().UnixNano())
	s := NewRedisStore(rdb, time.Minute)
	storeContract(t, s, ns)
	scanContract(t, s, ns)
	ttl, err := rdb.TTL(t.Context(), RedisKeyPrefix+ns+"ipv4:203.0.113.7").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL = %v, %v", ttl, err)
	}
	t.Cleanup(func() {
		keys, _ := rdb.Keys(t.Context(), RedisKeyPrefix+ns+"*").Result()
		if len(keys) > 0 {
			rdb.Del(t.Context(), keys...)
		}
	})
}

func TestWriterWithRedisStore(t *testing.T) {
	rdb := testRedis(t)
	e := newEnv(t, 99, nil)
	ns := fmt.Sprintf("198.51.%d.", time.Now().UnixNano()%200)
	store := NewRedisStore(rdb, time.Minute)
	w, err := New(e.w.cfg, e.tq, store, e.m, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := verdict(ns+"7", "block", "Is VPN", "true")
	w.Add(v, 1)
	if _, err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Add(v, 2)
	res, err := w.Flush(t.Context())
	if err != nil || res.Skipped != 1 || res.Calls != 0 {
		t.Fatalf("second flush = %+v, %v; want a fingerprint skip", res, err)
	}
	t.Cleanup(func() { rdb.Del(t.Context(), RedisKeyPrefix+v.Indicator.Key()) })
}
