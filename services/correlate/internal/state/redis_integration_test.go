//go:build integration

package state

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", addr, err)
	}
	return c
}

func TestRedisContract(t *testing.T) {
	c := redisClient(t)
	runContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewRedis(t.Context(), c, Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRedisScriptFlushed checks that a store survives Redis losing its scripts.
func TestRedisScriptFlushed(t *testing.T) {
	c := redisClient(t)
	s, err := NewRedis(t.Context(), c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	e := rec("192.0.2.77", runID, time.Now(), events.ActionBlocked, "10.0.0.1", 1)
	sums, err := s.Apply(t.Context(), []events.Enrichment{e})
	if err != nil {
		t.Fatal(err)
	}
	if sums[0].Count < 1 {
		t.Fatalf("count = %d", sums[0].Count)
	}
}

// TestRedisOneRoundTrip checks that Apply of a batch is one pipeline.
func TestRedisOneRoundTrip(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisClient(t).(*redis.Client).Options().Addr})
	t.Cleanup(func() { _ = c.Close() })
	h := &countHook{}
	c.AddHook(h)
	s, err := NewRedis(t.Context(), c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]events.Enrichment, 100)
	for i := range batch {
		batch[i] = rec("192.0.2.78", runID+int64(i), time.Now(), events.ActionBlocked, "10.0.0.1", 1)
	}
	h.pipelines, h.singles, h.names = 0, 0, nil
	if _, err := s.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if h.pipelines != 1 || h.singles != 0 {
		t.Fatalf("round trips: pipelines=%d singles=%d (%v), want 1 pipeline", h.pipelines, h.singles, h.names)
	}
}

type countHook struct {
	pipelines, singles int
	names              []string
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hello" || cmd.Name() == "client" {
			return next(ctx, cmd) // connection setup
		}
		h.singles++
		h.names = append(h.names, cmd.Name())
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() == "hello" || cmds[0].Name() == "client" {
			return next(ctx, cmds) // connection setup
		}
		h.pipelines++
		h.names = append(h.names, fmt.Sprintf("pipeline(%d):%s", len(cmds), cmds[0].Name()))
		return next(ctx, cmds)
	}
}
