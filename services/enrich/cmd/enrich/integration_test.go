//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/enrich/internal/config"
	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// realKafka returns the test broker's config after creating topics; it fails (never skips) when unreachable.
func realKafka(t *testing.T, topics ...string) (stream.KafkaConfig, []kgo.Opt) {
	t.Helper()
	brokers := envOr("VIGIL_TEST_KAFKA_BROKERS", "127.0.0.1:39092")
	kc := stream.KafkaConfig{Brokers: strings.Split(brokers, ","), Partitions: 4, ReplicationFactor: 1, ResetOffset: "earliest", GroupProtocol: "classic"}
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
		t.Fatalf("Kafka at %s unreachable (start it with `make up`): %v", brokers, err)
	}
	if err := stream.EnsureTopics(ctx, cl, 4, 1, topics...); err != nil {
		t.Fatal(err)
	}
	return kc, base
}

// expected returns the provider statuses the emulator's profile implies for an address of kind k
// (offline has no files in this test: skipped).
func expected(k emulator.Kind) map[string]string {
	hasData := events.StatusOK
	if k == emulator.KindNotFound {
		hasData = events.StatusNotFound
	}
	gn := events.StatusNotFound
	switch k {
	case emulator.KindHosting, emulator.KindTor, emulator.KindScanner, emulator.KindCritical:
		gn = events.StatusOK
	}
	return map[string]string{"criminalip": hasData, "internetdb": hasData, "abuseipdb": events.StatusOK, "greynoise": gn, "offline": events.StatusSkipped}
}

// produce writes n observations cycling over ips, keyed by indicator, and returns how many went to each key.
func produce(t *testing.T, cl *kgo.Client, topic string, serde *events.Serde, ips []string, n int) map[string]int {
	t.Helper()
	want := map[string]int{}
	recs := make([]*kgo.Record, 0, n)
	now := time.Now().UTC()
	for i := range n {
		o := events.Observation{
			Indicator: events.Indicator{Type: events.TypeIPv4, Value: ips[i%len(ips)]}, Field: "dest_ip",
			EventTime: now, IngestTime: now, Producer: events.Producer{Topic: "raw.test", Offset: int64(i), Format: "test"},
			Sighting: events.Sighting{Direction: events.DirectionOutbound, Action: events.ActionAllowed, Count: 1},
		}
		b, err := serde.EncodeObservation(&o)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(o.Indicator.Key()), Value: b})
		want[o.Indicator.Key()]++
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want
}

// collect reads the output topic until n more enrichments arrived or the timeout passes.
func collect(t *testing.T, cl *kgo.Client, serde *events.Serde, n int, timeout time.Duration) map[string][]events.Enrichment {
	t.Helper()
	got := map[string][]events.Enrichment{}
	count := 0
	deadline := time.Now().Add(timeout)
	for count < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			en, err := serde.DecodeEnrichment(t.Context(), r.Value)
			if err != nil {
				t.Fatalf("decode enrichment at offset %d: %v", r.Offset, err)
			}
			if string(r.Key) != en.Observation.Indicator.Key() {
				t.Fatalf("output key %q for indicator %q", r.Key, en.Observation.Indicator.Key())
			}
			got[string(r.Key)] = append(got[string(r.Key)], en)
			count++
		})
	}
	if count != n {
		t.Fatalf("received %d of %d enrichments within %s", count, n, timeout)
	}
	return got
}

func statuses(en events.Enrichment) map[string]string {
	m := map[string]string{}
	for _, r := range en.Results {
		m[r.Provider] = r.Status
	}
	return m
}

