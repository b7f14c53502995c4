//go:build integration

package stream

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// realKafka returns the config of the project's test broker; it fails (never skips) when the
// broker is unreachable.
func realKafka(t *testing.T, topics ...string) (KafkaConfig, []kgo.Opt) {
	t.Helper()
	brokers := os.Getenv("VIGIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:39092"
	}
	kc := KafkaConfig{Brokers: strings.Split(brokers, ","), Partitions: 4, ReplicationFactor: 1, ResetOffset: "earliest", GroupProtocol: "classic"}
	base, _ := kc.ClientOpts()
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("real Kafka broker at %s unreachable (start it with `make up`): %v", brokers, err)
	}
	if err := EnsureTopics(ctx, cl, 4, 1, topics...); err != nil {
		t.Fatal(err)
	}
	return kc, base
}

func runRunner(t *testing.T, cfg Config, h BatchHandler) (*Runner, context.CancelFunc, *errgroup.Group) {
	t.Helper()
	r, err := NewRunner(cfg, h, testSerde(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	return r, cancel, g
}

func committed(t *testing.T, opts []kgo.Opt, group, topic string) int64 {
	t.Helper()
	cl, _ := kgo.NewClient(opts...)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(t.Context(), group)
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

// A consumer that dies mid-batch (client closed, nothing committed for that batch) loses nothing:
// its successor re-processes from the last commit.
func TestIntegrationCrashMidBatch(t *testing.T) {
	t.Parallel()
	in, out, dlq := uniq("crash-in"), uniq("crash-out"), uniq("crash-dlq")
	kc, base := realKafka(t, in, out, dlq)
	kc.DLQTopic = dlq
	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	want := produceN(t, prod, in, 2000, 0)
	group := uniq("g-crash")

	var blocked atomic.Bool
	h1 := &copyHandler{out: out, block: func(n int) bool {
		if n == 3 {
			blocked.Store(true)
			return true
		}
		return false
	}}
	r1, cancel1, g1 := runRunner(t, Config{Stage: "test", Group: group, Topics: []string{in}, Kafka: kc, MaxBatch: 200, DrainTimeout: time.Millisecond}, h1)
	deadline := time.Now().Add(30 * time.Second)
	for !blocked.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !blocked.Load() {
		t.Fatal("first consumer never reached its third batch")
	}
	// crash: the client goes away without committing the batch in hand
	r1.cl.CloseAllowingRebalance()
	cancel1()
	_ = g1.Wait()

	h2 := &copyHandler{out: out}
	r2, cancel2, g2 := runRunner(t, Config{Stage: "test", Group: group, Topics: []string{in}, Kafka: kc, MaxBatch: 200}, h2)
	got := drain(t, base, out, len(want), 60*time.Second)
	cancel2()
	_ = g2.Wait()
	_ = r2.Close(context.Background())
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d of %d records missing after a crash mid-batch, e.g. %v", len(m), len(want), m[:min(5, len(m))])
	}
}

// A poison record lands in the DLQ with its reason and the loop goes on; a clean shutdown
// commits everything that was processed.
func TestIntegrationPoisonAndShutdownCommit(t *testing.T) {
	t.Parallel()
	in, out, dlq := uniq("poison-in"), uniq("poison-out"), uniq("poison-dlq")
	kc, base := realKafka(t, in, out, dlq)
	kc.DLQTopic = dlq
	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	want := produceN(t, prod, in, 500, 100) // 5 poison records
	group := uniq("g-poison")
	h := &copyHandler{out: out}
	r, cancel, g := runRunner(t, Config{Stage: "test", Group: group, Topics: []string{in}, Kafka: kc}, h)
	got := drain(t, base, out, len(want), 60*time.Second)
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records missing: the loop did not continue past poison records", len(m))
	}
	dl := drain(t, base, dlq, 5, 30*time.Second)
	if len(dl) != 5 {
		t.Fatalf("want 5 dead letters, got %d", len(dl))
	}
	serde := testSerde(t)
	for v := range dl {
		d, err := serde.DecodeDeadLetter(t.Context(), []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if d.ErrorClass != "validation" || !strings.Contains(d.Message, "poison record") || d.SourceTopic != in {
			t.Fatalf("dead letter lacks its reason or source: %+v", d)
		}
	}
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := committed(t, base, group, in); c != 500 {
		t.Fatalf("after a clean shutdown committed offsets sum to %d, want 500", c)
	}
}

// A second consumer joining mid-stream (cooperative rebalance) loses nothing.
func TestIntegrationRebalanceLosesNothing(t *testing.T) {
	t.Parallel()
	in, out, dlq := uniq("reb-in"), uniq("reb-out"), uniq("reb-dlq")
	kc, base := realKafka(t, in, out, dlq)
	kc.DLQTopic = dlq
	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	group := uniq("g-reb")
	slow := func(int) bool { time.Sleep(10 * time.Millisecond); return false }
	h1 := &copyHandler{out: out, block: slow}
	r1, cancel1, g1 := runRunner(t, Config{Stage: "test", Group: group, Topics: []string{in}, Kafka: kc, MaxBatch: 50}, h1)
	h2 := &copyHandler{out: out, block: slow}
	var r2 *Runner
	var cancel2 context.CancelFunc
	var g2 *errgroup.Group
	// records keep flowing for ~3 s; the second member joins after ~1 s
	var want []string
	// (and go on, bounded, until the second member has handled a batch after the rebalance)
	h2Batches := func() int { h2.mu.Lock(); defer h2.mu.Unlock(); return h2.batches }
	for chunk := 0; chunk < 30 || (h2Batches() == 0 && chunk < 300); chunk++ {
		want = append(want, produceChunk(t, prod, in, fmt.Sprintf("c%d-", chunk), 100)...)
		if chunk == 10 {
			r2, cancel2, g2 = runRunner(t, Config{Stage: "test", Group: group, Topics: []string{in}, Kafka: kc, MaxBatch: 50}, h2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := drain(t, base, out, len(want), 90*time.Second)
	cancel1()
	cancel2()
	_ = g1.Wait()
	_ = g2.Wait()
	_ = r1.Close(context.Background())
	_ = r2.Close(context.Background())
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records missing after a rebalance", len(m))
	}
	h2.mu.Lock()
	n2 := h2.batches
	h2.mu.Unlock()
	if n2 == 0 {
		t.Fatal("the second consumer never received partitions: no rebalance happened")
	}
}
