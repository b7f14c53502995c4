package stage

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

// BenchmarkStage measures flush windows of 1,000 verdicts (for 250 indicators, 4 verdicts each)
// through the stage and the writer against the in-process emulator, and reports verdicts/s and
// ThreatQ HTTP calls per 1,000 verdicts. "changed": every window changes every indicator's
// priority, so all 250 are really written (worst case). "unchanged": the same window again, so
// every indicator is skipped by its fingerprint (steady state of a repeating stream).
func BenchmarkStage(b *testing.B) {
	b.Run("changed", func(b *testing.B) { benchStage(b, 11) })
	b.Run("unchanged", func(b *testing.B) { benchStage(b, 1) })
}

func benchStage(b *testing.B, variants int) {
	const window, distinct = 1000, 250
	h := newHarness(b, nil)
	batches := make([][]*kgo.Record, variants) // priorities 0..variants-1 cycle
	for p := range batches {
		vs := make([]events.Verdict, window)
		for i := range vs {
			vs[i] = verdict(fmt.Sprintf("198.18.%d.%d", (i%distinct)/250, (i%distinct)%250+1), int32(p))
			vs[i].DecidedAt = t0.Add(time.Duration(i) * time.Millisecond)
		}
		batches[p] = h.records(b, vs...)
	}
	if _, err := h.st.Handle(b.Context(), batches[len(batches)-1]); err != nil { // create the indicators
		b.Fatal(err)
	}
	callsBefore := totalCalls(h)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		res, err := h.st.Handle(b.Context(), batches[n%len(batches)])
		if err != nil || len(res) != window {
			b.Fatalf("Handle: %d results, %v", len(res), err)
		}
		n++
	}
	b.StopTimer()
	calls := totalCalls(h) - callsBefore
	if ind, _ := h.emu.Lookup("IP Address", "198.18.0.1"); len(ind.Attr(writer.AttrPriority)) != 1 {
		b.Fatalf("attribute values piled up: %v", ind.Attr(writer.AttrPriority))
	}
	b.ReportMetric(float64(n*window)/b.Elapsed().Seconds(), "verdicts/s")
	b.ReportMetric(float64(calls)*1000/float64(n*window), "tq_calls/1k_verdicts")
}

func totalCalls(h *harness) int {
	n := 0
	for _, c := range h.emu.Stats().Calls {
		n += c
	}
	return n
}
