package pipeline

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestMetricAccounting(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	a, err := NewMetricAccounting(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.Record(t.Context(), OutcomeObservations, "")
	}
	a.Record(t.Context(), OutcomeNone, NoneUnsupported)
	a.Record(t.Context(), OutcomeDeadLettered, "malformed")
	a.Record(t.Context(), OutcomeNone, NoneUnsupported)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "vigil_ingest_records" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				o, _ := dp.Attributes.Value("outcome")
				r, _ := dp.Attributes.Value("reason")
				got[[2]string{o.AsString(), r.AsString()}] = dp.Value
			}
		}
	}
	want := map[[2]string]int64{{OutcomeObservations, ""}: 3, {OutcomeNone, NoneUnsupported}: 2, {OutcomeDeadLettered, "malformed"}: 1}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%v = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
