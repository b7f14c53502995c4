package stage

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// clockCorrelator is realCorrelator on a clock the test moves.
func clockCorrelator(t *testing.T) (*correlator.Correlator, *testClock) {
	t.Helper()
	clk := &testClock{}
	clk.ns.Store(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC).UnixNano())
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.NewMemory(state.Config{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := correlator.New(correlator.NewPolicyHolder(p), allowlist.NewHolder(set), nil, st, clk.now, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// fakeKafka returns a client on a kfake cluster with the stage's topics.
func fakeKafka(t *testing.T) *kgo.Client {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topicIn, topicFB, topicOut))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readSwept reads the verdict topic from the start until it holds n
// records (or the test's deadline passes).
func readSwept(t *testing.T, cl *kgo.Client, s *events.Serde, n int) map[string]events.Verdict {
	t.Helper()
	seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topicOut), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out := map[string]events.Verdict{}
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("verdict topic: %d records, want %d", got, n)
		}
		for _, r := range fs.Records() {
			v, err := s.DecodeVerdict(ctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != v.Indicator.Key() {
				t.Errorf("record key %q for a verdict on %s", r.Key, v.Indicator.Key())
			}
			out[string(r.Key)] = v
			got++
		}
	}
	if got != n {
		t.Fatalf("verdict topic: %d records, want %d", got, n)
	}
	return out
}

func onPartition(r *kgo.Record, p int32) *kgo.Record {
	r.Partition = p
	return r
}

