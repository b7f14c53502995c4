//go:build integration

package stage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// realDeps connects to the test broker and Redis; it fails (never skips) when either is down.
func realDeps(t *testing.T, topics ...string) (stream.KafkaConfig, []kgo.Opt, redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	addr := envOr("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379")
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s unreachable (make up): %v", addr, err)
	}
	brokers := envOr("VIGIL_TEST_KAFKA_BROKERS", "127.0.0.1:39092")
	kc := stream.KafkaConfig{Brokers: strings.Split(brokers, ","), Partitions: 3, ReplicationFactor: 1,
		ResetOffset: "earliest", GroupProtocol: "classic", DLQTopic: topics[len(topics)-1]}
	base, err := kc.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("kafka at %s unreachable (make up): %v", brokers, err)
	}
	if err := stream.EnsureTopics(ctx, cl, kc.Partitions, kc.ReplicationFactor, topics...); err != nil {
		t.Fatal(err)
	}
	return kc, base, rdb
}

// service is one correlate instance: correlator on Redis state, stage, runner, reloader.
type service struct {
	corr   *correlator.Correlator
	runner *stream.Runner
	stage  *Stage
	cancel context.CancelFunc
	g      *errgroup.Group
}

func startService(t *testing.T, kc stream.KafkaConfig, group string, cfg Config, rdb redis.UniversalClient, rl *Reloader, hup <-chan os.Signal) *service {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.NewRedis(t.Context(), rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	corr, err := correlator.New(correlator.NewPolicyHolder(p), allowlist.NewHolder(set), nil, store, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(cfg, corr, serde(t), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.NewRunner(stream.Config{Stage: "correlate", Group: group, Topics: []string{cfg.EnrichedTopic, cfg.FeedbackTopic},
		Kafka: kc, MaxBatch: 7, ExtraOpts: []kgo.Opt{kgo.WithHooks(st)}}, st, serde(t), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	if rl != nil {
		rl.Policy = corr
		g.Go(func() error { return rl.Run(gctx, hup) })
	}
	return &service{corr: corr, runner: r, stage: st, cancel: cancel, g: g}
}

func (s *service) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := s.g.Wait(); err != nil {
		t.Errorf("run: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.runner.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := s.stage.Flush(ctx); err != nil {
		t.Errorf("flush: %v", err)
	}
}

// waitCommitted waits until group committed every record of topic.
func waitCommitted(t *testing.T, opts []kgo.Opt, group, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		ends, err := adm.ListEndOffsets(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		offs, err := adm.FetchOffsets(t.Context(), group)
		if err == nil {
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				o, ok := offs.Lookup(topic, e.Partition)
				if e.Offset > 0 && (!ok || o.At < e.Offset) {
					done = false
				}
			})
			if done {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("group %s did not commit %s within 45s", group, topic)
}

// readVerdicts reads every verdict on topic (until it has at least min and the topic is idle).
func readVerdicts(t *testing.T, opts []kgo.Opt, topic string, min int) []events.Verdict {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := serde(t)
	var out []events.Verdict
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			v, err := s.DecodeVerdict(t.Context(), r.Value)
			if err != nil {
				t.Fatalf("verdict at %d: %v", r.Offset, err)
			}
			if string(r.Key) != v.Indicator.Key() {
				t.Errorf("verdict keyed %q for %s", r.Key, v.Indicator.Key())
			}
			out = append(out, v)
			n++
		})
		if n == 0 && len(out) >= min {
			return out
		}
	}
	t.Fatalf("read %d verdicts on %s, want at least %d", len(out), topic, min)
	return nil
}

// clearState removes the Redis correlation state of keys (fixed benign addresses are shared
// between runs of this test).
func clearState(t *testing.T, rdb redis.UniversalClient, keys []string) {
	t.Helper()
	ctx := context.Background() // also runs in t.Cleanup, after t.Context is done
	for _, k := range keys {
		iter := rdb.Scan(ctx, 0, state.KeyPrefix+"{"+k+"}*", 100).Iterator()
		for iter.Next(ctx) {
			if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationStage runs the real stage in a stream.Runner against the real broker and
// Redis: benign cloud and resolver addresses never reach block while malicious ones do;
// a second consumer group replaying the same records (same offsets, same Redis) neither
// doubles sighting counts nor re-emits verdicts; a SIGHUP reload installs a good policy and
// rejects a bad one.
func TestIntegrationStage(t *testing.T) {
	t.Parallel()
	id := rand.Int64()
	cfg := Config{EnrichedTopic: fmt.Sprintf("it-corr-enriched-%d", id), FeedbackTopic: fmt.Sprintf("it-corr-feedback-%d", id),
		VerdictTopic: fmt.Sprintf("it-corr-verdicts-%d", id)}
	dlq := fmt.Sprintf("it-corr-dlq-%d", id)
	kc, opts, rdb := realDeps(t, cfg.EnrichedTopic, cfg.FeedbackTopic, cfg.VerdictTopic, dlq)
	rawTopic := fmt.Sprintf("raw.it.%d", id)

	benign := []string{"8.8.8.8", "1.1.1.1", "52.95.110.1", "140.82.112.3"} // public DNS, Cloudflare, AWS, GitHub
	var malicious []string
	for i := range 3 {
		malicious = append(malicious, fmt.Sprintf("185.220.%d.%d", 100+i, 1+rand.IntN(250)))
	}
	var keys []string
	for _, ip := range append(append([]string{}, benign...), malicious...) {
		keys = append(keys, "ipv4:"+ip)
	}
	clearState(t, rdb, keys)
	t.Cleanup(func() { clearState(t, rdb, keys) })

	// Three sightings of each indicator, from three assets, all with hostile provider data.
	s := serde(t)
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var inputs []events.Enrichment
	var off int64
	for round := range 3 {
		for _, ip := range append(append([]string{}, benign...), malicious...) {
			off++
			inputs = append(inputs, enrichment(ip, fmt.Sprintf("10.9.0.%d", round+1), rawTopic, off, hostile))
		}
	}
	produceAll := func(es []events.Enrichment) {
		var recs []*kgo.Record
		for _, e := range es {
			v, err := s.EncodeEnrichment(&e)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: cfg.EnrichedTopic, Key: []byte(e.Observation.Indicator.Key()), Value: v})
		}
		if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produceAll(inputs)

	// Pass 1.
	g1 := fmt.Sprintf("it-corr-g1-%d", id)
	svc := startService(t, kc, g1, cfg, rdb, nil, nil)
	waitCommitted(t, opts, g1, cfg.EnrichedTopic)
	svc.stop(t)

	verdicts := readVerdicts(t, opts, cfg.VerdictTopic, len(keys))
	last := map[string]events.Verdict{}
	for _, v := range verdicts {
		last[v.Indicator.Value] = v
		for _, ip := range benign {
			if v.Indicator.Value == ip && (v.Action == events.VerdictBlock || v.Action == events.VerdictAlert) {
				t.Errorf("benign %s reached %s (priority %d): %+v", ip, v.Action, v.Priority, v.Reasons)
			}
		}
	}
	for _, ip := range benign {
		if _, ok := last[ip]; !ok {
			t.Errorf("benign %s: no verdict", ip)
		}
	}
	for _, ip := range malicious {
		if v := last[ip]; v.Action != events.VerdictBlock {
			t.Errorf("malicious %s = %q (priority %d), want block", ip, v.Action, v.Priority)
		}
	}
	if v := last["8.8.8.8"]; v.Action != events.VerdictSuppress {
		t.Errorf("8.8.8.8 = %q, want suppress", v.Action)
	}

	// Sighting counts after pass 1: applying an already-seen record changes nothing and
	// returns the current summary.
	store, err := state.NewRedis(t.Context(), rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	counts := func() map[string]int64 {
		sums, err := store.Apply(t.Context(), inputs[:len(keys)])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for i, sum := range sums {
			out[inputs[i].Observation.Indicator.Value] = sum.Count
		}
		return out
	}
	before := counts()
	for ip, n := range before {
		if n != 3 {
			t.Errorf("%s: %d sightings after pass 1, want 3", ip, n)
		}
	}

	// Pass 2: another group replays the same records over the same Redis, with the
	// reloader main uses listening for SIGHUP.
	dir := t.TempDir()
	polFile := filepath.Join(dir, "policy.yaml")
	copyFile(t, "../../testdata/policy.strict.yaml", polFile)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	rl := &Reloader{PolicyFile: polFile, Log: quiet()}
	g2 := fmt.Sprintf("it-corr-g2-%d", id)
	svc = startService(t, kc, g2, cfg, rdb, rl, hup)
	defer svc.stop(t)
	waitCommitted(t, opts, g2, cfg.EnrichedTopic)
	after := counts()
	for ip, n := range after {
		if n != before[ip] {
			t.Errorf("%s: %d sightings after the replay, want %d (not doubled)", ip, n, before[ip])
		}
	}
	if again := readVerdicts(t, opts, cfg.VerdictTopic, len(verdicts)); len(again) != len(verdicts) {
		t.Errorf("replay emitted %d new verdicts, want none (levels unchanged, published verdicts acked)", len(again)-len(verdicts))
	}

	// SIGHUP with a good policy file: swapped in while the stage runs.
	strict := "2026.05.2-strict"
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return svc.corr.Policy().Version == strict }, "strict policy installed")
	// SIGHUP with a bad policy file: rejected, the strict policy stays.
	copyFile(t, "../../testdata/policy.bad.yaml", polFile)
	if err := rl.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "levels.1.action") {
		t.Errorf("bad policy reload: err = %v, want one naming levels.1.action", err)
	}
	if v := svc.corr.Policy().Version; v != strict {
		t.Errorf("policy after bad reload = %s, want %s kept", v, strict)
	}
	// New records are judged by the reloaded policy.
	fresh := fmt.Sprintf("185.220.110.%d", 1+rand.IntN(250))
	keys = append(keys, "ipv4:"+fresh)
	clearState(t, rdb, []string{"ipv4:" + fresh})
	off++
	produceAll([]events.Enrichment{enrichment(fresh, "10.9.0.9", rawTopic, off, hostile)})
	waitCommitted(t, opts, g2, cfg.EnrichedTopic)
	all := readVerdicts(t, opts, cfg.VerdictTopic, len(verdicts)+1)
	var found bool
	for _, v := range all { // partitions interleave: search, do not take the last
		if v.Indicator.Value == fresh {
			found = true
			if v.PolicyVersion != strict {
				t.Errorf("verdict after reload for %s under %q, want %q", fresh, v.PolicyVersion, strict)
			}
		}
	}
	if !found || len(all) != len(verdicts)+1 {
		t.Errorf("after reload: %d verdicts (found %s: %v), want %d", len(all), fresh, found, len(verdicts)+1)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
