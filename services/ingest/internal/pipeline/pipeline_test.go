package pipeline

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/ingest/internal/extract"
)

// countAcct counts accounting outcomes.
type countAcct struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *countAcct) Record(_ context.Context, outcome, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[outcome+"/"+reason]++
}

func (c *countAcct) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

func newHandler(t testing.TB, collapse bool) (*Handler, *countAcct, *events.Serde) {
	t.Helper()
	reg, err := DefaultRegistry()
	if err != nil {
		t.Fatal(err)
	}
	serde, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	acct := &countAcct{m: map[string]int{}}
	h := New(Config{OutTopic: "indicators.observed", MaxRecordBytes: 4096, Collapse: collapse}, reg, extract.New(extract.Config{}), serde, acct, nil)
	return h, acct, serde
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

func TestHandleOutcomes(t *testing.T) {
	t.Parallel()
	h, acct, serde := newHandler(t, false)
	eve := `{"timestamp":"2017-01-30T15:12:27.008+0000","event_type":"alert","src_ip":"10.0.0.5","src_port":5555,"dest_ip":"185.220.101.4","dest_port":443,"proto":"TCP","alert":{"action":"blocked","signature":"ET TOR Known Tor Relay","severity":1}}`
	cases := []struct {
		name      string
		value     string
		wantOut   int
		wantClass string // dead-letter class, "" for none
	}{
		{"suricata alert", eve, 1, ""},
		{"unknown format", "hello world, not a log", 0, "unknown_format"},
		{"truncated json", `{"timestamp":"2017-01-30T15:12:27.008+0000","event_type":"alert","src_ip":"10.0.0.5"`, 0, "malformed"},
		{"invalid utf8", "\xff\xfe\x00garbage", 0, "invalid_utf8"},
		{"too large", string(make([]byte, 5000)), 0, "too_large"},
		{"internal only", `{"timestamp":"2017-01-30T15:12:27.008+0000","event_type":"flow","src_ip":"10.0.0.5","src_port":5555,"dest_ip":"10.0.0.6","dest_port":443,"proto":"TCP"}`, 0, ""},
	}
	recs := make([]*kgo.Record, len(cases))
	for i, c := range cases {
		recs[i] = &kgo.Record{Topic: "raw.test", Partition: 0, Offset: int64(i), Value: []byte(c.value)}
	}
	res, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(res[i].Outputs) != c.wantOut {
				t.Fatalf("outputs = %d, want %d", len(res[i].Outputs), c.wantOut)
			}
			var pe *stream.PermanentError
			gotClass := ""
			if errors.As(res[i].Err, &pe) {
				gotClass = pe.Class
			}
			if gotClass != c.wantClass {
				t.Fatalf("dead-letter class = %q (err %v), want %q", gotClass, res[i].Err, c.wantClass)
			}
		})
	}
	o, err := serde.DecodeObservation(t.Context(), res[0].Outputs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if string(res[0].Outputs[0].Key) != "ipv4:185.220.101.4" || o.Sighting.AssetIP != "10.0.0.5" || o.Sighting.Action != events.ActionBlocked ||
		o.Sighting.Direction != events.DirectionOutbound || o.Producer.Offset != 0 || o.Producer.Format != "suricata_eve" {
		t.Fatalf("unexpected observation %+v", o)
	}
	if acct.total() != len(cases) {
		t.Fatalf("accounting counted %d outcomes for %d records: %v", acct.total(), len(cases), acct.m)
	}
}

// TestSamplesAccountingAndNoInternal runs every bundled line-oriented sample through the handler:
// every record is accounted for exactly once and no internal address is ever an indicator.
func TestSamplesAccountingAndNoInternal(t *testing.T) {
	t.Parallel()
	h, acct, serde := newHandler(t, true)
	nets := indicator.DefaultNets()
	files, _ := filepath.Glob("../../testdata/*/*/*")
	var recs []*kgo.Record
	for _, f := range files {
		if filepath.Ext(f) == ".md" || filepath.Ext(f) == ".jsonl" {
			continue
		}
		for i, l := range readLines(t, f) {
			recs = append(recs, &kgo.Record{Topic: "raw." + filepath.Base(filepath.Dir(f)), Offset: int64(i), Value: l})
		}
	}
	if len(recs) < 1000 {
		t.Fatalf("only %d sample records found", len(recs))
	}
	res, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if acct.total() != len(recs) {
		t.Fatalf("accounting: %d outcomes for %d records", acct.total(), len(recs))
	}
	outs := 0
	for _, r := range res {
		for _, o := range r.Outputs {
			outs++
			obs, err := serde.DecodeObservation(t.Context(), o.Value)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Indicator.Type == events.TypeIPv4 || obs.Indicator.Type == events.TypeIPv6 {
				if nets.Contains(netip.MustParseAddr(obs.Indicator.Value)) {
					t.Fatalf("internal address emitted as indicator: %s", obs.Indicator.Value)
				}
			}
			if string(o.Key) != obs.Indicator.Key() {
				t.Fatalf("record key %q != indicator key %q", o.Key, obs.Indicator.Key())
			}
		}
	}
	if outs == 0 {
		t.Fatal("no observations from the samples")
	}
}

func BenchmarkHandleSuricata(b *testing.B) {
	h, _, _ := newHandler(b, true)
	lines := readLines(b, "../../testdata/json/suricata_eve/surevego_eve.json")
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Topic: "raw.suricata", Offset: int64(i), Value: l}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Handle(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// Observations are collapsed within a batch only: the handler's reused buffer carries nothing
// from one batch into the next.
func TestHandleCollapsePerBatch(t *testing.T) {
	t.Parallel()
	h, _, serde := newHandler(t, true)
	alert := func(dst string) []byte {
		return []byte(`{"timestamp":"2017-01-30T15:12:27.008+0000","event_type":"alert","src_ip":"10.0.0.5","src_port":5555,"dest_ip":"` +
			dst + `","dest_port":443,"proto":"TCP","alert":{"action":"blocked","signature":"ET TOR Known Tor Relay","severity":1}}`)
	}
	batches := []struct {
		dsts      []string
		wantKeys  []string
		wantCount []int32
	}{
		{[]string{"185.220.101.4", "185.220.101.4", "185.220.101.9"}, []string{"ipv4:185.220.101.4", "ipv4:185.220.101.9"}, []int32{2, 1}},
		{[]string{"185.220.101.7"}, []string{"ipv4:185.220.101.7"}, []int32{1}},
		{[]string{"185.220.101.4"}, []string{"ipv4:185.220.101.4"}, []int32{1}},
	}
	for bi, b := range batches {
		recs := make([]*kgo.Record, len(b.dsts))
		for i, d := range b.dsts {
			recs[i] = &kgo.Record{Topic: "raw.suricata", Offset: int64(i), Value: alert(d)}
		}
		res, err := h.Handle(t.Context(), recs)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		var counts []int32
		for _, r := range res {
			for _, out := range r.Outputs {
				o, err := serde.DecodeObservation(t.Context(), out.Value)
				if err != nil {
					t.Fatal(err)
				}
				if string(out.Key) != o.Indicator.Key() {
					t.Fatalf("batch %d: record key %q, indicator %q", bi, out.Key, o.Indicator.Key())
				}
				keys = append(keys, string(out.Key))
				counts = append(counts, o.Sighting.Count)
			}
		}
		if !slices.Equal(keys, b.wantKeys) || !slices.Equal(counts, b.wantCount) {
			t.Fatalf("batch %d: keys %v counts %v, want %v %v", bi, keys, counts, b.wantKeys, b.wantCount)
		}
	}
}
