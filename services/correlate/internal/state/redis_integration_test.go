//go:build integration

package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

var diffRuns atomic.Int64

// TestRedisMatchesMemory applies the same random batches (several records
// per indicator, replays, clocks moving by seconds to hours, records older
// than the windows) to Redis and to Memory, alternating Apply and
// ApplyBatch, and requires the same summaries and priors: the cached window
// sums of the Redis script must equal a full recount.
func TestRedisMatchesMemory(t *testing.T) { diffAgainstMemory(t, 0, false, 1) }

// TestRedisLocalMatchesMemory runs the same differential test on the
// owner-side path (redis_local.go): every round through ApplyBatch, so
// states stay cached across rounds, and alternating with the script path
// (Apply), which hands states back and forth between the two.
func TestRedisLocalMatchesMemory(t *testing.T) {
	t.Run("cached", func(t *testing.T) { diffAgainstMemory(t, 1000, true, 1) })
	t.Run("alternating", func(t *testing.T) { diffAgainstMemory(t, 1000, false, 1) })
	t.Run("evicting", func(t *testing.T) { diffAgainstMemory(t, 2, true, 1) })
	// each batch in parts by KeyShard, applied concurrently (as correlate's
	// stage does with Config.Shards)
	t.Run("parallel parts", func(t *testing.T) { diffAgainstMemory(t, 1000, true, 4) })
	t.Run("parallel parts evicting", func(t *testing.T) { diffAgainstMemory(t, 3, true, 4) })
}

// applyParts is ApplyBatch of batch (and published) split into n parts by
// KeyShard, run concurrently, merged into one Batch in the order of keys.
func applyParts(t *testing.T, s *Redis, published []LastVerdict, batch []events.Enrichment, n int, keys []string) Batch {
	t.Helper()
	type part struct {
		pub   []LastVerdict
		batch []events.Enrichment
		res   Batch
		err   error
	}
	parts := make([]part, n)
	for _, e := range batch {
		p := &parts[KeyShard(e.Observation.Indicator.Key())%n]
		p.batch = append(p.batch, e)
	}
	for _, v := range published {
		p := &parts[KeyShard(v.Key)%n]
		p.pub = append(p.pub, v)
	}
	var wg sync.WaitGroup
	for i := range parts {
		p := &parts[i]
		wg.Go(func() { p.res, p.err = s.ApplyBatch(t.Context(), p.pub, p.batch) })
	}
	wg.Wait()
	byKey := map[string][2]any{}
	for _, p := range parts {
		if p.err != nil {
			t.Fatal(p.err)
		}
		for k, key := range p.res.Keys {
			byKey[key] = [2]any{p.res.Summaries[k], p.res.Priors[k]}
		}
	}
	out := Batch{Keys: keys}
	for _, key := range keys {
		r, ok := byKey[key]
		if !ok {
			t.Fatalf("no part answered for %s", key)
		}
		out.Summaries = append(out.Summaries, r[0].(Summary))
		out.Priors = append(out.Priors, r[1].(Prior))
	}
	return out
}

