package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

func permanentClass(err error) string {
	var pe *stream.PermanentError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}

func TestNewRejectsMissing(t *testing.T) {
	t.Parallel()
	s := serde(t)
	cases := []struct {
		name string
		cfg  Config
		corr Correlator
	}{
		{"no in topic", Config{FeedbackTopic: "f", VerdictTopic: "v"}, &fakeCorrelator{}},
		{"no feedback topic", Config{EnrichedTopic: "e", VerdictTopic: "v"}, &fakeCorrelator{}},
		{"no out topic", Config{EnrichedTopic: "e", FeedbackTopic: "f"}, &fakeCorrelator{}},
		{"no correlator", testCfg, nil},
	}
	for _, tc := range cases {
		if _, err := New(tc.cfg, tc.corr, s, nil, quiet()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
		}
	}
}

// TestDispatch checks topic dispatch, decode errors and which input carries each verdict.
func TestDispatch(t *testing.T) {
	t.Parallel()
	s := serde(t)
	fc := &fakeCorrelator{verdicts: oneVerdictPerKey}
	st, err := New(testCfg, fc, s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a1 := enrichment("203.0.113.7", "10.0.0.1", "raw.fw", 1, hostile)
	b := enrichment("198.51.100.9", "10.0.0.2", "raw.fw", 2, hostile)
	a2 := enrichment("203.0.113.7", "10.0.0.3", "raw.fw", 3, hostile)
	fb := events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "192.0.2.5"}, Kind: "status_changed", NewStatus: "Whitelisted", NewScore: -1}
	recs := []*kgo.Record{
		encRecord(t, s, topicIn, 10, a1),                                           // 0: a, not last
		encRecord(t, s, topicIn, 11, b),                                            // 1: b, last of b
		{Topic: topicIn, Key: []byte("ipv4:192.0.2.1"), Value: []byte("not avro")}, // 2: decode error
		fbRecord(t, s, fb),                                                         // 3: feedback
		encRecord(t, s, topicIn, 12, a2),                                           // 4: a, last of a
		{Topic: topicFB, Value: []byte{0xc3, 0x01, 1, 2}},                          // 5: bad feedback
		{Topic: "elsewhere", Value: []byte("x")},                                   // 6: unknown topic
	}
	res, err := st.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(recs) {
		t.Fatalf("%d results for %d records", len(res), len(recs))
	}
	if len(fc.processed) != 1 || len(fc.processed[0]) != 3 {
		t.Fatalf("Process calls = %d (%v), want one with 3 enrichments", len(fc.processed), fc.processed)
	}
	if got := fc.processed[0][2].Observation.Producer.Offset; got != 3 {
		t.Errorf("third enrichment has raw offset %d, want 3 (input order kept)", got)
	}
	if len(fc.feedback) != 1 || len(fc.feedback[0]) != 1 || fc.feedback[0][0].Feedback.Indicator.Value != "192.0.2.5" || fc.feedback[0][0].Topic != topicFB || fc.feedback[0][0].Offset != recs[3].Offset {
		t.Errorf("feedback calls = %+v", fc.feedback)
	}
	wantOut := map[int]string{1: "ipv4:198.51.100.9", 4: "ipv4:203.0.113.7"}
	for i, r := range res {
		switch {
		case i == 2 || i == 5:
			if c := permanentClass(r.Err); c != ClassDecode {
				t.Errorf("record %d: err %v (class %q), want permanent %q", i, r.Err, c, ClassDecode)
			}
		case i == 6:
			if c := permanentClass(r.Err); c != ClassTopic {
				t.Errorf("record %d: err %v, want permanent %q", i, r.Err, ClassTopic)
			}
		case r.Err != nil:
			t.Errorf("record %d: unexpected err %v", i, r.Err)
		}
		key, want := wantOut[i]
		if !want {
			if len(r.Outputs) != 0 {
				t.Errorf("record %d: %d outputs, want filtered", i, len(r.Outputs))
			}
			continue
		}
		if len(r.Outputs) != 1 {
			t.Fatalf("record %d: %d outputs, want 1", i, len(r.Outputs))
		}
		o := r.Outputs[0]
		if o.Topic != topicOut || string(o.Key) != key {
			t.Errorf("record %d: output %s/%s, want %s/%s", i, o.Topic, o.Key, topicOut, key)
		}
		v, err := s.DecodeVerdict(t.Context(), o.Value)
		if err != nil {
			t.Fatal(err)
		}
		if v.Indicator.Key() != key || v.Action != events.VerdictBlock {
			t.Errorf("record %d: verdict %s %s", i, v.Indicator.Key(), v.Action)
		}
	}
}

