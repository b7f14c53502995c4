//go:build integration

package stage

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/sink/internal/feedback"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, rand.Int64()) }

// realKafka returns the test broker's config after creating topics; it fails when unreachable.
func realKafka(t *testing.T, topics ...string) (stream.KafkaConfig, []kgo.Opt) {
	t.Helper()
	brokers := os.Getenv("VIGIL_TEST_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:39092"
	}
	kc := stream.KafkaConfig{Brokers: strings.Split(brokers, ","), Partitions: 4, ReplicationFactor: 1,
		ResetOffset: "earliest", GroupProtocol: "classic"}
	base, err := kc.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("real Kafka broker at %s unreachable (bash scripts/kafka/kafka.sh start): %v", brokers, err)
	}
	if err := stream.EnsureTopics(ctx, cl, 4, 1, topics...); err != nil {
		t.Fatal(err)
	}
	return kc, base
}

func realRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:36379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("real Redis at %s unreachable (bash scripts/redis.sh start): %v", addr, err)
	}
	return rdb
}

// writeCounter counts the writer's metrics (alongside nothing else).
type writeCounter struct {
	writer.NopMetrics
	written, skipped atomic.Int64
}

func (c *writeCounter) Written(n int) { c.written.Add(int64(n)) }
func (c *writeCounter) Skipped(n int) { c.skipped.Add(int64(n)) }

type rigOpts struct {
	store         writer.FingerprintStore
	flushMax      int
	flushInterval time.Duration
}

