package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// copyHandler forwards each record to out; a value starting with "POISON" is a permanent
// failure; it can block on a batch to simulate a crash mid-batch.
type copyHandler struct {
	out     string
	mu      sync.Mutex
	batches int
	block   func(batch int) bool // when true, Handle blocks until ctx is done
	seen    map[string]int
}

func (h *copyHandler) Handle(ctx context.Context, recs []*kgo.Record) ([]Result, error) {
	h.mu.Lock()
	h.batches++
	n := h.batches
	if h.seen == nil {
		h.seen = map[string]int{}
	}
	for _, r := range recs {
		h.seen[string(r.Value)]++
	}
	h.mu.Unlock()
	if h.block != nil && h.block(n) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	res := make([]Result, len(recs))
	for i, r := range recs {
		if bytes.HasPrefix(r.Value, []byte("POISON")) {
			res[i].Err = Permanent("validation", errors.New("poison record api_key=abc123"))
			continue
		}
		res[i].Outputs = []*kgo.Record{{Topic: h.out, Key: r.Key, Value: r.Value}}
	}
	return res, nil
}

func (h *copyHandler) batchCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.batches
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testSerde(t testing.TB) *events.Serde {
	t.Helper()
	s, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, rand.Int64()) }

func produceN(t *testing.T, cl *kgo.Client, topic string, n int, poisonEvery int) []string {
	t.Helper()
	var vals []string
	var recs []*kgo.Record
	for i := range n {
		v := "rec-" + strconv.Itoa(i)
		if poisonEvery > 0 && i%poisonEvery == poisonEvery-1 {
			v = "POISON-" + strconv.Itoa(i)
		} else {
			vals = append(vals, v)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%37)), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return vals
}

// drain reads topic from the start until want distinct values are seen or timeout.
func drain(t *testing.T, opts []kgo.Opt, topic string, want int, timeout time.Duration) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	deadline := time.Now().Add(timeout)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
	}
	return got
}

func missing(want []string, got map[string]int) []string {
	var out []string
	for _, v := range want {
		if got[v] == 0 {
			out = append(out, v)
		}
	}
	return out
}

func produceChunk(t *testing.T, cl *kgo.Client, topic, prefix string, n int) []string {
	t.Helper()
	vals := make([]string, 0, n)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		v := prefix + strconv.Itoa(i)
		vals = append(vals, v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%37)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return vals
}