// TestTwoVerdictsOneKey: every verdict of an indicator rides on its last input record, in order.
func TestTwoVerdictsOneKey(t *testing.T) {
	t.Parallel()
	s := serde(t)
	fc := &fakeCorrelator{verdicts: func(batch []events.Enrichment) []events.Verdict {
		return []events.Verdict{
			{Indicator: batch[0].Observation.Indicator, Priority: 4, Action: events.VerdictAnnotate},
			{Indicator: batch[0].Observation.Indicator, Priority: 9, Action: events.VerdictBlock},
		}
	}}
	st, _ := New(testCfg, fc, s, nil, quiet())
	e := enrichment("203.0.113.7", "10.0.0.1", "raw.fw", 1, hostile)
	res, err := st.Handle(t.Context(), []*kgo.Record{encRecord(t, s, topicIn, 0, e), encRecord(t, s, topicIn, 1, e)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Outputs) != 0 || len(res[1].Outputs) != 2 {
		t.Fatalf("outputs per record = %d, %d; want 0, 2", len(res[0].Outputs), len(res[1].Outputs))
	}
	v, _ := s.DecodeVerdict(t.Context(), res[1].Outputs[1].Value)
	if v.Priority != 9 {
		t.Errorf("second output priority %d, want 9 (order kept)", v.Priority)
	}
}

// TestAckAfterProduce: only verdicts Kafka acknowledged are acked, at the next Handle.
func TestAckAfterProduce(t *testing.T) {
	t.Parallel()
	s := serde(t)
	fc := &fakeCorrelator{verdicts: oneVerdictPerKey}
	st, _ := New(testCfg, fc, s, nil, quiet())
	ctx := t.Context()
	recs := []*kgo.Record{
		encRecord(t, s, topicIn, 0, enrichment("203.0.113.1", "10.0.0.1", "raw.fw", 1, hostile)),
		encRecord(t, s, topicIn, 1, enrichment("203.0.113.2", "10.0.0.1", "raw.fw", 2, hostile)),
		encRecord(t, s, topicIn, 2, enrichment("203.0.113.3", "10.0.0.1", "raw.fw", 3, hostile)),
	}
	res, err := st.Handle(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.acked) != 0 {
		t.Fatalf("acked before produce: %v", fc.acked)
	}
	st.OnProduceRecordUnbuffered(&kgo.Record{Topic: "vigil.dlq"}, nil) // someone else's record: ignored
	produce(st, res, map[string]bool{"ipv4:203.0.113.2": true})
	if _, err := st.Handle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(fc.acked) != 1 {
		t.Fatalf("Ack calls = %d, want 1", len(fc.acked))
	}
	var keys []string
	for _, v := range fc.acked[0] {
		keys = append(keys, v.Indicator.Key())
	}
	if !slices.Equal(keys, []string{"ipv4:203.0.113.1", "ipv4:203.0.113.3"}) {
		t.Errorf("acked %v, want the two acknowledged verdicts", keys)
	}

	// Verdicts whose produce has no answer yet are not acked.
	if _, err := st.Handle(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Handle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(fc.acked) != 1 {
		t.Errorf("Ack calls = %d with no produce answer, want still 1", len(fc.acked))
	}
}

func TestBatchErrors(t *testing.T) {
	t.Parallel()
	s := serde(t)
	ctx := t.Context()
	rec := encRecord(t, s, topicIn, 0, enrichment("203.0.113.1", "10.0.0.1", "raw.fw", 1, hostile))

	down := errors.New("redis down")
	fc := &fakeCorrelator{processErr: down}
	st, _ := New(testCfg, fc, s, nil, quiet())
	if _, err := st.Handle(ctx, []*kgo.Record{rec}); !errors.Is(err, down) {
		t.Errorf("Process failure: err = %v, want batch error wrapping it", err)
	}

	// An Ack failure fails the batch and keeps the confirmed verdicts for the next try.
	fc = &fakeCorrelator{verdicts: oneVerdictPerKey}
	st, _ = New(testCfg, fc, s, nil, quiet())
	res, err := st.Handle(ctx, []*kgo.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	produce(st, res, nil)
	fc.ackErr = down
	if _, err := st.Handle(ctx, nil); !errors.Is(err, down) {
		t.Fatalf("Ack failure: err = %v", err)
	}
	fc.ackErr = nil
	if _, err := st.Handle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(fc.acked) != 1 || len(fc.acked[0]) != 1 {
		t.Errorf("acked after retry = %v, want the kept verdict", fc.acked)
	}
}

func TestFeedbackErrors(t *testing.T) {
	t.Parallel()
	s := serde(t)
	ctx := t.Context()
	good := fbRecord(t, s, events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "192.0.2.5"}, Kind: "status_changed"})
	bad := fbRecord(t, s, events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "nope"}, Kind: "status_changed"})

	fc := &fakeCorrelator{fbErr: &correlator.FeedbackError{Indexes: []int{1}, Errs: []error{errors.New("cidr")}}}
	st, _ := New(testCfg, fc, s, nil, quiet())
	res, err := st.Handle(ctx, []*kgo.Record{good, bad})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || permanentClass(res[1].Err) != ClassFeedback {
		t.Errorf("results = %+v, want ok and permanent %q", res, ClassFeedback)
	}

	fc = &fakeCorrelator{fbErr: context.Canceled}
	st, _ = New(testCfg, fc, s, nil, quiet())
	if _, err := st.Handle(ctx, []*kgo.Record{good}); !errors.Is(err, context.Canceled) {
		t.Errorf("transient feedback error: err = %v, want batch error", err)
	}
}