func diffAgainstMemory(t *testing.T, local int, batchOnly bool, parts int) {
	clk := &fakeClock{}
	clk.Set(time.Date(2026, 5, 4, 10, 59, 30, 0, time.UTC))
	rs, err := NewRedis(t.Context(), redisClient(t), Config{Now: clk.Now, LocalStates: local})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := NewMemory(Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	inv := diffRuns.Add(1) // -count=N runs in one process: fresh indicators each time
	rng := rand.New(rand.NewPCG(uint64(runID), uint64(inv)))
	topic := fmt.Sprintf("raw.diff.%d.%d", runID, inv)
	actions := []string{events.ActionAllowed, events.ActionBlocked, events.ActionAlerted, "dropped", ""}
	steps := []time.Duration{0, 5 * time.Second, 40 * time.Second, 3 * time.Minute, 50 * time.Minute, 5 * time.Hour, 30 * time.Hour}
	var sent []events.Enrichment
	var roundStart []int      // sent[roundStart[r]:] were sent from round r on
	var pending []LastVerdict // published with the next ApplyBatch
	var off int64
	for round := range 40 {
		roundStart = append(roundStart, len(sent))
		// replay only the last rounds' records: the seen markers expire on
		// Redis' clock, not on the fake one
		replayFrom := roundStart[max(0, round-3)]
		clk.Add(steps[rng.IntN(len(steps))])
		now := clk.Now()
		batch := make([]events.Enrichment, 1+rng.IntN(30))
		for i := range batch {
			if len(sent) > replayFrom && rng.IntN(6) == 0 {
				batch[i] = sent[replayFrom+rng.IntN(len(sent)-replayFrom)] // replay
				continue
			}
			off++
			age := (time.Duration(rng.IntN(3)) * time.Duration(rng.Int64N(int64(9*24*time.Hour)))).Truncate(time.Millisecond) // Redis keeps ms
			e := rec(uniq(10000+100*int(inv)+rng.IntN(6)), off, now.Add(-age), actions[rng.IntN(len(actions))], fmt.Sprintf("10.9.0.%d", rng.IntN(12)), int32(rng.IntN(5)))
			e.Observation.Producer.Topic = topic
			e.Observation.Sighting.Count = int32(rng.IntN(3))
			if rng.IntN(4) == 0 {
				e.Observation.Sighting.Direction = ""
			}
			batch[i] = e
			sent = append(sent, e)
		}
		if round%2 == 0 && !batchOnly {
			got, err := rs.Apply(t.Context(), batch)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ms.Apply(t.Context(), batch)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("round %d record %d: redis %+v, memory %+v", round, i, got[i], want[i])
				}
			}
			continue
		}
		want, err := ms.ApplyBatch(t.Context(), pending, batch)
		if err != nil {
			t.Fatal(err)
		}
		var got Batch
		if parts > 1 {
			got = applyParts(t, rs, pending, batch, parts, want.Keys)
			got.Last = want.Last // record indexes are per part
		} else if got, err = rs.ApplyBatch(t.Context(), pending, batch); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Keys, want.Keys) || !slices.Equal(got.Last, want.Last) || len(got.Summaries) != len(want.Keys) {
			t.Fatalf("round %d: keys %v last %v, want %v %v", round, got.Keys, got.Last, want.Keys, want.Last)
		}
		for k := range want.Keys {
			if got.Summaries[k] != want.Summaries[k] {
				t.Fatalf("round %d key %s: redis %+v, memory %+v", round, want.Keys[k], got.Summaries[k], want.Summaries[k])
			}
			if got.Priors[k].HasVerdict != want.Priors[k].HasVerdict || got.Priors[k].Verdict != want.Priors[k].Verdict {
				t.Fatalf("round %d key %s: prior %+v, want %+v", round, want.Keys[k], got.Priors[k], want.Priors[k])
			}
		}
		// publish a verdict for the first indicator with the next
		// ApplyBatch, so later priors differ
		pending = []LastVerdict{{Key: want.Keys[0], Priority: int32(round % 10), Level: "Medium", Action: events.VerdictAlert,
			DecidedAt: now, EmittedAt: now, Sightings: want.Summaries[0].Count, DistinctAssets: want.Summaries[0].DistinctAssets}}
	}
}

