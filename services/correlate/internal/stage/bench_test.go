package stage

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// BenchmarkStage measures Handle (decode, correlate on the in-memory store
// with every shipped warninglist, encode) plus the ack of the previous
// batch's verdicts, on 500-record batches over 2,000 indicators.
func BenchmarkStage(b *testing.B) {
	s := serde(b)
	st, err := New(testCfg, realCorrelator(b), s, nil, quiet())
	if err != nil {
		b.Fatal(err)
	}
	const batch, indicators = 500, 2000
	exposures := []events.Exposure{hostile, {InboundScore: 3}, {Hosting: true, Cloud: true, InboundScore: 2}}
	var off int64
	next := func() []*kgo.Record {
		recs := make([]*kgo.Record, batch)
		for i := range recs {
			off++
			n := off % indicators
			ip := fmt.Sprintf("203.0.%d.%d", n/250, n%250)
			if n%10 == 0 {
				ip = "8.8.8.8" // on a shipped list
			}
			e := enrichment(ip, fmt.Sprintf("10.1.0.%d", off%50), "raw.bench", off, exposures[n%3])
			recs[i] = encRecord(b, s, topicIn, off, e)
		}
		return recs
	}
	ctx := b.Context()
	var records, verdicts int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		recs := next()
		b.StartTimer()
		res, err := st.Handle(ctx, recs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			verdicts += len(r.Outputs)
		}
		produce(st, res, nil)
		records += len(recs)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(verdicts)/float64(max(records, 1)), "verdicts/record")
}
