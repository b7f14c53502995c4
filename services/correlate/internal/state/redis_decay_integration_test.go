//go:build integration

package state

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

func TestRedisDecayContract(t *testing.T) {
	c := redisClient(t)
	runDecayContract(t, func(t *testing.T, now func() time.Time) Store {
		s, err := NewRedis(t.Context(), c, Config{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func(t *testing.T, partitions []int32) {
		keys := make([]string, len(partitions))
		for i, p := range partitions {
			keys[i] = dueKey(p)
		}
		if len(keys) > 0 {
			if err := c.Del(context.Background(), keys...).Err(); err != nil {
				t.Errorf("delete due sets: %v", err)
			}
		}
	})
}

// TestRedisDecayClaimersOnTwoConnections: two replicas (each its own
// client and store) claiming the same due sets at once never get the same
// indicator, and together get every one.
func TestRedisDecayClaimersOnTwoConnections(t *testing.T) {
	ctx := t.Context()
	var used []int32
	ps := testPartitions(t, 3, &used)
	clk := &fakeClock{}
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	clk.Set(t0)
	stores := make([]*Redis, 2)
	for i := range stores {
		c := redisClient(t)
		s, err := NewRedis(ctx, c, Config{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	t.Cleanup(func() {
		keys := make([]string, len(ps))
		for i, p := range ps {
			keys[i] = dueKey(p)
		}
		_ = stores[0].client.Del(context.Background(), keys...).Err()
	})
	const n = 1500
	vs := make([]LastVerdict, n)
	for i := range vs {
		vs[i] = published("ipv4:"+uniq(25000+i), ps[i%len(ps)], t0.Add(-time.Duration(i)*time.Millisecond), t0, "x")
	}
	if err := stores[0].SavePublished(ctx, vs); err != nil {
		t.Fatal(err)
	}
	claimed := make([][]string, len(stores))
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			for {
				ds, err := s.ClaimDue(ctx, ps, 50)
				if err != nil {
					errs[i] = err
					return
				}
				if len(ds) == 0 {
					return
				}
				claimed[i] = append(claimed[i], dueKeys(ds)...)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all := append(slices.Clone(claimed[0]), claimed[1]...)
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatalf("an indicator was claimed twice (%d claims, %d distinct)", len(all), len(slices.Compact(all)))
	}
	if len(all) != n {
		t.Fatalf("%d claimed, want %d", len(all), n)
	}
}

// TestRedisSavePublishedBesideApplyBatch: the decay sweeper acks verdicts
// (SavePublished) while the stream applies batches (ApplyBatch) on the same
// store, with the owner-side state cache on; run with -race.
func TestRedisSavePublishedBesideApplyBatch(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{}
	clk.Set(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	s, err := NewRedis(ctx, redisClient(t), Config{Now: clk.Now, LocalStates: 100})
	if err != nil {
		t.Fatal(err)
	}
	ip := uniq(27001)
	key := "ipv4:" + ip
	const rounds = 50
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		for i := range rounds {
			b, err := s.ApplyBatch(ctx, nil, []events.Enrichment{rec(ip, int64(i+1), clk.Now(), events.ActionBlocked, "10.0.0.1", 2)})
			if err != nil {
				errs[0] = err
				return
			}
			_ = b.Priors[0].Verdict.Level // the prior the stream path reads
		}
	})
	wg.Go(func() {
		for i := range rounds {
			if err := s.SavePublished(ctx, []LastVerdict{{Key: key, Priority: int32(i % 10), Level: "high", Action: "alert", DecidedAt: clk.Now(), EmittedAt: clk.Now()}}); err != nil {
				errs[1] = err
				return
			}
		}
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.ApplyBatch(ctx, nil, []events.Enrichment{rec(ip, rounds+1, clk.Now(), events.ActionBlocked, "10.0.0.1", 2)})
	if err != nil || b.Summaries[0].Count != rounds+1 || !b.Priors[0].HasVerdict {
		t.Fatalf("after the concurrent writes: %+v, %v; want %d sightings and a verdict", b, err, rounds+1)
	}
}