// TestRedisApplyBatchOneRoundTrip: ApplyBatch of a batch is one pipeline of
// one script call and one HMGET on a standalone Redis.
func TestRedisApplyBatchOneRoundTrip(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisClient(t).(*redis.Client).Options().Addr})
	t.Cleanup(func() { _ = c.Close() })
	h := &countHook{}
	c.AddHook(h)
	s, err := NewRedis(t.Context(), c, Config{})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]events.Enrichment, 300)
	for i := range batch {
		batch[i] = rec(uniq(500+i%40), runID+int64(i), time.Now(), events.ActionBlocked, "10.0.0.1", 1)
	}
	h.pipelines, h.singles, h.names = 0, 0, nil
	b, err := s.ApplyBatch(t.Context(), nil, batch)
	if err != nil {
		t.Fatal(err)
	}
	if h.pipelines != 1 || h.singles != 0 || len(h.names) != 1 || h.names[0] != "pipeline(2):evalsha" {
		t.Fatalf("round trips: pipelines=%d singles=%d (%v), want 1 pipeline of 2 commands", h.pipelines, h.singles, h.names)
	}
	if len(b.Keys) != 40 || b.Summaries[0].Count == 0 || b.Last[0] != 280 {
		t.Fatalf("batch: %d keys, summary %+v, last %d", len(b.Keys), b.Summaries[0], b.Last[0])
	}
	// With the previous batch's published verdicts: still one round trip,
	// and the priors read what it stored.
	pub := []LastVerdict{{Key: b.Keys[3], Priority: 8, Level: "High", Action: events.VerdictBlock, DecidedAt: time.Now(), EmittedAt: time.Now(), Sightings: 7}}
	for i := range batch {
		batch[i].Observation.Producer.Offset += 1000
	}
	h.pipelines, h.singles, h.names = 0, 0, nil
	b, err = s.ApplyBatch(t.Context(), pub, batch)
	if err != nil {
		t.Fatal(err)
	}
	if h.pipelines != 1 || h.singles != 0 {
		t.Fatalf("round trips with published verdicts: pipelines=%d singles=%d (%v), want 1", h.pipelines, h.singles, h.names)
	}
	if p := b.Priors[3]; !p.HasVerdict || p.Verdict.Priority != 8 || p.Verdict.Sightings != 7 {
		t.Fatalf("prior after publishing with the batch = %+v", p)
	}
}

// TestRedisPreviousLayout: state written by the previous layout (bucket
// hashes :m and :hr beside the counters) keeps counting after an upgrade,
// and the old bucket keys are folded into the state hash.
func TestRedisPreviousLayout(t *testing.T) {
	c := redisClient(t)
	clk := &fakeClock{}
	t0 := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)
	clk.Set(t0)
	s, err := NewRedis(t.Context(), c, Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ip := uniq(7001)
	base := tag("ipv4:" + ip)
	min10, hour3 := t0.Add(-10*time.Minute).Unix()/60, t0.Add(-3*time.Hour).Unix()/3600
	ctx := t.Context()
	c.HSet(ctx, base+":h", "count", 5, "a:blocked", 5, "d:inbound", 5, "first", t0.Add(-5*time.Hour).UnixMilli(),
		"last", t0.Add(-10*time.Minute).UnixMilli(), "obs", t0.Add(-10*time.Minute).UnixMilli(), "sev", 2)
	c.HSet(ctx, base+":m", strconv.FormatInt(min10, 10), 2)
	c.HSet(ctx, base+":hr", strconv.FormatInt(t0.Unix()/3600, 10), 2, strconv.FormatInt(hour3, 10), 3)
	c.PFAdd(ctx, base+":hll", "10.0.0.1")
	for _, k := range []string{":h", ":m", ":hr", ":hll"} {
		c.PExpire(ctx, base+k, time.Hour)
	}
	e := rec(ip, 1, t0, events.ActionBlocked, "10.0.0.2", 1)
	e.Observation.Producer.Topic = fmt.Sprintf("raw.layout.%d", runID)
	b, err := s.ApplyBatch(ctx, nil, []events.Enrichment{e})
	if err != nil {
		t.Fatal(err)
	}
	got := b.Summaries[0]
	if got.Count != 6 || got.Count1h != 3 || got.Count24h != 6 || got.Count7d != 6 || got.Blocked != 6 || got.DistinctAssets != 2 || got.MaxSeverity != 2 {
		t.Fatalf("summary after upgrade = %+v, want count 6, 1h 3, 24h 6, 7d 6, blocked 6, 2 assets, severity 2", got.SightingSummary)
	}
	if n := c.Exists(ctx, base+":m", base+":hr").Val(); n != 0 {
		t.Fatalf("%d old bucket keys left", n)
	}
}

