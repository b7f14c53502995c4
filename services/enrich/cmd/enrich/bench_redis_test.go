//go:build integration

package main

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkStageWarmRedis is the warm path when answers come from Redis: an L1 of one entry, so every
// lookup is a Redis GET and a decode (the bench's warm pass before its L1 fills, or an L1 too small for the
// working set).
func BenchmarkStageWarmRedis(b *testing.B) {
	rdb := redis.NewClient(&redis.Options{Addr: envOr("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379")})
	b.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(b.Context()).Err(); err != nil {
		b.Fatalf("redis unreachable: %v", err)
	}
	a, serde := benchApp(b, rdb, 1)
	recs := benchRecords(b, serde, 0, 500)
	handle(b, a, recs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		handle(b, a, recs)
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}
