//go:build integration

package stage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// sweepTestDB is the Redis database of TestIntegrationSweeper: the due sets
// are per input partition number (0, 1, 2 here), so the test keeps them
// away from correlate services using the shared Redis's database 0.
const sweepTestDB = 11

// TestIntegrationSweeper runs the stage in a stream.Runner (real broker,
// real Redis) with the sweeper wired as cmd/correlate wires it: partition
// ownership from the group's callbacks, the runner's client to produce.
// Verdicts of an idle stream are acked by the sweeper's flush and
// scheduled; once the clock moved past several half-lives one sweep
// publishes each at a lower level, by decay.
func TestIntegrationSweeper(t *testing.T) {
	t.Parallel()
	id := rand.Int64()
	cfg := Config{EnrichedTopic: fmt.Sprintf("it-decay-enriched-%d", id), FeedbackTopic: fmt.Sprintf("it-decay-feedback-%d", id),
		VerdictTopic: fmt.Sprintf("it-decay-verdicts-%d", id), Rescore: true}
	kc, opts, shared := realDeps(t, cfg.EnrichedTopic, cfg.FeedbackTopic, cfg.VerdictTopic, fmt.Sprintf("it-decay-dlq-%d", id))
	rdb := redis.NewClient(&redis.Options{Addr: shared.(*redis.Client).Options().Addr, DB: sweepTestDB})
	t.Cleanup(func() { _ = rdb.Close() })
	dueSets := []string{state.KeyPrefix + "{decay}:due:0", state.KeyPrefix + "{decay}:due:1", state.KeyPrefix + "{decay}:due:2"}
	clearDue := func() {
		if err := rdb.Del(context.Background(), dueSets...).Err(); err != nil {
			t.Errorf("clear due sets: %v", err)
		}
	}
	clearDue()
	t.Cleanup(clearDue)

	clk := &testClock{}
	clk.ns.Store(time.Now().UnixNano())
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.NewRedis(t.Context(), rdb, state.Config{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	corr, err := correlator.New(correlator.NewPolicyHolder(p), allowlist.NewHolder(set), nil, store, clk.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s := serde(t)
	st, err := New(cfg, corr, s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("it-decay-%d", id)
	rcfg := stream.Config{Stage: "correlate", Group: group, Topics: []string{cfg.EnrichedTopic, cfg.FeedbackTopic},
		Kafka: kc, MaxBatch: 7, ExtraOpts: []kgo.Opt{kgo.WithHooks(st)}}
	owned := NewPartitions(cfg.EnrichedTopic)
	owned.Watch(&rcfg)
	r, err := stream.NewRunner(rcfg, st, s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewSweeper(SweepConfig{VerdictTopic: cfg.VerdictTopic, Interval: time.Hour}, st, corr, r.Client(), s, owned, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("run: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := r.Close(cctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	prod, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var keys []string
	for i := range 3 {
		e := enrichment(fmt.Sprintf("185.%d.%d.%d", 200+i, rand.IntN(250), 1+rand.IntN(250)), "10.0.0.1", fmt.Sprintf("raw.decay.%d", id), int64(i), hostile)
		val, err := s.EncodeEnrichment(&e)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Observation.Indicator.Key())
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: cfg.EnrichedTopic, Key: []byte(keys[i]), Value: val}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	first := readVerdicts(t, opts, cfg.VerdictTopic, 3)
	waitCommitted(t, opts, group, cfg.EnrichedTopic) // the produce acknowledgements reached the stage
	if got := owned.List(); !slices.Equal(got, []int32{0, 1, 2}) {
		t.Fatalf("owned partitions %v, want all three (one member)", got)
	}
	if res, err := sw.Sweep(t.Context()); err != nil || res.Claimed != 0 {
		t.Fatalf("first sweep = %+v, %v; want the verdicts acked and nothing due", res, err)
	}

	clk.add(10 * 24 * time.Hour)
	res, err := sw.Sweep(t.Context())
	if err != nil || res.Claimed != 3 || res.Reemitted != 3 {
		t.Fatalf("sweep ten days later = %+v, %v; want the three verdicts re-emitted", res, err)
	}
	all := readVerdicts(t, opts, cfg.VerdictTopic, 6)
	was := map[string]events.Verdict{}
	for _, v := range first {
		was[v.Indicator.Key()] = v
	}
	decayed := 0
	for _, v := range all {
		old, ok := was[v.Indicator.Key()]
		if !ok || !hasReason(v, policy.CodeDecay) {
			continue
		}
		decayed++
		if v.Priority >= old.Priority || v.PreviousPriority != old.Priority || v.Level == old.Level {
			t.Errorf("%s: decayed to %d/%s from %d/%s (previous %d)", v.Indicator.Key(), v.Priority, v.Level, old.Priority, old.Level, v.PreviousPriority)
		}
	}
	if decayed != 3 {
		t.Errorf("%d decayed verdicts on the topic, want 3 (keys %v)", decayed, keys)
	}
	if res, err := sw.Sweep(t.Context()); err != nil || res.Claimed != 0 {
		t.Fatalf("sweep right after = %+v, %v; want nothing", res, err)
	}
}
