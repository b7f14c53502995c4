//go:build integration

package cache

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/pkg/events"
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

func TestContractRedis(t *testing.T) {
	rdb := testRedis(t)
	runContract(t, func(t *testing.T) (*Store, *Store) {
		return New(Config{L1Size: 1000}, rdb, nil), New(Config{L1Size: 1000}, rdb, nil)
	})
}

// countHook counts commands and pipelines sent to Redis.
type countHook struct{ cmds, pipelines atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			h.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			h.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake reports connection set-up commands go-redis sends on a new pooled connection.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func TestGetManyOneRoundTrip(t *testing.T) {
	rdb := testRedis(t)
	writer := New(Config{}, rdb, nil)
	keys := make([]string, 200)
	entries := map[string]Entry{}
	for i := range keys {
		keys[i] = uniqueKey(t)
		if i%3 != 0 {
			entries[keys[i]] = sampleEntry(events.StatusOK, time.Minute)
		}
	}
	if err := writer.SetMany(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	h := &countHook{}
	counted := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	t.Cleanup(func() { _ = counted.Close() })
	if err := counted.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	counted.AddHook(h)
	reader := New(Config{}, counted, nil)
	got, err := reader.GetMany(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("got %d hits, want %d", len(got), len(entries))
	}
	if h.pipelines.Load() != 1 || h.cmds.Load() != 0 {
		t.Fatalf("round trips: %d pipelines, %d single commands; want exactly 1 pipeline", h.pipelines.Load(), h.cmds.Load())
	}
	// Second read is all L1 (hits) plus one trip for the known misses.
	h.pipelines.Store(0)
	if _, err := reader.GetMany(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
	if h.pipelines.Load() != 1 {
		t.Fatalf("second read: %d pipelines", h.pipelines.Load())
	}
}

// TestStampedeAcrossReplicas: 1,000 concurrent loads of one key over 3 Stores (separate L1s) on one Redis
// call fetch exactly once.
func TestStampedeAcrossReplicas(t *testing.T) {
	rdb := testRedis(t)
	stores := []*Store{New(Config{}, rdb, nil), New(Config{}, rdb, nil), New(Config{}, rdb, nil)}
	k := uniqueKey(t)
	var calls atomic.Int32
	fetch := func(context.Context) (Entry, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return sampleEntry(events.StatusOK, time.Minute), nil
	}
	var wg sync.WaitGroup
	var errs atomic.Int32
	for i := range 1000 {
		s := stores[i%3]
		wg.Go(func() {
			if _, _, err := s.Load(t.Context(), k, nil, fetch); err != nil {
				errs.Add(1)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 || errs.Load() != 0 {
		t.Fatalf("fetch calls = %d (want 1), errors = %d", calls.Load(), errs.Load())
	}
}

// TestLeaderErrorLetsFollowerRetry: when the leader's fetch fails nothing is cached, the lock is released,
// and a waiting replica takes over instead of waiting LockWait.
func TestLeaderErrorLetsFollowerRetry(t *testing.T) {
	rdb := testRedis(t)
	a, b := New(Config{}, rdb, nil), New(Config{}, rdb, nil)
	k := uniqueKey(t)
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _, _ = a.Load(t.Context(), k, nil, func(context.Context) (Entry, error) {
			close(started)
			time.Sleep(50 * time.Millisecond)
			return Entry{}, context.DeadlineExceeded
		})
	})
	<-started
	begin := time.Now()
	e, fromCache, err := b.Load(t.Context(), k, nil, func(context.Context) (Entry, error) {
		return sampleEntry(events.StatusNotFound, time.Minute), nil
	})
	wg.Wait()
	if err != nil || fromCache || e.Status != events.StatusNotFound {
		t.Fatalf("follower: %+v fromCache=%v err=%v", e, fromCache, err)
	}
	if time.Since(begin) > 2*time.Second {
		t.Fatalf("follower waited %s", time.Since(begin))
	}
}

// TestClaimLocksABatchInFewRoundTrips: a claim over a batch's misses takes every free lock in one pipeline
// (plus one re-read of the won keys), skips locks another replica holds, reports entries published just
// before the lock, and its release frees exactly its own locks in one pipeline.
func TestClaimLocksABatchInFewRoundTrips(t *testing.T) {
	rdb := testRedis(t)
	other := New(Config{}, rdb, nil)
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = uniqueKey(t)
	}
	busy := other.Claim(t.Context(), keys[:5]) // another replica is filling the first five
	if !busy.Held(keys[0]) || !busy.Held(keys[4]) {
		t.Fatal("first claim did not take free locks")
	}
	published := sampleEntry(events.StatusOK, time.Minute)
	if err := other.Set(t.Context(), keys[9], published); err != nil { // answered before our lock
		t.Fatal(err)
	}

	h := &countHook{}
	counted := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	t.Cleanup(func() { _ = counted.Close() })
	if err := counted.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	counted.AddHook(h)
	s := New(Config{}, counted, nil)
	c := s.Claim(t.Context(), keys)
	for i, k := range keys {
		if want := i >= 5; c.Held(k) != want {
			t.Fatalf("key %d held = %v, want %v", i, c.Held(k), want)
		}
	}
	if e, ok := c.Found(keys[9]); !ok || e.Status != events.StatusOK {
		t.Fatalf("published entry not reported: %+v %v", e, ok)
	}
	if _, ok := c.Found(keys[10]); ok {
		t.Fatal("unpublished key reported as found")
	}
	if h.pipelines.Load() != 2 || h.cmds.Load() != 0 {
		t.Fatalf("claim: %d pipelines, %d single commands; want 2 pipelines", h.pipelines.Load(), h.cmds.Load())
	}
	if _, err := s.FillHeld(t.Context(), keys[10], func(context.Context) (Entry, error) { return published, nil }); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := other.Get(t.Context(), keys[10]); err != nil || !ok || e.Status != events.StatusOK {
		t.Fatalf("filled entry not shared: %+v %v %v", e, ok, err)
	}
	h.pipelines.Store(0)
	s.Release(t.Context(), c)
	if h.pipelines.Load() != 1 {
		t.Fatalf("release: %d pipelines, want 1", h.pipelines.Load())
	}
	n, err := rdb.Exists(t.Context(), lockKeyOf(keys[0]), lockKeyOf(keys[5]), lockKeyOf(keys[49])).Result()
	if err != nil || n != 1 {
		t.Fatalf("after release %d of (other's lock, two of ours) exist, want only the other's: %v", n, err)
	}
	other.Release(t.Context(), busy)
}

// TestConcurrentFillsShareWritePipelines: fills finishing together are written in fewer pipelines than
// fills, and each answer is visible to another replica as soon as its FillHeld returns.
func TestConcurrentFillsShareWritePipelines(t *testing.T) {
	rdb := testRedis(t)
	other := New(Config{}, rdb, nil)
	h := &countHook{}
	counted := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	t.Cleanup(func() { _ = counted.Close() })
	if err := counted.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	counted.AddHook(h)
	s := New(Config{}, counted, nil)
	const n = 64
	keys := make([]string, n)
	for i := range keys {
		keys[i] = uniqueKey(t)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, k := range keys {
		wg.Go(func() {
			<-start
			_, err := s.FillHeld(t.Context(), k, func(context.Context) (Entry, error) {
				return sampleEntry(events.StatusOK, time.Minute), nil
			})
			if err != nil {
				bad.Add(1)
				return
			}
			if _, ok, err := other.Get(t.Context(), k); err != nil || !ok {
				bad.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d fills failed or were not visible to another replica on return", bad.Load())
	}
	if p := h.pipelines.Load(); p == 0 || p >= n {
		t.Fatalf("%d fills wrote %d pipelines, want fewer pipelines than fills", n, p)
	}
}

// TestRecordsRedis: the shared record tier stores values with their TTLs and reads them back in one
// round trip, nil where there is none.
func TestRecordsRedis(t *testing.T) {
	rdb := testRedis(t)
	s := New(Config{}, rdb, nil)
	ind := events.Indicator{Type: events.TypeIPv4, Value: "198.51.100.77"}
	k1 := RecordKey("test"+time.Now().Format("150405.000000"), false, ind)
	k2 := RecordKey("test"+time.Now().Format("150405.000000"), true, ind)
	if k1 == k2 {
		t.Fatal("allow-listed and plain records share a key")
	}
	if err := s.SetRecords(t.Context(), []string{k1, k2}, [][]byte{[]byte("one"), []byte("two")}, []time.Duration{time.Minute, 0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRecords(t.Context(), []string{k1, k2})
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0]) != "one" || got[1] != nil {
		t.Fatalf("got %q, %q; want one and nothing (a TTL of 0 is not stored)", got[0], got[1])
	}
	if ttl := rdb.PTTL(t.Context(), k1).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL %v, want <= 1m", ttl)
	}
	rdb.Del(t.Context(), k1)
}
