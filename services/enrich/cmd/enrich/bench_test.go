package main

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/enrich/internal/config"
	"github.com/vigilsec/vigil/services/enrich/internal/emulator"
)

// benchApp wires the real stage (all four HTTP providers against an in-process emulator, the OTel SDK
// metrics) the way main does. rdb may be nil.
func benchApp(b *testing.B, rdb redis.UniversalClient, l1 int) (*app, *events.Serde) {
	b.Helper()
	srv := httptest.NewServer(emulator.New(emulator.Config{}).Handler())
	b.Cleanup(srv.Close)
	env := map[string]string{"VIGIL_ENRICH_OFFLINE_DIR": b.TempDir(), "VIGIL_ENRICH_L1_SIZE": fmt.Sprint(l1)}
	for _, p := range []string{"CRIMINALIP", "INTERNETDB", "ABUSEIPDB", "GREYNOISE"} {
		pre := "VIGIL_ENRICH_" + p + "_"
		for k, v := range map[string]string{"ENABLED": "true", "BASE_URL": srv.URL, "API_KEY": emulator.DefaultAPIKey,
			"RATE": "0", "QUOTAS": "none", "MAX_CONCURRENT": "8"} {
			env[pre+k] = v
		}
	}
	cfg, err := config.Load(envconf.New(envconf.FromMap(env)))
	if err != nil {
		b.Fatal(err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		b.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	a, err := build(cfg, rdb, serde, mp.Meter("bench"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.close() })
	return a, serde
}

// benchRecords encodes n observations of distinct public IPs starting at 45.0.0.0 + first.
func benchRecords(b *testing.B, serde *events.Serde, first, n int) []*kgo.Record {
	b.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := first + i
		o := events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: fmt.Sprintf("45.%d.%d.%d", v>>16&255, v>>8&255, v&255)}}
		buf, err := serde.EncodeObservation(&o)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &kgo.Record{Value: buf, Offset: int64(i)}
	}
	return recs
}

func handle(b *testing.B, a *app, recs []*kgo.Record) {
	res, err := a.handler.Handle(b.Context(), recs)
	if err != nil || len(res) != len(recs) || res[0].Err != nil {
		b.Fatalf("handle: %v", err)
	}
}

// BenchmarkStageWarm is the warm path of the full stage: 500-record batches of distinct IPs, every answer in
// the in-process cache. Reports CPU-bound records/s of the handler.
func BenchmarkStageWarm(b *testing.B) {
	a, serde := benchApp(b, nil, 50_000)
	recs := benchRecords(b, serde, 0, 500)
	handle(b, a, recs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		handle(b, a, recs)
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkStageCold enriches 500 never-seen IPs per batch: four emulated HTTP calls per IP (the emulator
// runs in this process, so its CPU counts too).
func BenchmarkStageCold(b *testing.B) {
	a, serde := benchApp(b, nil, 50_000)
	var batches [][]*kgo.Record
	for i := range 40 {
		batches = append(batches, benchRecords(b, serde, i*500, 500))
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if n == len(batches) {
			b.Fatal("out of cold batches: run with -benchtime=Nx, N <= 40")
		}
		handle(b, a, batches[n])
		n++
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
}
