//go:build integration

package state

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
)

// BenchmarkRedisBatch measures what correlate asks of Redis per poll:
// ApplyBatch of a 500-record batch over 5,000 indicators, with a fifth of
// the previous batch's indicators as published verdicts. It reports records/s, round trips per
// batch and the Redis server CPU per record (from INFO commandstats), on the
// script path and on owner-side state (Config.LocalStates).
func BenchmarkRedisBatch(b *testing.B) {
	for _, bc := range []struct {
		name  string
		local int
	}{{"script", 0}, {"local", 20000}} {
		b.Run(bc.name, func(b *testing.B) { benchRedisBatch(b, Config{LocalStates: bc.local}) })
	}
}

func benchRedisBatch(b *testing.B, cfg Config) {
	c := redis.NewClient(&redis.Options{Addr: benchAddr()})
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(b.Context()).Err(); err != nil {
		b.Fatalf("redis unreachable: %v", err)
	}
	h := &countHook{}
	c.AddHook(h)
	s, err := NewRedis(b.Context(), c, cfg)
	if err != nil {
		b.Fatal(err)
	}
	const batch, indicators = 500, 5000
	topic := fmt.Sprintf("raw.bench.%d", time.Now().UnixNano())
	var off int64
	next := func() []events.Enrichment {
		out := make([]events.Enrichment, batch)
		now := time.Now()
		for i := range out {
			off++
			n := off % indicators
			out[i] = rec(fmt.Sprintf("198.18.%d.%d", n/250, n%250), off, now, events.ActionBlocked, fmt.Sprintf("10.0.0.%d", off%50), 2)
			out[i].Observation.Producer.Topic = topic
		}
		return out
	}
	usec0 := redisUsec(b, c)
	h.pipelines, h.singles = 0, 0
	var records, batches int
	var published []LastVerdict // acked with the next batch, as the stage does
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		recs := next()
		b.StartTimer()
		res, err := s.ApplyBatch(b.Context(), published, recs)
		if err != nil {
			b.Fatal(err)
		}
		published = published[:0]
		for i := 0; i < len(res.Keys); i += 5 {
			published = append(published, LastVerdict{Key: res.Keys[i], Priority: 7, Level: "High", Action: events.VerdictAlert, DecidedAt: time.Now(), EmittedAt: time.Now()})
		}
		records += len(recs)
		batches++
	}
	b.StopTimer()
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(h.pipelines+h.singles)/float64(max(batches, 1)), "roundtrips/batch")
	b.ReportMetric((redisUsec(b, c)-usec0)/float64(max(records, 1)), "redis-µs/record")
}

func benchAddr() string {
	if a := strings.TrimSpace(os.Getenv("VIGIL_TEST_REDIS_ADDR")); a != "" {
		return a
	}
	return "127.0.0.1:36379"
}

// redisUsec is the Redis server's CPU time so far in µs (INFO cpu: user +
// sys of the main thread; other clients of a shared server add noise).
func redisUsec(b *testing.B, c *redis.Client) float64 {
	b.Helper()
	info, err := c.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user_main_thread" && k != "used_cpu_sys_main_thread") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			total += f * 1e6
		}
	}
	return total
}