// TestSweeperRescoresIdleIndicators runs the stream stage and the sweeper
// on one correlator and a clock the test moves: verdicts published by the
// stage are re-scored once decay lowered them, an indicator sighted since
// is skipped, another partition's indicator waits for its owner, and a
// sweep right after a re-emission publishes nothing.
func TestSweeperRescoresIdleIndicators(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(telemetry.Config{Service: "correlate-sweep-test", LogOutput: os.Stderr, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	cl := fakeKafka(t)
	s := serde(t)
	c, clk := clockCorrelator(t)
	m, err := NewMetrics(tel.Meter("vigil/correlate"), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := testCfg
	cfg.Rescore = true
	st, err := New(cfg, c, s, m, quiet())
	if err != nil {
		t.Fatal(err)
	}
	owned := NewPartitions(topicIn)
	owned.Assigned(map[string][]int32{topicIn: {2}, topicFB: {0, 1, 2}})
	sw, err := NewSweeper(SweepConfig{VerdictTopic: topicOut, Interval: time.Minute, Batch: 1}, st, c, cl, s, owned, m, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	idle, busy, other := "185.220.101.7", "185.220.101.8", "185.220.101.9"
	res, err := st.Handle(ctx, []*kgo.Record{
		onPartition(encRecord(t, s, topicIn, 10, enrichment(idle, "10.0.0.1", "raw.sweep", 1, hostile)), 2),
		onPartition(encRecord(t, s, topicIn, 11, enrichment(busy, "10.0.0.1", "raw.sweep", 2, hostile)), 2),
		onPartition(encRecord(t, s, topicIn, 12, enrichment(other, "10.0.0.1", "raw.sweep", 3, hostile)), 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]events.Verdict{}
	for _, r := range res {
		for _, o := range r.Outputs {
			v, err := s.DecodeVerdict(ctx, o.Value)
			if err != nil {
				t.Fatal(err)
			}
			first[v.Indicator.Value] = v
		}
	}
	if len(first) != 3 || first[idle].Level != "critical" {
		t.Fatalf("first verdicts %+v, want three critical", first)
	}
	produce(st, res, nil) // Kafka acknowledged them; no batch follows to ack them
	if r, err := sw.Sweep(ctx); err != nil || r.Claimed != 0 {
		t.Fatalf("sweep right after publishing = %+v, %v; want nothing due", r, err)
	}
	if len(st.takeConfirmed(ctx)) != 0 {
		t.Fatal("the sweep did not ack the stage's confirmed verdicts")
	}

	// busy is sighted again an hour later; that batch's verdict is not acked yet
	clk.add(time.Hour)
	if _, err := st.Handle(ctx, []*kgo.Record{onPartition(encRecord(t, s, topicIn, 13, enrichment(busy, "10.0.0.2", "raw.sweep", 4, hostile)), 2)}); err != nil {
		t.Fatal(err)
	}

	clk.add(10 * 24 * time.Hour) // over three half-lives
	r, err := sw.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Claimed != 2 || r.Rescored != 1 || r.Reemitted != 1 || r.Skipped != 1 || r.Partitions != 1 {
		t.Fatalf("sweep = %+v, want idle re-emitted and busy skipped (other not owned)", r)
	}
	got := readSwept(t, cl, s, 1)
	v, ok := got["ipv4:"+idle]
	if !ok {
		t.Fatalf("published %v, want the idle indicator's verdict", slices.Collect(maps.Keys(got)))
	}
	if v.Priority >= first[idle].Priority || v.Level == first[idle].Level || !hasReason(v, policy.CodeDecay) {
		t.Errorf("re-scored verdict %d/%s with reasons %+v; want lower than %d/%s, by decay", v.Priority, v.Level, v.Reasons, first[idle].Priority, first[idle].Level)
	}
	if v.PreviousPriority != first[idle].Priority || !v.ValidUntil.Equal(clk.now().Add(c.Policy().Decay.ValidFor)) || !v.ValidUntil.After(first[idle].ValidUntil) {
		t.Errorf("previous priority %d, valid until %v; want %d and a new validity from now", v.PreviousPriority, v.ValidUntil, first[idle].Priority)
	}

	if r, err := sw.Sweep(ctx); err != nil || r.Claimed != 0 || r.Reemitted != 0 {
		t.Fatalf("second sweep = %+v, %v; want nothing", r, err)
	}

	// partition 1 moves to this replica: its owner's sweep takes other
	owned.Assigned(map[string][]int32{topicIn: {1}})
	if r, err := sw.Sweep(ctx); err != nil || r.Claimed != 1 || r.Reemitted != 1 || r.Partitions != 2 {
		t.Fatalf("sweep after the assignment = %+v, %v; want the other partition's indicator", r, err)
	}
	got = readSwept(t, cl, s, 2)
	if _, ok := got["ipv4:"+other]; !ok {
		t.Errorf("no verdict for %s", other)
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vigil_correlate_decay_rescored_total", nil, 2},
		{"vigil_correlate_decay_reemitted_total", nil, 2},
		{"vigil_correlate_decay_skipped_total", nil, 1},
		{"vigil_correlate_verdicts_total", map[string]string{"action": v.Action, "level": v.Level}, 2},
	}
	for _, ck := range checks {
		if got, ok := gather(t, tel.Registry, ck.name, ck.labels); !ok || got != ck.want {
			t.Errorf("%s%v = %v (found %v), want %v", ck.name, ck.labels, got, ok, ck.want)
		}
	}
}

func hasReason(v events.Verdict, code string) bool {
	return slices.ContainsFunc(v.Reasons, func(r events.Reason) bool { return r.Code == code })
}

// TestSweeperPutsBackUnpublished: a verdict Kafka did not take is not acked
// and its indicator is due again, for the next sweep.
func TestSweeperPutsBackUnpublished(t *testing.T) {
	t.Parallel()
	cl := fakeKafka(t)
	s := serde(t)
	c, clk := clockCorrelator(t)
	cfg := testCfg
	cfg.Rescore = true
	st, err := New(cfg, c, s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	res, err := st.Handle(ctx, []*kgo.Record{encRecord(t, s, topicIn, 1, enrichment("185.220.101.20", "10.0.0.1", "raw.put", 1, hostile))})
	if err != nil {
		t.Fatal(err)
	}
	produce(st, res, nil)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	owned := NewPartitions(topicIn)
	owned.Assigned(map[string][]int32{topicIn: {0}})
	broken, err := NewSweeper(SweepConfig{VerdictTopic: "no.such.topic", Interval: time.Minute, ProduceTimeout: 300 * time.Millisecond}, nil, c, cl, s, owned, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	clk.add(10 * 24 * time.Hour)
	r, err := broken.Sweep(ctx)
	if err == nil || r.PutBack != 1 || r.Reemitted != 0 {
		t.Fatalf("sweep with a failing produce = %+v, %v; want an error and the claim put back", r, err)
	}
	sw, err := NewSweeper(SweepConfig{VerdictTopic: topicOut, Interval: time.Minute}, nil, c, cl, s, owned, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := sw.Sweep(ctx); err != nil || r.Reemitted != 1 {
		t.Fatalf("next sweep = %+v, %v; want the verdict published", r, err)
	}
	readSwept(t, cl, s, 1)
}

// TestStageAcksWithEnrichment: with Rescore the stage acks each verdict
// with its input record's value, partition and LastObserved; without, with
// none (nothing is scheduled).
func TestStageAcksWithEnrichment(t *testing.T) {
	t.Parallel()
	s := serde(t)
	for _, rescore := range []bool{false, true} {
		fc := &fakeCorrelator{verdicts: oneVerdictPerKey}
		cfg := testCfg
		cfg.Rescore = rescore
		st, err := New(cfg, fc, s, nil, quiet())
		if err != nil {
			t.Fatal(err)
		}
		rec := onPartition(encRecord(t, s, topicIn, 4, enrichment("203.0.113.40", "10.0.0.1", "raw.ack", 1, hostile)), 5)
		res, err := st.Handle(t.Context(), []*kgo.Record{rec})
		if err != nil {
			t.Fatal(err)
		}
		produce(st, res, nil)
		if err := st.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(fc.ackedPub) != 1 || len(fc.ackedPub[0]) != 1 {
			t.Fatalf("rescore %v: acked %+v", rescore, fc.ackedPub)
		}
		p := fc.ackedPub[0][0]
		switch {
		case rescore && (string(p.Enrichment) != string(rec.Value) || p.Partition != 5):
			t.Errorf("acked with enrichment %d bytes on partition %d, want the record's %d bytes on 5", len(p.Enrichment), p.Partition, len(rec.Value))
		case rescore && &p.Enrichment[0] == &rec.Value[0]:
			t.Error("the acked enrichment shares the record's buffer")
		case !rescore && p.Enrichment != nil:
			t.Errorf("acked with an enrichment although Rescore is off")
		}
	}
}

func TestPartitions(t *testing.T) {
	t.Parallel()
	p := NewPartitions(topicIn)
	p.Assigned(map[string][]int32{topicIn: {4, 1}, topicFB: {7}})
	p.Assigned(map[string][]int32{topicIn: {2}})
	p.Revoked(map[string][]int32{topicIn: {4}, topicFB: {1}})
	if got := p.List(); !slices.Equal(got, []int32{1, 2}) {
		t.Errorf("owned %v, want [1 2] (other topics ignored)", got)
	}
}

// TestPartitionsWatch: Watch adds the assignment callback and runs its
// revocation before the one already configured (the assignment itself is
// covered by the integration test, with a real group).
func TestPartitionsWatch(t *testing.T) {
	t.Parallel()
	var earlier map[string][]int32
	cfg := stream.Config{OnRevoke: func(_ context.Context, revoked map[string][]int32) { earlier = revoked }}
	p := NewPartitions(topicIn)
	p.Assigned(map[string][]int32{topicIn: {0, 1}})
	p.Watch(&cfg)
	if len(cfg.ExtraOpts) != 1 {
		t.Fatalf("%d extra client options, want the assignment callback", len(cfg.ExtraOpts))
	}
	revoked := map[string][]int32{topicIn: {1}}
	cfg.OnRevoke(t.Context(), revoked)
	if got := p.List(); !slices.Equal(got, []int32{0}) || earlier == nil {
		t.Errorf("after a revocation: owned %v, earlier callback got %v", got, earlier)
	}
}

func TestNewSweeperRejects(t *testing.T) {
	t.Parallel()
	cl := fakeKafka(t)
	s := serde(t)
	c, _ := clockCorrelator(t)
	owned := NewPartitions(topicIn)
	cases := []struct {
		name   string
		cfg    SweepConfig
		client *kgo.Client
		owned  *Partitions
	}{
		{"no topic", SweepConfig{Interval: time.Minute}, cl, owned},
		{"negative interval", SweepConfig{VerdictTopic: topicOut, Interval: -time.Second}, cl, owned},
		{"negative batch", SweepConfig{VerdictTopic: topicOut, Batch: -1}, cl, owned},
		{"no client", SweepConfig{VerdictTopic: topicOut}, nil, owned},
		{"no partitions", SweepConfig{VerdictTopic: topicOut}, cl, nil},
	}
	for _, tc := range cases {
		if _, err := NewSweeper(tc.cfg, nil, c, tc.client, s, tc.owned, nil, quiet()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
		}
	}
}

// TestSweeperDisabled: with no interval Run returns at once.
func TestSweeperDisabled(t *testing.T) {
	t.Parallel()
	c, _ := clockCorrelator(t)
	sw, err := NewSweeper(SweepConfig{VerdictTopic: topicOut}, nil, c, fakeKafka(t), serde(t), NewPartitions(topicIn), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
}
