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

func TestRedisFeedbackContract(t *testing.T) {
	c := redisClient(t)
	runFeedbackContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewRedis(t.Context(), c, Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRedisFeedbackDurableAndShared: what one store instance recorded is
// seen by another on its own connection (a second replica, or the same
// replica after a restart).
func TestRedisFeedbackDurableAndShared(t *testing.T) {
	addr := redisClient(t).(*redis.Client).Options().Addr
	open := func() *Redis {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		s, err := NewRedis(t.Context(), c, Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	action := fmt.Sprintf("block-shared-%d", runID)
	k := "ipv6:" + uniq(200)
	entry := AllowEntry{List: "analyst-feedback", Analyst: "jdoe", Reason: "partner VPN", ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Millisecond)}
	if err := a.SavePublished(t.Context(), []LastVerdict{{Key: k, Priority: 9, Level: "critical", Action: action, DecidedAt: time.Now(), EmittedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	rec := FeedbackRecord{Source: FeedbackSource(fmt.Sprintf("fb.shared.%d", runID), 0, 5), Key: k, FalsePositive: action, Allow: &entry}
	if n, err := a.RecordFeedback(t.Context(), []FeedbackRecord{rec}); err != nil || n != 1 {
		t.Fatalf("record on a = %d, %v", n, err)
	}
	// The same record delivered to the other replica (after a rebalance) is a replay.
	if n, err := b.RecordFeedback(t.Context(), []FeedbackRecord{rec}); err != nil || n != 0 {
		t.Fatalf("record on b = %d, %v; want 0 new", n, err)
	}
	c := open() // "restarted"
	for name, s := range map[string]*Redis{"b": b, "restarted": c} {
		ps, err := s.Priors(t.Context(), []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if ps[0].Allow == nil || ps[0].Allow.Reason != entry.Reason || !ps[0].Allow.ExpiresAt.Equal(entry.ExpiresAt) || !ps[0].HasVerdict {
			t.Errorf("%s: prior = %+v, want the allow entry and the verdict", name, ps[0])
		}
		kpi, err := s.KPI(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if kpi.Published[action] != 1 || kpi.FalsePositives[action] != 1 {
			t.Errorf("%s: published %d, false positives %d; want 1, 1", name, kpi.Published[action], kpi.FalsePositives[action])
		}
	}
}

// TestRedisAllowPrune: recording feedback deletes expired allow entries from
// the hash (readers already ignore them).
func TestRedisAllowPrune(t *testing.T) {
	c := redisClient(t)
	clk := &fakeClock{}
	clk.Set(time.Now())
	s, err := NewRedis(t.Context(), c, Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	old, kept := "ipv6:"+uniq(210), "ipv6:"+uniq(211)
	src := fmt.Sprintf("fb.prune.%d", runID)
	if _, err := s.RecordFeedback(t.Context(), []FeedbackRecord{
		{Source: FeedbackSource(src, 0, 1), Key: old, Allow: &AllowEntry{List: "x", ExpiresAt: clk.Now().Add(time.Minute)}},
		{Source: FeedbackSource(src, 0, 2), Key: kept, Allow: &AllowEntry{List: "x", ExpiresAt: clk.Now().Add(time.Hour)}},
	}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if _, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: FeedbackSource(src, 0, 3), Key: kept}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.HMGet(t.Context(), allowKey, old, kept).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != nil || got[1] == nil {
		t.Errorf("allow hash = %v, want the expired entry deleted and the other kept", got)
	}
	t.Cleanup(func() { c.HDel(context.Background(), allowKey, kept) })
}

// TestRedisPriorsOneRoundTrip: Priors reads verdicts and allow entries in one pipeline.
func TestRedisPriorsOneRoundTrip(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisClient(t).(*redis.Client).Options().Addr})
	t.Cleanup(func() { _ = c.Close() })
	h := &countHook{}
	c.AddHook(h)
	s, err := NewRedis(t.Context(), c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = "ipv6:" + uniq(300+i)
	}
	h.pipelines, h.singles, h.names = 0, 0, nil
	if _, err := s.Priors(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
	if h.pipelines != 1 || h.singles != 0 {
		t.Fatalf("round trips: pipelines=%d singles=%d (%v), want 1 pipeline", h.pipelines, h.singles, h.names)
	}
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
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := s.RecordFeedback(t.Context(), []FeedbackRecord{{Source: FeedbackSource(fmt.Sprintf("fb.flush.%d", runID), 0, 1), Key: "ipv6:" + uniq(400)}})
	if err != nil || n != 1 {
		t.Fatalf("record feedback after flush = %d, %v", n, err)
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
