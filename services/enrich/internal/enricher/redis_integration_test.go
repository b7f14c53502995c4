//go:build integration

package enricher

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

func redisAddr() string {
	if a := os.Getenv("VIGIL_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:36379"
}

func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s unreachable: %v", redisAddr(), err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// runID keeps runs on a shared Redis apart: it is the credential fingerprint of every test provider.
func runID() string { return cache.Fingerprint(fmt.Sprint(time.Now().UnixNano())) }

type roundTrips struct{ cmds, pipelines atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			h.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			h.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

// TestBatchOneRedisRoundTrip: a batch whose answers are in Redis but not in this replica's L1 costs exactly one
// Redis round trip for all its lookups, over all providers.
func TestBatchOneRedisRoundTrip(t *testing.T) {
	rdb := testRedis(t)
	fp := runID()
	provs := []provider.Provider{&fakeProvider{name: "a"}, &fakeProvider{name: "b"}}
	cfg := Config{Retry: fastRetry, Providers: map[string]ProviderConfig{
		"a": enabled(ProviderConfig{CredentialFingerprint: fp}), "b": enabled(ProviderConfig{CredentialFingerprint: fp}),
	}}
	var obs []events.Observation
	for i := range 100 {
		obs = append(obs, ip(fmt.Sprintf("45.33.34.%d", i%50+1)))
	}
	warm, err := New(cfg, provs, cache.New(cache.Config{}, rdb, nil), limit.New(rdb), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch(t, warm, obs...)

	counted := redis.NewClient(&redis.Options{Addr: redisAddr()})
	t.Cleanup(func() { _ = counted.Close() })
	h := &roundTrips{}
	counted.AddHook(h)
	cold, err := New(cfg, provs, cache.New(cache.Config{}, counted, nil), limit.New(counted), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := batch(t, cold, obs...)
	for _, en := range out {
		if r := result(t, en, "b"); r.CachedAt.IsZero() || r.Status != events.StatusOK {
			t.Fatalf("not served from Redis: %+v", r)
		}
	}
	if h.pipelines.Load() != 1 || h.cmds.Load() != 0 {
		t.Fatalf("lookups took %d pipelines and %d commands, want exactly 1 round trip", h.pipelines.Load(), h.cmds.Load())
	}
	for _, p := range provs {
		if n := p.(*fakeProvider).count(); n != 50 {
			t.Fatalf("%s called %d times, want 50 (the cold replica must not call)", p.Name(), n)
		}
	}
}

// TestColdBatchConstantRedisWork: a batch of 50 new indicators over two providers with shared rate limits
// and quotas costs a constant number of Redis round trips for locks and budget (the lock claim, its
// re-read, one budget reservation per provider and the lock release), plus grouped answer writes; the
// budget is consumed exactly once per call.
func TestColdBatchConstantRedisWork(t *testing.T) {
	fp := runID()
	names := []string{"ra" + fp, "rb" + fp}
	provs := []provider.Provider{&fakeProvider{name: names[0]}, &fakeProvider{name: names[1]}}
	cfg := Config{Retry: fastRetry, Providers: map[string]ProviderConfig{}}
	for _, n := range names {
		cfg.Providers[n] = enabled(ProviderConfig{CredentialFingerprint: fp, Rate: 1000, Burst: 200,
			Quotas: []limit.Quota{{Window: time.Hour, Limit: 1000}}})
	}
	var obs []events.Observation
	for i := range 50 {
		obs = append(obs, ip(fmt.Sprintf("45.33.37.%d", i+1)))
	}
	counted := redis.NewClient(&redis.Options{Addr: redisAddr()})
	t.Cleanup(func() { _ = counted.Close() })
	if err := counted.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	h := &roundTrips{}
	counted.AddHook(h)
	lim := limit.New(counted)
	e, err := New(cfg, provs, cache.New(cache.Config{}, counted, nil), lim, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := batch(t, e, obs...)
	for _, en := range out {
		if r := result(t, en, names[1]); r.Status != events.StatusOK {
			t.Fatalf("lookup: %+v", r)
		}
	}
	answers := int64(2 * len(obs))
	// GetMany + claim + re-read + release = 4 pipelines, plus the SET pipelines: answers finishing
	// together share one, so there are fewer than answers; 2 reservations (a script may be sent twice
	// when Redis first has to load it).
	if p, c := h.pipelines.Load(), h.cmds.Load(); p <= 4 || p >= 4+answers || c < 2 || c > 4 {
		t.Fatalf("%d pipelines and %d commands for %d answers; want 5..%d pipelines and 2 reservation scripts", p, c, answers, 3+answers)
	}
	for _, n := range names {
		left, err := lim.Remaining(t.Context(), n)
		if err != nil || left != 1000-int64(len(obs)) {
			t.Fatalf("%s quota left %d (%v), want %d", n, left, err, 1000-len(obs))
		}
	}
}

// TestStampedeThreeInstances: 1,000 concurrent lookups of one indicator through 3 enrichers (separate L1s,
// one Redis) make exactly one provider call.
func TestStampedeThreeInstances(t *testing.T) {
	rdb := testRedis(t)
	fp := runID()
	f := &fakeProvider{name: "criminalip", delay: 100 * time.Millisecond}
	cfg := Config{Retry: fastRetry, Providers: map[string]ProviderConfig{"criminalip": enabled(ProviderConfig{CredentialFingerprint: fp})}}
	var es []*Enricher
	for range 3 {
		e, err := New(cfg, []provider.Provider{f}, cache.New(cache.Config{}, rdb, nil), limit.New(rdb), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 1000 {
		e := es[i%3]
		wg.Go(func() {
			out, err := e.EnrichBatch(t.Context(), []events.Observation{ip("45.33.35.7")})
			if err != nil || out[0].Results[0].Status != events.StatusOK {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if f.count() != 1 || bad.Load() != 0 {
		t.Fatalf("provider calls = %d (want 1), failed lookups = %d", f.count(), bad.Load())
	}
}

// TestSharedQuotaAcrossInstances: two replicas draw from one quota in Redis.
func TestSharedQuotaAcrossInstances(t *testing.T) {
	rdb := testRedis(t)
	name := "q" + runID()
	f := &fakeProvider{name: name}
	cfg := Config{Retry: fastRetry, Concurrency: 1, Providers: map[string]ProviderConfig{
		name: enabled(ProviderConfig{Quotas: []limit.Quota{{Window: time.Hour, Limit: 3}}, MaxWait: 20 * time.Millisecond}),
	}}
	var es []*Enricher
	for range 2 {
		e, err := New(cfg, []provider.Provider{f}, cache.New(cache.Config{}, rdb, nil), limit.New(rdb), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	batch(t, es[0], ip("45.33.36.1"), ip("45.33.36.2"))
	out := batch(t, es[1], ip("45.33.36.3"), ip("45.33.36.4"))
	if r := result(t, out[1], name); r.Status != events.StatusRateLimited || f.count() != 3 {
		t.Fatalf("4th lookup: %+v after %d calls", r, f.count())
	}
}

// BenchmarkEnrichBatchWarmRedis measures the L1+Redis path: a one-entry L1 so lookups go to Redis.
func BenchmarkEnrichBatchWarmRedis(b *testing.B) {
	runWarm(b, cache.New(cache.Config{L1Size: 1}, testRedis(b), nil))
}
