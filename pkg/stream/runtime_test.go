package stream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// TestRunnerKfake is the fast unit check of the loop (kfake): outputs for every good record,
// poison records in the DLQ with their reason, secrets redacted.
func TestRunnerKfake(t *testing.T) {
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
	want := produceN(t, prod, "in", 300, 50)

	h := &copyHandler{out: "out"}
	serde := testSerde(t)
	r, err := NewRunner(Config{Stage: "test", Group: "g1", Topics: []string{"in"}, Kafka: kc, MaxBatch: 64}, h, serde, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })

	got := drain(t, base, "out", len(want), 20*time.Second)
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records missing downstream, e.g. %v", len(m), m[:min(5, len(m))])
	}
	dl := drain(t, base, "dlq", 6, 10*time.Second)
	if len(dl) != 6 {
		t.Fatalf("want 6 dead letters, got %d", len(dl))
	}
	for v := range dl {
		d, err := serde.DecodeDeadLetter(t.Context(), []byte(v))
		if err != nil {
			t.Fatalf("decode dead letter: %v", err)
		}
		if d.ErrorClass != "validation" || d.Stage != "test" || !strings.HasPrefix(string(d.Value), "POISON") {
			t.Fatalf("unexpected dead letter %+v", d)
		}
		if strings.Contains(d.Message, "abc123") {
			t.Fatalf("secret leaked into dead letter: %q", d.Message)
		}
	}
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pauseHandler fails with ErrPause for the first n calls, then forwards.
type pauseHandler struct {
	copyHandler
	pauses int
}

func (h *pauseHandler) Handle(ctx context.Context, recs []*kgo.Record) ([]Result, error) {
	if h.pauses > 0 {
		h.pauses--
		return nil, errors.Join(errors.New("breaker open"), ErrPause)
	}
	return h.copyHandler.Handle(ctx, recs)
}

// TestRunnerPauseRewinds checks that a paused batch is neither committed nor lost.
func TestRunnerPauseRewinds(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	kc := KafkaConfig{Brokers: fake.ListenAddrs(), Partitions: 2, ReplicationFactor: 1, ResetOffset: "earliest", DLQTopic: "dlq", GroupProtocol: "classic"}
	base, _ := kc.ClientOpts()
	prod, _ := kgo.NewClient(base...)
	defer prod.Close()
	want := produceN(t, prod, "in", 100, 0)
	h := &pauseHandler{copyHandler: copyHandler{out: "out"}, pauses: 3}
	r, err := NewRunner(Config{Stage: "test", Group: "g2", Topics: []string{"in"}, Kafka: kc, PauseMin: 50 * time.Millisecond}, h, testSerde(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	got := drain(t, base, "out", len(want), 20*time.Second)
	cancel()
	_ = g.Wait()
	_ = r.Close(context.Background())
	if m := missing(want, got); len(m) > 0 {
		t.Fatalf("%d records lost after pauses", len(m))
	}
	if h.pauses != 0 {
		t.Fatalf("handler was not retried after pausing")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, notWant string }{
		{"Authorization: Bearer eyJabc.def", "eyJabc.def"},
		{`{"password":"hunter2"}`, "hunter2"},
		{"x-api-key=KEY123456", "KEY123456"},
		{"client_secret=s3cr3t&x=1", "s3cr3t"},
	}
	for _, c := range cases {
		if got := Redact(c.in); strings.Contains(got, c.notWant) {
			t.Errorf("Redact(%q) = %q still contains the secret", c.in, got)
		}
	}
	if got := RedactValues("key is abcd1234 here", "abcd1234"); strings.Contains(got, "abcd1234") {
		t.Errorf("RedactValues kept the value: %q", got)
	}
}

func TestWindowEnd(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	wait := 500 * time.Millisecond
	at := func(ds ...time.Duration) []*kgo.Record {
		var recs []*kgo.Record
		for _, d := range ds {
			r := &kgo.Record{}
			if d != 0 {
				r.Timestamp = now.Add(d)
			}
			recs = append(recs, r)
		}
		return recs
	}
	for _, tc := range []struct {
		name       string
		recs       []*kgo.Record
		fromRecord bool
		want       time.Time
	}{
		{"poll time when not from record", at(-time.Minute), false, now.Add(wait)},
		{"fresh record keeps the full window", at(-time.Millisecond), true, now.Add(wait - time.Millisecond)},
		{"backlogged record: window already over", at(-time.Minute), true, now.Add(-time.Minute + wait)},
		{"oldest record of several decides", at(-100*time.Millisecond, -300*time.Millisecond, -200*time.Millisecond), true, now.Add(wait - 300*time.Millisecond)},
		{"producer clock ahead: poll time", at(time.Second), true, now.Add(wait)},
		{"record without timestamp: poll time", at(0), true, now.Add(wait)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := windowEnd(now, tc.recs, wait, tc.fromRecord); !got.Equal(tc.want) {
				t.Fatalf("windowEnd = %v, want %v", got.Sub(now), tc.want.Sub(now))
			}
		})
	}
}