// TestRealCorrelator runs the production correlator behind the stage: a
// benign public resolver is suppressed, a hostile address blocked, and
// analyst feedback turns a block into a suppress.
func TestRealCorrelator(t *testing.T) {
	t.Parallel()
	s := serde(t)
	c := realCorrelator(t)
	st, _ := New(testCfg, c, s, nil, quiet())
	ctx := t.Context()
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs,
			encRecord(t, s, topicIn, int64(2*i), enrichment("8.8.8.8", "10.0.0.1", "raw.fw", int64(2*i), hostile)),
			encRecord(t, s, topicIn, int64(2*i+1), enrichment("185.220.101.1", "10.0.0.1", "raw.fw", int64(2*i+1), hostile)))
	}
	res, err := st.Handle(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	final := map[string]events.Verdict{}
	for _, r := range res {
		for _, o := range r.Outputs {
			v, err := s.DecodeVerdict(ctx, o.Value)
			if err != nil {
				t.Fatal(err)
			}
			final[v.Indicator.Value] = v
		}
	}
	if v := final["8.8.8.8"]; v.Action != events.VerdictSuppress {
		t.Errorf("8.8.8.8 = %q, want suppress", v.Action)
	}
	if v := final["185.220.101.1"]; v.Action != events.VerdictBlock {
		t.Errorf("185.220.101.1 = %q (priority %d), want block", v.Action, v.Priority)
	}
	produce(st, res, nil)
	fb := fbRecord(t, s, events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "185.220.101.1"}, Kind: "status_changed",
		NewStatus: "Whitelisted", VigilAction: events.VerdictBlock, NewScore: -1})
	if _, err := st.Handle(ctx, []*kgo.Record{fb}); err != nil {
		t.Fatal(err)
	}
	// The same feedback record delivered again changes nothing.
	if _, err := st.Handle(ctx, []*kgo.Record{fb}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Stats(ctx); err != nil || st.FalsePositives[events.VerdictBlock] != 1 || st.Emitted[events.VerdictBlock] != 1 || st.Feedback != 1 {
		t.Errorf("stats = %+v, %v; want 1 block emitted (acked), 1 false positive, 1 feedback", st, err)
	}
	res, err = st.Handle(ctx, []*kgo.Record{encRecord(t, s, topicIn, 9, enrichment("185.220.101.1", "10.0.0.1", "raw.fw", 9, hostile))})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Outputs) != 1 {
		t.Fatalf("after whitelisting: %d outputs, want a new verdict", len(res[0].Outputs))
	}
	if v, _ := s.DecodeVerdict(ctx, res[0].Outputs[0].Value); v.Action != events.VerdictSuppress {
		t.Errorf("after whitelisting: %q, want suppress", v.Action)
	}
}

