//go:build integration

package feedback

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisCursorContract(t *testing.T) {
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	key := fmt.Sprintf("%s:test-%d", RedisCursorKey, time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(t.Context(), key) })
	cursorContract(t, NewRedisCursor(rdb, key))
}