// TestRedisHighWaterMark: a record counts when its offset is above the
// mark of its indicator and source partition. Replays (whole batches, single
// records, repeats inside a batch, in any order) change nothing; other
// partitions, topics and indicators have marks of their own; a state
// written before the marks existed still honours its seen markers.
func TestRedisHighWaterMark(t *testing.T) {
	c := redisClient(t)
	clk := &fakeClock{}
	t0 := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)
	clk.Set(t0)
	s, err := NewRedis(t.Context(), c, Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	topic := fmt.Sprintf("raw.hwm.%d", runID)
	mk := func(ip string, topic string, part int32, off int64) events.Enrichment {
		e := rec(ip, off, t0, events.ActionBlocked, "10.0.0.1", 1)
		e.Observation.Producer.Topic, e.Observation.Producer.Partition = topic, part
		return e
	}
	a, b := uniq(8001), uniq(8002)
	steps := []struct {
		name  string
		batch []events.Enrichment
		want  map[string]int64 // indicator value -> count after the batch
	}{
		{"first", []events.Enrichment{mk(a, topic, 0, 10), mk(a, topic, 0, 11), mk(b, topic, 0, 11)}, map[string]int64{a: 2, b: 1}},
		{"batch replayed", []events.Enrichment{mk(a, topic, 0, 10), mk(a, topic, 0, 11), mk(b, topic, 0, 11)}, map[string]int64{a: 2, b: 1}},
		{"replay then new", []events.Enrichment{mk(a, topic, 0, 11), mk(a, topic, 0, 12), mk(a, topic, 0, 10)}, map[string]int64{a: 3}},
		{"repeat inside batch", []events.Enrichment{mk(a, topic, 0, 13), mk(a, topic, 0, 13)}, map[string]int64{a: 4}},
		{"own mark per partition", []events.Enrichment{mk(a, topic, 1, 2), mk(a, topic, 1, 3)}, map[string]int64{a: 6}},
		{"own mark per topic", []events.Enrichment{mk(a, topic+".x", 0, 1)}, map[string]int64{a: 7}},
		{"own mark per indicator", []events.Enrichment{mk(b, topic, 0, 5), mk(b, topic, 0, 12)}, map[string]int64{b: 2}},
		{"old offsets of partition 1", []events.Enrichment{mk(a, topic, 1, 1), mk(a, topic, 1, 3)}, map[string]int64{a: 7}},
	}
	for _, st := range steps {
		sums, err := s.Apply(t.Context(), st.batch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		last := map[string]int64{}
		for i, e := range st.batch {
			last[e.Observation.Indicator.Value] = sums[i].Count
		}
		for ip, want := range st.want {
			if last[ip] != want {
				t.Errorf("%s: count of %s = %d, want %d", st.name, ip, last[ip], want)
			}
		}
	}

	// state from before the marks: the seen marker of a counted record
	// stops its replay, a record without one counts and sets the mark
	ctx := t.Context()
	ip := uniq(8003)
	base := tag("ipv4:" + ip)
	old := fmt.Sprintf("raw.hwm.old.%d", runID)
	c.HSet(ctx, base+":h", "count", 1, "a:blocked", 1, "d:inbound", 1, "first", t0.Add(-replayAge).UnixMilli(),
		"last", t0.Add(-replayAge).UnixMilli(), "obs", t0.UnixMilli(), "sev", 1, "v2", 1)
	c.Set(ctx, base+":seen:"+old+":0:7", "1", time.Hour)
	for _, k := range []string{":h", ":seen:" + old + ":0:7"} {
		c.PExpire(ctx, base+k, time.Hour)
	}
	for _, st := range []struct {
		name string
		off  int64
		want int64
	}{{"replay of a marked record", 7, 1}, {"unmarked record", 8, 2}, {"replay below the mark", 7, 2}, {"replay at the mark", 8, 2}} {
		sums, err := s.Apply(ctx, []events.Enrichment{mk(ip, old, 0, st.off)})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if sums[0].Count != st.want {
			t.Errorf("%s: count = %d, want %d", st.name, sums[0].Count, st.want)
		}
	}
}

// batchApplier drives the owner-side path through the contract: Apply is
// one ApplyBatch per record, so each record's summary is the one after it.
type batchApplier struct{ *Redis }

func (b batchApplier) Apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error) {
	out := make([]Summary, len(batch))
	for i := range batch {
		res, err := b.ApplyBatch(ctx, nil, batch[i:i+1])
		if err != nil {
			return nil, err
		}
		out[i] = res.Summaries[0]
	}
	return out, nil
}