func TestSuppressingList(t *testing.T) {
	t.Parallel()
	cases := []struct {
		reasons []events.Reason
		want    string
	}{
		{[]events.Reason{{Code: policy.CodeWarninglist, Text: "warninglist=vpn-ipv4 (evidence)"}, {Code: policy.CodeWarninglist, Text: "warninglist=public-dns-v4 (suppress)"}}, "public-dns-v4"},
		{[]events.Reason{{Code: policy.CodeWarninglist, Text: "warninglist=amazon-aws (cap)"}}, SuppressedByLevel},
		{nil, SuppressedByLevel},
	}
	for _, tc := range cases {
		if got := SuppressingList(&events.Verdict{Reasons: tc.reasons}); got != tc.want {
			t.Errorf("SuppressingList(%v) = %q, want %q", tc.reasons, got, tc.want)
		}
	}
}

// gather returns the value of the exported metric family name with labels.
func gather(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// TestMetrics checks the exported Prometheus names and values.
func TestMetrics(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.Setup(telemetry.Config{Service: "correlate-test", LogOutput: os.Stderr, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	s := serde(t)
	c := realCorrelator(t)
	m, err := NewMetrics(tel.Meter("vigil/correlate"), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	st, _ := New(testCfg, c, s, m, quiet())
	ctx := t.Context()
	res, err := st.Handle(ctx, []*kgo.Record{
		encRecord(t, s, topicIn, 0, enrichment("8.8.8.8", "10.0.0.1", "raw.m", 1, hostile)),
		encRecord(t, s, topicIn, 1, enrichment("185.220.101.1", "10.0.0.1", "raw.m", 2, hostile)),
	})
	if err != nil {
		t.Fatal(err)
	}
	produce(st, res, nil)
	fb := fbRecord(t, s, events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "185.220.101.1"}, Kind: "status_changed",
		NewStatus: "Whitelisted", VigilAction: events.VerdictBlock, NewScore: -1})
	if _, err := st.Handle(ctx, []*kgo.Record{fb}); err != nil {
		t.Fatal(err)
	}
	r := &Reloader{PolicyFile: "../../testdata/policy.bad.yaml", Policy: c, Metrics: m, Log: quiet()}
	if err := r.Reload(ctx); err == nil {
		t.Fatal("bad policy accepted")
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vigil_correlate_verdicts_total", map[string]string{"action": "block", "level": "critical"}, 1},
		{"vigil_correlate_verdicts_total", map[string]string{"action": "suppress", "level": "info"}, 1},
		{"vigil_correlate_suppressed_total", map[string]string{"list": "public-dns-v4"}, 1},
		{"vigil_correlate_exposure_changed_total", nil, 1}, // the block; the suppressed resolver stays 0 either way
		{"vigil_correlate_false_positives_total", map[string]string{"action": "block"}, 1},
		{"vigil_correlate_fp_rate", map[string]string{"action": "block"}, 1},
		{"vigil_correlate_fp_rate", map[string]string{"action": "suppress"}, 0},
		{"vigil_correlate_policy_version", map[string]string{"version": c.Policy().Version}, 1},
		{"vigil_correlate_policy_reloads_total", map[string]string{"result": "rejected"}, 1},
	}
	for _, ck := range checks {
		got, ok := gather(t, tel.Registry, ck.name, ck.labels)
		if !ok || got != ck.want {
			t.Errorf("%s%v = %v (found %v), want %v", ck.name, ck.labels, got, ok, ck.want)
		}
	}
}

// TestReloader: a good policy and list file are swapped in, bad ones rejected
// with the old ones kept and the error naming file, line and field.
func TestReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	polFile := filepath.Join(dir, "policy.yaml")
	listFile := filepath.Join(dir, "allow.yaml")
	copyFile(t, "../../testdata/policy.strict.yaml", polFile)
	writeFile(t, listFile, "lists:\n  - name: lab\n    entries:\n      - {value: 192.0.2.0/24, type: cidr, reason: lab}\n")

	p, _ := policy.Default()
	holder := allowlist.NewHolder(nil)
	st, _ := state.NewMemory(state.Config{})
	c, err := correlator.New(correlator.NewPolicyHolder(p), holder, nil, st, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r := &Reloader{PolicyFile: polFile, Policy: c, Lists: holder, ListConfig: allowlist.Config{LocalFiles: []string{listFile}}, Log: quiet()}
	ind := events.Indicator{Type: events.TypeIPv4, Value: "192.0.2.7"}
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := c.Policy().Version; v != "2026.05.2-strict" {
		t.Errorf("policy after good reload = %s", v)
	}
	if _, ok := holder.Match(ind); !ok {
		t.Error("lab list not installed")
	}

	copyFile(t, "../../testdata/policy.bad.yaml", polFile)
	writeFile(t, listFile, "lists:\n  - name: lab\n    entries:\n      - {value: 999.0.0.0/8, type: cidr}\n")
	err = r.Reload(t.Context())
	if !errors.Is(err, policy.ErrInvalidPolicy) {
		t.Fatalf("bad policy: err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, polFile+":4: levels.1.action") || !strings.Contains(msg, "allow-lists rejected") {
		t.Errorf("error %q does not name file:line: field and the list problem", msg)
	}
	if v := c.Policy().Version; v != "2026.05.2-strict" {
		t.Errorf("policy after bad reload = %s, want the previous one kept", v)
	}
	if _, ok := holder.Match(ind); !ok {
		t.Error("previous lists dropped by a bad reload")
	}
}

// TestReloaderRun: a signal triggers a reload; ctx stops the loop.
func TestReloaderRun(t *testing.T) {
	t.Parallel()
	pr := &countingReloader{done: make(chan struct{}, 1)}
	r := &Reloader{PolicyFile: "x.yaml", Policy: pr, Log: quiet()}
	sig := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, sig) }()
	sig <- os.Interrupt
	<-pr.done
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if pr.path != "x.yaml" {
		t.Errorf("reloaded %q", pr.path)
	}
}

type countingReloader struct {
	path string
	done chan struct{}
}

func (c *countingReloader) Reload(path string) error {
	c.path = path
	c.done <- struct{}{}
	return nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFeedbackBeforeEnrichment: an analyst decision and an enrichment of the
// same indicator in one batch: the enrichment already meets the decision.
func TestFeedbackBeforeEnrichment(t *testing.T) {
	t.Parallel()
	s := serde(t)
	c := realCorrelator(t)
	st, _ := New(testCfg, c, s, nil, quiet())
	ctx := t.Context()
	fb := fbRecord(t, s, events.Feedback{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "185.220.101.2"}, Kind: "status_changed",
		NewStatus: "Whitelisted", Analyst: "jdoe", Reason: "red team exercise", NewScore: -1})
	enc := encRecord(t, s, topicIn, 1, enrichment("185.220.101.2", "10.0.0.1", "raw.fw", 1, hostile))
	res, err := st.Handle(ctx, []*kgo.Record{enc, fb})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Outputs) != 1 {
		t.Fatalf("%d outputs, want one verdict", len(res[0].Outputs))
	}
	v, err := s.DecodeVerdict(ctx, res[0].Outputs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if v.Action != events.VerdictSuppress {
		t.Errorf("verdict = %q, want suppress (the analyst's decision came in the same batch)", v.Action)
	}
}

// TestAckPipelined: the runner handles the next batch before the previous
// batch's verdicts are acknowledged; those verdicts are acked when Kafka
// answers, at a later Handle.
func TestAckPipelined(t *testing.T) {
	t.Parallel()
	s := serde(t)
	fc := &fakeCorrelator{verdicts: oneVerdictPerKey}
	st, _ := New(testCfg, fc, s, nil, quiet())
	ctx := t.Context()
	first, err := st.Handle(ctx, []*kgo.Record{encRecord(t, s, topicIn, 0, enrichment("203.0.113.21", "10.0.0.1", "raw.fw", 1, hostile))})
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.Handle(ctx, []*kgo.Record{encRecord(t, s, topicIn, 1, enrichment("203.0.113.22", "10.0.0.1", "raw.fw", 2, hostile))})
	if err != nil {
		t.Fatal(err)
	}
	produce(st, first, nil) // the first batch's answer arrives after the second Handle
	produce(st, second, nil)
	if _, err := st.Handle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, vs := range fc.acked {
		for _, v := range vs {
			keys = append(keys, v.Indicator.Key())
		}
	}
	if !slices.Equal(keys, []string{"ipv4:203.0.113.21", "ipv4:203.0.113.22"}) {
		t.Errorf("acked %v, want both batches' verdicts", keys)
	}
}

// TestShards checks that a batch correlated in parallel parts gives the
// verdicts of the serial path, on the same records, and that parts never
// split an indicator or its acked verdicts.
func TestShards(t *testing.T) {
	t.Parallel()
	s := serde(t)
	exposures := []events.Exposure{hostile, {InboundScore: 3}, {Hosting: true, Cloud: true, InboundScore: 2}, {}}
	batches := func() [][]*kgo.Record {
		var out [][]*kgo.Record
		off := int64(0)
		for range 3 {
			var recs []*kgo.Record
			for range 400 {
				n := off % 150
				ip := fmt.Sprintf("198.51.100.%d", n)
				if n%15 == 0 {
					ip = "8.8.8.8" // on a shipped list
				}
				recs = append(recs, encRecord(t, s, topicIn, off, enrichment(ip, fmt.Sprintf("10.0.0.%d", off%7), "raw.fw", off, exposures[n%4])))
				off++
			}
			out = append(out, recs)
		}
		return out
	}
	type got struct {
		rec                int
		key, action, level string
		priority           int32
		sightings, prev    int64
	}
	run := func(shards int) [][]got {
		cfg := testCfg
		cfg.Shards = shards
		st, err := New(cfg, realCorrelator(t), s, nil, quiet())
		if err != nil {
			t.Fatal(err)
		}
		var out [][]got
		for _, recs := range batches() {
			res, err := st.Handle(t.Context(), recs)
			if err != nil {
				t.Fatal(err)
			}
			var g []got
			for i, r := range res {
				if r.Err != nil {
					t.Fatalf("record %d: %v", i, r.Err)
				}
				for _, o := range r.Outputs {
					v, err := s.DecodeVerdict(t.Context(), o.Value)
					if err != nil {
						t.Fatal(err)
					}
					g = append(g, got{i, string(o.Key), v.Action, v.Level, v.Priority, v.Sightings.Count, int64(v.PreviousPriority)})
				}
			}
			produce(st, res, nil) // acked with the next batch
			out = append(out, g)
		}
		return out
	}
	want := run(1)
	if len(want[0]) == 0 || len(want[1]) == 0 {
		t.Fatalf("serial path gave no verdicts in a batch: %d, %d", len(want[0]), len(want[1]))
	}
	for _, shards := range []int{2, 4, 8} {
		if g := run(shards); !reflect.DeepEqual(g, want) {
			t.Errorf("shards %d: verdicts differ from the serial path\n got %v\nwant %v", shards, g, want)
		}
	}

	// Parts keep an indicator's records and acked verdicts together.
	fc := &fakeCorrelator{verdicts: oneVerdictPerKey}
	cfg := testCfg
	cfg.Shards = 4
	st, err := New(cfg, fc, s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range batches()[:2] {
		res, err := st.Handle(t.Context(), recs)
		if err != nil {
			t.Fatal(err)
		}
		produce(st, res, nil)
	}
	if len(fc.processed) != 8 {
		t.Fatalf("correlator calls with records = %d, want 4 per batch", len(fc.processed))
	}
	for _, batch := range fc.processed {
		first := batch[0].Observation.Indicator.Key()
		for _, e := range batch {
			if k := e.Observation.Indicator.Key(); state.KeyShard(k)%4 != state.KeyShard(first)%4 {
				t.Fatalf("%s and %s (different parts) in one call", k, first)
			}
		}
	}
	for _, ps := range fc.ackedPub {
		for _, pub := range ps {
			k := pub.Verdict.Indicator.Key()
			if state.KeyShard(k)%4 != state.KeyShard(ps[0].Verdict.Indicator.Key())%4 {
				t.Fatalf("acked verdicts of different parts in one call: %s and %s", k, ps[0].Verdict.Indicator.Key())
			}
		}
	}

	// A failing part fails the batch.
	fc.processErr = errProduce
	if _, err := st.Handle(t.Context(), batches()[2]); !errors.Is(err, errProduce) {
		t.Fatalf("failing part: err = %v", err)
	}
	if _, err := New(Config{EnrichedTopic: topicIn, FeedbackTopic: topicFB, VerdictTopic: topicOut, Shards: 3}, fc, s, nil, quiet()); !errors.Is(err, ErrConfig) {
		t.Fatalf("shards 3: err = %v, want ErrConfig", err)
	}
}