// The real stage inside a stream.Runner against the real broker, real Redis and the provider emulator:
// every record is enriched as the emulator's profile says with exactly one provider call per unique
// indicator; then Criminal IP goes down and records keep flowing, partially enriched.
func TestIntegrationEnrichEndToEnd(t *testing.T) {
	t.Parallel()
	sfx := fmt.Sprintf("%d", rand.Int64())
	in, out, dlq := "it-enrich-in-"+sfx, "it-enrich-out-"+sfx, "it-enrich-dlq-"+sfx
	kc, base := realKafka(t, in, out, dlq)
	kc.DLQTopic = dlq

	rdb, err := service.NewRedis(t.Context(), service.RedisConfig{Addr: envOr("VIGIL_TEST_REDIS_ADDR", "127.0.0.1:36379"), PoolSize: 20})
	if err != nil {
		t.Fatalf("Redis unreachable (start it with `make up`): %v", err)
	}
	defer rdb.Close()

	key := "it-key-" + sfx // a fresh key: a fresh cache namespace in the shared Redis
	em := emulator.New(emulator.Config{APIKey: key})
	srv := httptest.NewServer(em.Handler())
	defer srv.Close()

	env := map[string]string{
		"VIGIL_TOPIC_OBSERVED":          in,
		"VIGIL_TOPIC_ENRICHED":          out,
		"VIGIL_INTERNAL_NETS":           "10.0.0.0/8", // the emulator's addresses are in 198.18.0.0/15
		"VIGIL_ENRICH_OFFLINE_DIR":      t.TempDir(),
		"VIGIL_ENRICH_RETRY_ATTEMPTS":   "2",
		"VIGIL_ENRICH_RETRY_INITIAL":    "10ms",
		"VIGIL_ENRICH_RETRY_MAX":        "20ms",
		"VIGIL_ENRICH_BREAKER_FAILURES": "3",
		"VIGIL_ENRICH_BREAKER_OPEN_FOR": "1m",
	}
	for _, p := range []string{"CRIMINALIP", "INTERNETDB", "ABUSEIPDB", "GREYNOISE"} {
		pre := "VIGIL_ENRICH_" + p + "_"
		env[pre+"ENABLED"] = "true"
		env[pre+"BASE_URL"] = srv.URL
		env[pre+"API_KEY"] = key // InternetDB ignores it, but it isolates its cache keys too
		env[pre+"RATE"] = "0"
		env[pre+"QUOTAS"] = "none"
		env[pre+"TTL_HIT"] = "10m"
		env[pre+"TTL_NOT_FOUND"] = "10m"
		env[pre+"TIMEOUT"] = "2s"
	}
	cfg, err := config.Load(envconf.New(envconf.FromMap(env)))
	if err != nil {
		t.Fatal(err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	_ = io.Discard
	a, err := build(cfg, rdb, serde, noop.NewMeterProvider().Meter("t"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.close() }()
	if !a.store.Shared() {
		t.Fatal("cache not backed by Redis")
	}

	r, err := stream.NewRunner(stream.Config{Stage: "enrich", Group: "it-enrich-" + sfx, Topics: []string{cfg.InTopic}, Kafka: kc, MaxBatch: 100}, a.handler, serde, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("runner: %v", err)
		}
		_ = r.Close(context.Background())
	}()

	prod, err := kgo.NewClient(append(base, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(append(base, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	// Phase 1: 5 addresses of each profile, 420 observations.
	off := rand.IntN(4000)
	kindOf := map[string]emulator.Kind{}
	var ips []string
	for _, k := range emulator.Kinds {
		for i := range 5 {
			ip := emulator.IPOf(k, off+i)
			kindOf["ipv4:"+ip] = k
			ips = append(ips, ip)
		}
	}
	const n1 = 420
	want := produce(t, prod, in, serde, ips, n1)
	got := collect(t, cons, serde, n1, 60*time.Second)
	for k, n := range want {
		if len(got[k]) != n {
			t.Errorf("%s: %d enrichments, want %d", k, len(got[k]), n)
		}
		exp := expected(kindOf[k])
		for _, en := range got[k] {
			if st := statuses(en); fmt.Sprint(st) != fmt.Sprint(exp) {
				t.Fatalf("%s (%s): statuses %v, want %v", k, kindOf[k], st, exp)
			}
			if kindOf[k] == emulator.KindTor && !en.Exposure.Tor {
				t.Fatalf("%s: tor profile without the Tor flag: %+v", k, en.Exposure)
			}
		}
	}
	stats := em.Stats()
	for _, route := range []string{emulator.RouteCriminalIP, emulator.RouteInternetDB, emulator.RouteAbuseIPDB, emulator.RouteGreyNoise} {
		rs := stats.Routes[route]
		if len(rs.ByIndicator) != len(ips) {
			t.Errorf("%s: %d indicators called, want %d", route, len(rs.ByIndicator), len(ips))
		}
		if ratio := float64(rs.Calls) / float64(len(ips)); ratio != 1.0 {
			t.Errorf("%s: %.2f calls per unique indicator, want 1.0 (%d calls)", route, ratio, rs.Calls)
		}
	}
	if t.Failed() {
		return
	}

	// Phase 2: Criminal IP answers 503; new addresses flow on, enriched by the others.
	if err := em.SetFault(emulator.RouteCriminalIP, emulator.Fault{Mode: emulator.ModeUnavailable}); err != nil {
		t.Fatal(err)
	}
	var ips2 []string
	for _, k := range emulator.Kinds {
		for i := range 3 {
			ip := emulator.IPOf(k, off+5+i)
			kindOf["ipv4:"+ip] = k
			ips2 = append(ips2, ip)
		}
	}
	const n2 = 105
	want2 := produce(t, prod, in, serde, ips2, n2)
	got2 := collect(t, cons, serde, n2, 60*time.Second)
	var open, failed int
	for k, n := range want2 {
		if len(got2[k]) != n {
			t.Errorf("%s: %d enrichments after the fault, want %d", k, len(got2[k]), n)
		}
		exp := expected(kindOf[k])
		for _, en := range got2[k] {
			st := statuses(en)
			switch st["criminalip"] {
			case events.StatusBreakerOpen:
				open++
			case events.StatusError:
				failed++
			default:
				t.Fatalf("%s: criminalip %q while it is down", k, st["criminalip"])
			}
			for _, p := range []string{"internetdb", "abuseipdb", "greynoise", "offline"} {
				if st[p] != exp[p] {
					t.Fatalf("%s (%s): %s = %q, want %q (partial enrichment)", k, kindOf[k], p, st[p], exp[p])
				}
			}
		}
	}
	// The first failures open the breaker; a lookup whose retry then meets the open breaker ends breaker_open,
	// so "error" may or may not show up depending on timing.
	if open == 0 || open+failed != n2 {
		t.Errorf("criminalip while down: %d error, %d breaker_open of %d; want breaker_open once it opened", failed, open, n2)
	}
	if s := a.enr.Breakers()["criminalip"]; s != "open" {
		t.Errorf("criminalip breaker %q, want open", s)
	}
	if rs := em.Stats().Routes[emulator.RouteInternetDB]; rs.Calls != int64(len(ips)+len(ips2)) {
		t.Errorf("internetdb: %d calls for %d unique indicators", rs.Calls, len(ips)+len(ips2))
	}
}