func TestRedisLocalContract(t *testing.T) {
	// its own database: the contract's indicators are unique per process,
	// and TestRedisContract writes the same ones
	c := redis.NewClient(&redis.Options{Addr: redisClient(t).(*redis.Client).Options().Addr, DB: 6})
	t.Cleanup(func() { _ = c.Close() })
	runContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewRedis(t.Context(), c, Config{Now: now, LocalStates: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if s.local == nil {
			t.Fatal("owner-side path not enabled")
		}
		return batchApplier{s}
	})
}

// localT0 is the start time of the owner-side path's tests.
var localT0 = time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)

func clockAt(t0 time.Time) *fakeClock {
	clk := &fakeClock{}
	clk.Set(t0)
	return clk
}

// localStore is a Redis store on c with the owner-side path on (100 cached states) and clk's time.
func localStore(t *testing.T, c redis.UniversalClient, clk *fakeClock) *Redis {
	t.Helper()
	s, err := NewRedis(t.Context(), c, Config{Now: clk.Now, LocalStates: 100})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRedisLocalHighWaterMark is TestRedisHighWaterMark's replay sequence on
// the owner-side path, including a state from before the marks.
func TestRedisLocalHighWaterMark(t *testing.T) {
	c := redisClient(t)
	t0, clk := localT0, clockAt(localT0)
	s := localStore(t, c, clk)
	ba := batchApplier{s}
	topic := fmt.Sprintf("raw.lhwm.%d", runID)
	mk := func(ip string, topic string, part int32, off int64) events.Enrichment {
		e := rec(ip, off, t0, events.ActionBlocked, "10.0.0.1", 1)
		e.Observation.Producer.Topic, e.Observation.Producer.Partition = topic, part
		return e
	}
	a, b := uniq(8101), uniq(8102)
	steps := []struct {
		name  string
		batch []events.Enrichment
		want  map[string]int64
	}{
		{"first", []events.Enrichment{mk(a, topic, 0, 10), mk(a, topic, 0, 11), mk(b, topic, 0, 11)}, map[string]int64{a: 2, b: 1}},
		{"batch replayed", []events.Enrichment{mk(a, topic, 0, 10), mk(a, topic, 0, 11), mk(b, topic, 0, 11)}, map[string]int64{a: 2, b: 1}},
		{"replay then new", []events.Enrichment{mk(a, topic, 0, 11), mk(a, topic, 0, 12), mk(a, topic, 0, 10)}, map[string]int64{a: 3}},
		{"own mark per partition", []events.Enrichment{mk(a, topic, 1, 2), mk(a, topic, 1, 3)}, map[string]int64{a: 5}},
		{"old offsets of partition 1", []events.Enrichment{mk(a, topic, 1, 1), mk(a, topic, 1, 3)}, map[string]int64{a: 5}},
	}
	for i, st := range steps {
		if i == 3 {
			s.Forget() // a rebalance: the state is read back from Redis
		}
		sums, err := ba.Apply(t.Context(), st.batch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		last := map[string]int64{}
		for i, e := range st.batch {
			last[e.Observation.Indicator.Value] = sums[i].Count
		}
		for ip, want := range st.want {
			if last[ip] != want {
				t.Errorf("%s: count of %s = %d, want %d", st.name, ip, last[ip], want)
			}
		}
	}
	// a batch in one ApplyBatch: a repeat inside it counts once
	res, err := s.ApplyBatch(t.Context(), nil, []events.Enrichment{mk(a, topic, 0, 13), mk(a, topic, 0, 13), mk(a, topic, 0, 14)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summaries[0].Count != 7 {
		t.Errorf("repeat inside a batch: count %d, want 7", res.Summaries[0].Count)
	}

	ctx := t.Context()
	ip := uniq(8103)
	base := tag("ipv4:" + ip)
	old := fmt.Sprintf("raw.lhwm.old.%d", runID)
	c.HSet(ctx, base+":h", "count", 1, "a:blocked", 1, "d:inbound", 1, "first", t0.Add(-replayAge).UnixMilli(),
		"last", t0.Add(-replayAge).UnixMilli(), "obs", t0.UnixMilli(), "sev", 1, "v2", 1)
	c.Set(ctx, base+":seen:"+old+":0:7", "1", time.Hour)
	c.PExpire(ctx, base+":h", time.Hour)
	for _, st := range []struct {
		name string
		off  int64
		want int64
	}{{"replay of a marked record", 7, 1}, {"unmarked record", 8, 2}, {"replay below the mark", 7, 2}, {"replay at the mark", 8, 2}} {
		sums, err := ba.Apply(ctx, []events.Enrichment{mk(ip, old, 0, st.off)})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if sums[0].Count != st.want {
			t.Errorf("%s: count = %d, want %d", st.name, sums[0].Count, st.want)
		}
	}
}

// TestRedisLocalForget: two replicas write one indicator in turn (a
// partition moving between them). Each must Forget when it loses the
// partition; after that it reads the other's counts back.
func TestRedisLocalForget(t *testing.T) {
	c := redisClient(t)
	t0, clk := localT0, clockAt(localT0)
	a, b := localStore(t, c, clk), localStore(t, c, clk)
	ip := uniq(8201)
	topic := fmt.Sprintf("raw.forget.%d", runID)
	mk := func(off int64) []events.Enrichment {
		e := rec(ip, off, t0, events.ActionAllowed, "10.0.0.1", 1)
		e.Observation.Producer.Topic = topic
		return []events.Enrichment{e}
	}
	step := func(s *Redis, off, want int64) {
		t.Helper()
		res, err := s.ApplyBatch(t.Context(), nil, mk(off))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Summaries[0].Count; got != want {
			t.Fatalf("offset %d: count %d, want %d", off, got, want)
		}
	}
	step(a, 1, 1)
	a.Forget()
	step(b, 2, 2)
	step(b, 3, 3)
	b.Forget()
	step(a, 4, 4) // without the Forget above, a would still believe 1
	if v := c.HGet(t.Context(), tag("ipv4:"+ip)+":h", "count").Val(); v != "4" {
		t.Fatalf("stored count %q, want 4", v)
	}
}

// cmdLog records the names (and first key) of every command sent through pipelines.
type cmdLog struct {
	mu   sync.Mutex
	cmds []string
}

func (h *cmdLog) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			name := c.Name()
			if args := c.Args(); len(args) > 1 {
				name += " " + fmt.Sprint(args[1])
			}
			h.cmds = append(h.cmds, name)
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the commands recorded since the last take that start with
// one of prefixes.
func (h *cmdLog) take(prefixes ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.cmds {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(c, p) }) {
			out = append(out, c)
		}
	}
	h.cmds = nil
	return out
}

// TestRedisLocalSkipsRedundantWrites: on the owner-side path a repeat
// sighting from an asset the replica already added sends neither PFADD nor
// PFCOUNT (the distinct count stays right, and a new asset is still added
// and counted), and a published verdict's TTL is set when its hash is
// created and refreshed at most hourly — never left without one.
func TestRedisLocalSkipsRedundantWrites(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisClient(t).(*redis.Client).Options().Addr})
	t.Cleanup(func() { _ = c.Close() })
	h := &cmdLog{}
	c.AddHook(h)
	clk := clockAt(localT0)
	s := localStore(t, c, clk)
	ip := uniq(8301)
	key := "ipv4:" + ip
	topic := fmt.Sprintf("raw.skip.%d", runID)
	var off int64
	apply := func(published []LastVerdict, assets ...string) Batch {
		t.Helper()
		batch := make([]events.Enrichment, len(assets))
		for i, a := range assets {
			off++
			batch[i] = rec(ip, off, clk.Now(), events.ActionBlocked, a, 1)
			batch[i].Observation.Producer.Topic = topic
		}
		res, err := s.ApplyBatch(t.Context(), published, batch)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	hll := func() []string { return h.take("pfadd", "pfcount") }
	verdict := func(p int32) []LastVerdict {
		return []LastVerdict{{Key: key, Priority: p, Level: "Medium", Action: events.VerdictAlert, DecidedAt: clk.Now(), EmittedAt: clk.Now(),
			Review: &Review{Enrichment: []byte("e"), LastObserved: clk.Now(), Due: clk.Now().Add(time.Hour)}}}
	}
	steps := []struct {
		name       string
		published  []LastVerdict
		assets     []string
		wantAssets int64
		wantHLL    bool // PFADD/PFCOUNT sent
	}{
		{"first sighting", nil, []string{"10.0.0.1"}, 1, true},
		{"same asset again", nil, []string{"10.0.0.1", "10.0.0.1"}, 1, false},
		{"a second asset", nil, []string{"10.0.0.2"}, 2, true},
		{"both known", nil, []string{"10.0.0.2", "10.0.0.1"}, 2, false},
		{"past the remembered few", nil, []string{"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, 6, true},
		{"an asset not remembered", nil, []string{"10.0.0.6"}, 6, true},
	}
	for _, st := range steps {
		h.take()
		res := apply(st.published, st.assets...)
		if got := res.Summaries[0].DistinctAssets; got != st.wantAssets {
			t.Errorf("%s: distinct assets %d, want %d", st.name, got, st.wantAssets)
		}
		if got := hll(); (len(got) > 0) != st.wantHLL {
			t.Errorf("%s: HyperLogLog commands %v, want sent=%v", st.name, got, st.wantHLL)
		}
	}

	vkey, rkey := tag(key)+":v", reviewKey(key)
	ttlCmds := func() []string { return h.take("pexpire "+vkey, "pexpire "+rkey) }
	hasTTL := func(when string) {
		t.Helper()
		for _, k := range []string{vkey, rkey} {
			if ttl := c.PTTL(t.Context(), k).Val(); ttl <= 0 {
				t.Fatalf("%s: %s has TTL %v", when, k, ttl)
			}
		}
	}
	h.take()
	apply(verdict(5), "10.0.0.1")
	if got := ttlCmds(); len(got) != 2 {
		t.Fatalf("first verdict: TTL commands %v, want the verdict's and the stash's", got)
	}
	hasTTL("first verdict")
	clk.Add(10 * time.Minute)
	apply(verdict(6), "10.0.0.1")
	if got := ttlCmds(); len(got) != 0 {
		t.Errorf("verdict 10 minutes later: TTL commands %v, want none", got)
	}
	if v := c.HGet(t.Context(), vkey, "priority").Val(); v != "6" {
		t.Errorf("stored priority %q, want 6", v)
	}
	// unscheduled: the stash is deleted; scheduled again: it is created
	// again and needs its TTL at once, although the hour is not over
	unsched := verdict(6)
	unsched[0].Review.Due = time.Time{}
	apply(unsched, "10.0.0.1")
	if n := c.Exists(t.Context(), rkey).Val(); n != 0 {
		t.Fatalf("stash still exists after unscheduling")
	}
	h.take()
	apply(verdict(6), "10.0.0.1")
	if got := ttlCmds(); len(got) != 1 || !strings.HasSuffix(got[0], ":r") {
		t.Errorf("stash created again: TTL commands %v, want the stash's", got)
	}
	hasTTL("stash created again")
	clk.Add(55 * time.Minute) // 65 minutes after the verdict's refresh, 55 after the stash's
	apply(verdict(7), "10.0.0.1")
	if got := ttlCmds(); len(got) != 1 || !strings.HasSuffix(got[0], ":v") {
		t.Errorf("an hour after the verdict's refresh: TTL commands %v, want the verdict's", got)
	}
	clk.Add(10 * time.Minute)
	apply(verdict(7), "10.0.0.1")
	if got := ttlCmds(); len(got) != 1 || !strings.HasSuffix(got[0], ":r") {
		t.Errorf("an hour after the stash's refresh: TTL commands %v, want the stash's", got)
	}
	s.Forget() // another replica's turn and back: the TTLs are refreshed again
	apply(verdict(8), "10.0.0.1")
	if got := ttlCmds(); len(got) != 2 {
		t.Errorf("verdict after Forget: TTL commands %v, want two", got)
	}
	hasTTL("after Forget")
}
