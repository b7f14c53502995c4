package stream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"
)

// span is n records of topic "t", partition p, from offset from.
type span struct {
	p        int32
	from, to int64 // [from, to)
}

func fakeBatch(outputs int64, spans ...span) *batch {
	var recs []*kgo.Record
	for _, s := range spans {
		for o := s.from; o < s.to; o++ {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: s.p, Offset: o})
		}
	}
	b := newBatch(recs, nil, time.Now(), 0, 0)
	b.pending.Store(outputs)
	return b
}

// commitRecorder records every commit the committer makes.
type commitRecorder struct {
	mu      sync.Mutex
	commits []map[int32]int64
	gate    chan struct{} // when set, each commit waits for a receive
	entered chan struct{} // when set, each commit announces itself before the gate
}

func (c *commitRecorder) commit(_ context.Context, offs offsets) {
	if c.entered != nil {
		c.entered <- struct{}{}
	}
	if c.gate != nil {
		<-c.gate
	}
	m := map[int32]int64{}
	for p, o := range offs["t"] {
		m[p] = o.Offset
	}
	c.mu.Lock()
	c.commits = append(c.commits, m)
	c.mu.Unlock()
}

func (c *commitRecorder) snapshot() []map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[int32]int64(nil), c.commits...)
}

// latest folds the commits into the newest offset per partition and checks they never go back.
func (c *commitRecorder) latest(t *testing.T) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for _, m := range c.snapshot() {
		for p, o := range m {
			if o < out[p] {
				t.Fatalf("commit of partition %d went back from %d to %d", p, out[p], o)
			}
			out[p] = o
		}
	}
	return out
}