// rig is a sink (runner + stage + writer) against an in-process emulator and the real broker.
type rig struct {
	emu            *tqemu.Server
	tq             *threatq.Client
	store          writer.FingerprintStore
	fb             string
	st             *Stage
	counts         *writeCounter
	in, dlq, group string
	opts           []kgo.Opt
	serde          *events.Serde
	producer       *kgo.Client
	cancel         context.CancelFunc
	g              *errgroup.Group
	r              *stream.Runner
	stopOnce       sync.Once
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	rg := &rig{in: uniq("sink-in"), dlq: uniq("sink-dlq"), fb: uniq("sink-fb"), group: uniq("sink-group"), counts: &writeCounter{}}
	kc, base := realKafka(t, rg.in, rg.dlq, rg.fb)
	kc.DLQTopic = rg.dlq
	rg.opts = base
	rg.emu = tqemu.New(tqemu.Options{Seed: 11})
	srv := httptest.NewServer(rg.emu)
	t.Cleanup(srv.Close)
	eo := rg.emu.Options()
	tq, err := threatq.New(threatq.Config{BaseURL: srv.URL, ClientID: eo.ClientID, Email: eo.Email, Password: eo.Password,
		AllowInsecureHTTP: true, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tq.Resolve(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o.store == nil {
		o.store = writer.NewMemoryStore()
	}
	rg.tq, rg.store = tq, o.store
	if o.flushMax == 0 {
		o.flushMax = 500
	}
	if o.flushInterval == 0 {
		o.flushInterval = 200 * time.Millisecond
	}
	w, err := writer.New(writer.Config{MaxPending: o.flushMax, FlushInterval: o.flushInterval, MaxAttempts: 2,
		RetryInitial: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, BreakerFailures: 3,
		BreakerOpenFor: 300 * time.Millisecond}, tq, o.store, rg.counts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rg.serde, err = events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	rg.st = New(w, rg.serde, nil, slog.New(slog.DiscardHandler))
	rg.r, err = stream.NewRunner(stream.Config{Stage: "sink", Group: rg.group, Topics: []string{rg.in}, Kafka: kc,
		MaxBatch: o.flushMax, BatchWait: o.flushInterval, RetryBase: 10 * time.Millisecond,
		PauseMin: 100 * time.Millisecond, PauseMax: time.Second}, rg.st, rg.serde, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rg.producer, err = kgo.NewClient(append(base, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rg.producer.Close)
	t.Cleanup(func() { rg.stop(t) })
	return rg
}

func (rg *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	rg.cancel = cancel
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rg.r.Run(gctx) })
	rg.g = g
}

func (rg *rig) stop(t *testing.T) {
	rg.stopOnce.Do(func() {
		if rg.cancel != nil {
			rg.cancel()
			if err := rg.g.Wait(); err != nil {
				t.Errorf("runner: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rg.r.Close(ctx)
	})
}

func (rg *rig) produce(t *testing.T, vs []events.Verdict) {
	t.Helper()
	recs := make([]*kgo.Record, len(vs))
	for i := range vs {
		b, err := rg.serde.EncodeVerdict(&vs[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: rg.in, Key: []byte(vs[i].Indicator.Key()), Value: b}
	}
	if err := rg.producer.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed sums the group's committed offsets on the input topic (= records committed).
func (rg *rig) committed(t *testing.T) int64 {
	t.Helper()
	adm := kadm.NewClient(rg.producer)
	offs, err := adm.FetchOffsets(t.Context(), rg.group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == rg.in && o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}

// dlqRecords reads every record of the DLQ topic.
func (rg *rig) dlqRecords(t *testing.T) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(rg.producer)
	ends, err := adm.ListEndOffsets(t.Context(), rg.dlq)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(rg.opts, kgo.ConsumeTopics(rg.dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d DLQ records", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ipVerdicts(n, distinct int, base time.Time) []events.Verdict {
	out := make([]events.Verdict, n)
	for i := range out {
		k := i % distinct
		out[i] = events.Verdict{
			Indicator: events.Indicator{Type: events.TypeIPv4, Value: fmt.Sprintf("198.51.%d.%d", k/250, k%250+1)},
			Priority:  int32(i % 11), Level: "high", Action: events.VerdictBlock,
			Reasons:   []events.Reason{{Code: "criminalip.inbound"}},
			Sources:   []string{"criminalip"},
			EventTime: base.Add(-time.Minute),
			DecidedAt: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// (a) The same verdicts produced twice (and a third time after the fingerprints were lost) leave
// one indicator each with one set of attribute values.
func TestIntegrationIdempotence(t *testing.T) {
	t.Parallel()
	rdb := realRedis(t)
	rg := newRig(t, rigOpts{store: writer.NewRedisStore(rdb, time.Hour)})
	suffix := fmt.Sprintf("t%d", rand.Uint32())
	vs := make([]events.Verdict, 20)
	keys := make([]string, len(vs))
	for i := range vs {
		vs[i] = events.Verdict{
			Indicator: events.Indicator{Type: events.TypeDomain, Value: fmt.Sprintf("h%d.%s.example.org", i, suffix)},
			Priority:  7, Level: "high", Action: events.VerdictAlert,
			Reasons:    []events.Reason{{Code: "criminalip.inbound"}, {Code: "sightings.burst"}},
			Attributes: []events.Attribute{{Name: "Open Port", Value: "22"}, {Name: "Is VPN", Value: "true"}},
			Sources:    []string{"criminalip"},
			DecidedAt:  time.Now().UTC(),
		}
		keys[i] = writer.RedisKeyPrefix + vs[i].Indicator.Key()
	}
	t.Cleanup(func() { rdb.Del(context.Background(), keys...) })
	rg.start()

	check := func(round string) {
		t.Helper()
		if n := rg.emu.Stats().Indicators; n != len(vs) {
			t.Fatalf("%s: %d indicators, want %d", round, n, len(vs))
		}
		for _, v := range vs {
			ind, ok := rg.emu.Lookup("FQDN", v.Indicator.Value)
			if !ok {
				t.Fatalf("%s: %s missing", round, v.Indicator.Value)
			}
			for name, want := range map[string]int{writer.AttrPriority: 1, writer.AttrReason: 2, "Open Port": 1, "Is VPN": 1, writer.AttrAction: 1} {
				if got := ind.Attr(name); len(got) != want {
					t.Fatalf("%s: %s attribute %q = %v, want %d value(s)", round, v.Indicator.Value, name, got, want)
				}
			}
		}
	}

	rg.produce(t, vs)
	waitFor(t, 30*time.Second, "first pass committed", func() bool { return rg.committed(t) == 20 })
	check("first pass")
	writes := rg.emu.Stats().Writes

	rg.produce(t, vs)
	waitFor(t, 30*time.Second, "second pass committed", func() bool { return rg.committed(t) == 40 })
	check("second pass")
	if got := rg.emu.Stats().Writes; got != writes {
		t.Fatalf("second pass changed ThreatQ: writes %d -> %d", writes, got)
	}
	if s := rg.counts.skipped.Load(); s != 20 {
		t.Fatalf("fingerprint skips = %d, want 20", s)
	}

	// Fingerprints lost (Redis flushed): everything is rewritten, still one set of values.
	if err := rdb.Del(t.Context(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	rg.produce(t, vs)
	waitFor(t, 30*time.Second, "third pass committed", func() bool { return rg.committed(t) == 60 })
	check("third pass")
	if n := len(rg.dlqRecords(t)); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// (b) ThreatQ down mid-stream: the runner pauses, the group's committed offset does not move
// during the outage, and everything is written after recovery.
func TestIntegrationThreatQOutage(t *testing.T) {
	t.Parallel()
	rg := newRig(t, rigOpts{})
	base := time.Now().UTC()
	first, second := ipVerdicts(50, 50, base), ipVerdicts(150, 150, base.Add(time.Second))[50:]
	rg.start()
	rg.produce(t, first)
	waitFor(t, 30*time.Second, "first 50 committed", func() bool { return rg.committed(t) == 50 })

	rg.emu.SetFault(tqemu.Faults{Down: true})
	rg.produce(t, second)
	waitFor(t, 20*time.Second, "the sink to pause", func() bool { return rg.st.Debug().Pauses >= 2 })
	for range 10 { // ~2 s of outage, committed offset must stay put
		if c := rg.committed(t); c != 50 {
			t.Fatalf("committed %d during the outage, want 50", c)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := rg.emu.Stats().Indicators; n != 50 {
		t.Fatalf("%d indicators during the outage", n)
	}

	rg.emu.ClearFaults()
	waitFor(t, 30*time.Second, "all 150 committed", func() bool { return rg.committed(t) == 150 })
	if n := rg.emu.Stats().Indicators; n != 150 {
		t.Fatalf("%d indicators after recovery, want 150 (%+v)", n, rg.st.Debug())
	}
	if n := len(rg.dlqRecords(t)); n != 0 {
		t.Fatalf("%d dead letters after an outage", n)
	}
}

// (c) Access tokens expiring over and over mid-run lose nothing.
func TestIntegrationTokenExpiryStorm(t *testing.T) {
	t.Parallel()
	rg := newRig(t, rigOpts{flushMax: 50, flushInterval: 50 * time.Millisecond})
	rg.start()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(15 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rg.emu.ExpireTokens()
			}
		}
	}()
	vs := ipVerdicts(400, 400, time.Now().UTC())
	for i := 0; i < len(vs); i += 50 {
		rg.produce(t, vs[i:i+50])
		time.Sleep(30 * time.Millisecond)
	}
	waitFor(t, 45*time.Second, "400 committed during the storm", func() bool { return rg.committed(t) == 400 })
	close(stop)
	wg.Wait()
	if n := rg.emu.Stats().Indicators; n != 400 {
		t.Fatalf("%d indicators, want 400", n)
	}
	if rg.emu.Stats().TokensIssued < 3 {
		t.Fatalf("only %d tokens issued: the storm did not hit", rg.emu.Stats().TokensIssued)
	}
	if n := len(rg.dlqRecords(t)); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// (d) One invalid record in a window goes to the DLQ with ThreatQ's error text; the rest is written.
func TestIntegrationInvalidRecordToDLQ(t *testing.T) {
	t.Parallel()
	rg := newRig(t, rigOpts{})
	vs := ipVerdicts(10, 10, time.Now().UTC())
	vs[4].Indicator.Value = "300.1.2.3"
	rg.produce(t, vs)
	rg.start()
	waitFor(t, 30*time.Second, "10 committed", func() bool { return rg.committed(t) == 10 })
	if n := rg.emu.Stats().Indicators; n != 9 {
		t.Fatalf("%d indicators, want 9", n)
	}
	dl := rg.dlqRecords(t)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	d, err := rg.serde.DecodeDeadLetter(t.Context(), dl[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if d.ErrorClass != ClassValidation || !strings.Contains(d.Message, "valid IPv4") || string(d.Key) != "ipv4:300.1.2.3" || d.Stage != "sink" {
		t.Fatalf("dead letter = class %q message %q key %q stage %q", d.ErrorClass, d.Message, d.Key, d.Stage)
	}
	v, err := rg.serde.DecodeVerdict(t.Context(), d.Value)
	if err != nil || v.Indicator.Value != "300.1.2.3" {
		t.Fatalf("dead letter value: %+v, %v", v.Indicator, err)
	}
}

// (e) 10,000 verdicts for 100 indicators: at most 100 indicator writes per flush window.
func TestIntegrationCoalescing(t *testing.T) {
	t.Parallel()
	rg := newRig(t, rigOpts{flushMax: 10000, flushInterval: 3 * time.Second})
	vs := ipVerdicts(10000, 100, time.Now().UTC())
	rg.produce(t, vs)
	rg.start()
	waitFor(t, 45*time.Second, "10,000 committed", func() bool { return rg.committed(t) == 10000 })
	d := rg.st.Debug()
	windows := d.Flushes
	st := rg.emu.Stats()
	if st.Indicators != 100 || st.Created != 100 {
		t.Fatalf("indicators %d created %d, want 100", st.Indicators, st.Created)
	}
	if w := rg.counts.written.Load(); w > 100*windows || w < 100 {
		t.Fatalf("%d indicator writes in %d windows (want 100..%d)", w, windows, 100*windows)
	}
	if int64(st.Writes) > 100*windows {
		t.Fatalf("emulator counted %d writes in %d windows", st.Writes, windows)
	}
	if c := st.Calls["POST /api/indicators/consume"]; int64(c) > windows {
		t.Fatalf("%d consume calls in %d windows", c, windows)
	}
	t.Logf("10,000 verdicts: %d windows, %d indicator writes, %d consume calls, %d ThreatQ changes",
		windows, rg.counts.written.Load(), st.Calls["POST /api/indicators/consume"], st.Writes)
	// the latest verdict of each indicator won
	last := map[string]events.Verdict{}
	for _, v := range vs {
		last[v.Indicator.Value] = v
	}
	for val, v := range last {
		ind, _ := rg.emu.Lookup("IP Address", val)
		if p := ind.Attr(writer.AttrPriority); len(p) != 1 || p[0] != fmt.Sprint(v.Priority) {
			t.Fatalf("%s priority %v, want the latest verdict's %d", val, p, v.Priority)
		}
	}
}

// The feedback poller publishes an analyst's change of an indicator Vigil wrote to the feedback
// topic, keyed by the indicator, and the Kafka record decodes to the change.
func TestIntegrationFeedbackPublished(t *testing.T) {
	t.Parallel()
	rg := newRig(t, rigOpts{})
	started := time.Now().Add(-2 * time.Second)
	vs := ipVerdicts(3, 3, time.Now().UTC())
	rg.produce(t, vs)
	rg.start()
	waitFor(t, 30*time.Second, "3 committed", func() bool { return rg.committed(t) == 3 })
	if err := rg.emu.AnalystSetStatus(vs[1].Indicator.Value, "Whitelisted"); err != nil {
		t.Fatal(err)
	}

	poller, err := feedback.New(feedback.Config{Settle: 10 * time.Millisecond, StartAt: started}, rg.tq, rg.store,
		&feedback.MemoryCursor{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kinds := kindCounter{}
	var mu sync.Mutex
	publish := FeedbackPublisher(rg.producer, rg.fb, rg.serde, FeedbackCounterFunc(func(k string) {
		mu.Lock()
		kinds[k]++
		mu.Unlock()
	}))
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return poller.Run(gctx, 200*time.Millisecond, publish) })
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	}()

	cl, err := kgo.NewClient(append(rg.opts, kgo.ConsumeTopics(rg.fb), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer pcancel()
	var recs []*kgo.Record
	for len(recs) == 0 {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatal("no feedback record within 20s")
		}
		recs = append(recs, fs.Records()...)
	}
	fb, err := rg.serde.DecodeFeedback(t.Context(), recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if string(recs[0].Key) != vs[1].Indicator.Key() || fb.Kind != feedback.KindStatusChanged || fb.NewStatus != "Whitelisted" ||
		fb.PreviousStatus != "Active" || fb.VigilAction != events.VerdictBlock {
		t.Fatalf("feedback key %q = %+v", recs[0].Key, fb)
	}
	// the publisher counts after the produce ack, which can come after our consumer saw the record
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return kinds[feedback.KindStatusChanged]
	}
	waitFor(t, 10*time.Second, "status_changed counted", func() bool { return count() >= 1 })
	if n := count(); n != 1 {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("feedback metric kinds = %v", kinds)
	}
}