func startPipeline(t *testing.T, rec *commitRecorder) *pipeline {
	t.Helper()
	p := newPipeline(func() {})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { p.run(ctx, rec.commit, func(context.Context, *batch) {}) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func waitIdle(t *testing.T, p *pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if !p.waitIdle(ctx) {
		t.Fatal("pipeline did not become idle")
	}
}

// A batch acked before an earlier one is not committed until the earlier one is acked.
func TestPipelineCommitWaitsForEarlierBatches(t *testing.T) {
	t.Parallel()
	rec := &commitRecorder{}
	p := startPipeline(t, rec)
	b1 := fakeBatch(2, span{0, 0, 10})
	b2 := fakeBatch(1, span{0, 10, 20}, span{1, 0, 5})
	p.submit(b1)
	p.submit(b2)
	b2.acked(nil, nil)
	b1.acked(nil, nil) // one of two outputs
	time.Sleep(50 * time.Millisecond)
	if c := rec.snapshot(); len(c) != 0 {
		t.Fatalf("committed %v before the first batch's outputs were all acked", c)
	}
	b1.acked(nil, nil)
	waitIdle(t, p)
	got := rec.latest(t)
	if got[0] != 20 || got[1] != 5 {
		t.Fatalf("latest commit %v, want partition 0 at 20 and 1 at 5", got)
	}
}

// A produce failure stops commits at the failed batch; takeFailure returns the first offset of
// it and of every later batch, per partition.
func TestPipelineFailureDiscardsLaterBatches(t *testing.T) {
	t.Parallel()
	rec := &commitRecorder{}
	p := startPipeline(t, rec)
	b1 := fakeBatch(1, span{0, 0, 10})
	b2 := fakeBatch(1, span{0, 10, 20})
	b3 := fakeBatch(1, span{0, 20, 30}, span{2, 0, 10})
	for _, b := range []*batch{b1, b2, b3} {
		p.submit(b)
	}
	b3.acked(nil, nil)
	b1.acked(nil, nil)
	b2.acked(nil, errors.New("broker says no"))
	deadline := time.Now().Add(5 * time.Second)
	for !p.hasFailed() {
		if time.Now().After(deadline) {
			t.Fatal("failure not reported")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	got := rec.latest(t)
	if got[0] != 10 {
		t.Fatalf("partition 0 committed at %d, want 10 (the end of the last good batch)", got[0])
	}
	if _, ok := got[2]; ok {
		t.Fatalf("partition 2 of a batch after the failed one was committed: %v", got)
	}
	first, err := p.takeFailure()
	if err == nil {
		t.Fatal("takeFailure returned no error")
	}
	if first["t"][0].Offset != 10 || first["t"][2].Offset != 0 || len(first["t"]) != 2 {
		t.Fatalf("rewind offsets %v, want partition 0 at 10 and 2 at 0", first["t"])
	}
	waitIdle(t, p)
	// the pipeline works again after the failure was taken
	b4 := fakeBatch(1, span{0, 10, 40})
	p.submit(b4)
	b4.acked(nil, nil)
	waitIdle(t, p)
	if got := rec.latest(t); got[0] != 40 {
		t.Fatalf("after recovery partition 0 committed at %d, want 40", got[0])
	}
}

// Batches acked while a commit is in flight are coalesced into one commit of the newest offsets.
func TestPipelineCoalescesCommits(t *testing.T) {
	t.Parallel()
	rec := &commitRecorder{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	p := startPipeline(t, rec)
	b1 := fakeBatch(0, span{0, 0, 10})
	p.submit(b1)
	b1.finish()
	<-rec.entered
	// the first commit now waits on the gate; three more batches complete meanwhile
	for i := range int64(3) {
		b := fakeBatch(0, span{0, 10 + 10*i, 20 + 10*i})
		p.submit(b)
		b.finish()
	}
	time.Sleep(20 * time.Millisecond)
	rec.gate <- struct{}{}
	rec.gate <- struct{}{}
	waitIdle(t, p)
	c := rec.snapshot()
	if len(c) != 2 || c[0][0] != 10 || c[1][0] != 40 {
		t.Fatalf("commits %v, want two: partition 0 at 10, then at 40", c)
	}
}

// waitSpace bounds the batches in flight.
func TestPipelineBoundsInFlight(t *testing.T) {
	t.Parallel()
	rec := &commitRecorder{}
	p := startPipeline(t, rec)
	b1, b2 := fakeBatch(1, span{0, 0, 1}), fakeBatch(1, span{0, 1, 2})
	p.submit(b1)
	p.submit(b2)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if p.waitSpace(ctx, 2) {
		t.Fatal("waitSpace returned with 2 of 2 batches in flight")
	}
	b1.acked(nil, nil)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	if !p.waitSpace(ctx2, 2) {
		t.Fatal("waitSpace did not return after a batch was acked")
	}
}

// failOnceHandler copies records, but the first call's first output is too large to produce.
type failOnceHandler struct {
	copyHandler
	failed bool
}

func (h *failOnceHandler) Handle(ctx context.Context, recs []*kgo.Record) ([]Result, error) {
	res, err := h.copyHandler.Handle(ctx, recs)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && !h.failed && len(res) > 0 && len(res[0].Outputs) > 0 {
		h.failed = true
		big := *res[0].Outputs[0]
		big.Value = make([]byte, 2<<20) // above the producer's batch limit: fails without retries
		res[0].Outputs = []*kgo.Record{&big}
	}
	return res, err
}

func committedSum(t *testing.T, opts []kgo.Opt, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

// A produce failure with later batches in flight rewinds and re-delivers: nothing is lost, the
// failed batch is handled again, and a clean shutdown commits everything.
func TestRunnerProduceFailureRewinds(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in", "out", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	kc := KafkaConfig{Brokers: fake.ListenAddrs(), Partitions: 3, ReplicationFactor: 1, ResetOffset: "earliest", DLQTopic: "dlq", GroupProtocol: "classic"}
	base, _ := kc.ClientOpts()
	prod, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := produceN(t, prod, "in", 400, 0)
	h := &failOnceHandler{copyHandler: copyHandler{out: "out"}}
	r, err := NewRunner(Config{Stage: "test", Group: "gfail", Topics: []string{"in"}, Kafka: kc, MaxBatch: 20,
		MaxInFlight: 4, PauseMin: 20 * time.Millisecond}, h, testSerde(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	got := drain(t, base, "out", len(want), 20*time.Second)
	// wait for the last commits, then stop
	deadline := time.Now().Add(10 * time.Second)
	for committedSum(t, base, "gfail", "in") != 400 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records lost after a produce failure, e.g. %v", len(m), m[:min(5, len(m))])
	}
	if !h.failed {
		t.Fatal("the produce failure was never injected")
	}
	again := 0
	h.mu.Lock()
	for _, n := range h.seen {
		if n > 1 {
			again++
		}
	}
	h.mu.Unlock()
	if again == 0 {
		t.Fatal("no record was handled again after its batch failed to produce")
	}
	if c := committedSum(t, base, "gfail", "in"); c != 400 {
		t.Fatalf("committed offsets sum to %d, want 400", c)
	}
}

// Before a rebalance takes partitions away, the batches in flight are acked and committed:
// produce acks are slowed down so batches are in flight when the second member joins.
func TestRunnerDrainsBeforeRevoke(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	kc := KafkaConfig{Brokers: fake.ListenAddrs(), Partitions: 4, ReplicationFactor: 1, ResetOffset: "earliest", DLQTopic: "dlq", GroupProtocol: "classic"}
	base, _ := kc.ClientOpts()
	prod, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := produceN(t, prod, "in", 2000, 0)
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		time.Sleep(20 * time.Millisecond) // slow acks: batches stay in flight
		return nil, nil, false
	})

	var mu sync.Mutex
	var revokes, notDrained int
	var r1 *Runner
	onRevoke := func(_ context.Context, revoked map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		if len(revoked["in"]) == 0 {
			return
		}
		revokes++
		if !r1.pipe.idle() {
			notDrained++
		}
	}
	cfg := Config{Stage: "test", Group: "grev", Topics: []string{"in"}, Kafka: kc, MaxBatch: 10, MaxInFlight: 4, OnRevoke: onRevoke}
	h1 := &copyHandler{out: "out"}
	r1, err = NewRunner(cfg, h1, testSerde(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r1.Run(gctx) })
	// let r1 get going, then a second member joins and takes partitions
	for h1.batchCount() < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	cfg2 := cfg
	cfg2.OnRevoke = nil
	h2 := &copyHandler{out: "out"}
	r2, err := NewRunner(cfg2, h2, testSerde(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	g.Go(func() error { return r2.Run(gctx) })
	got := drain(t, base, "out", len(want), 30*time.Second)
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = r1.Close(context.Background())
	_ = r2.Close(context.Background())
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records lost across the rebalance", len(m))
	}
	mu.Lock()
	defer mu.Unlock()
	if revokes == 0 {
		t.Fatal("no partition was revoked from the first member")
	}
	if notDrained > 0 {
		t.Fatalf("%d of %d revokes ran with batches still in flight", notDrained, revokes)
	}
}
