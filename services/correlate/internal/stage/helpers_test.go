package stage

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

const (
	topicIn  = "t.enriched"
	topicFB  = "t.feedback"
	topicOut = "t.verdicts"
)

var errProduce = errors.New("produce refused")

var testCfg = Config{EnrichedTopic: topicIn, FeedbackTopic: topicFB, VerdictTopic: topicOut}

// hostile is provider data that alone would block an indicator.
var hostile = events.Exposure{Malicious: true, InboundScore: 5, Tor: true, Scanner: true, AbuseConfidence: 97, GreyNoiseClass: "malicious"}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func serde(t testing.TB) *events.Serde {
	t.Helper()
	s, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// enrichment builds an enrichment of ip seen by asset at raw offset off.
func enrichment(ip, asset, rawTopic string, off int64, x events.Exposure) events.Enrichment {
	typ := events.TypeIPv4
	if strings.Contains(ip, ":") {
		typ = events.TypeIPv6
	}
	if x.AbuseConfidence == 0 {
		x.AbuseConfidence = -1
	}
	return events.Enrichment{
		Observation: events.Observation{
			Indicator: events.Indicator{Type: typ, Value: ip},
			EventTime: time.Now().UTC().Add(-time.Minute),
			Producer:  events.Producer{Topic: rawTopic, Partition: 0, Offset: off},
			Sighting:  events.Sighting{AssetIP: asset, Direction: events.DirectionInbound, Action: events.ActionAlerted, Severity: 3, Count: 1},
		},
		Exposure: x,
	}
}

func encRecord(t testing.TB, s *events.Serde, topic string, off int64, e events.Enrichment) *kgo.Record {
	t.Helper()
	v, err := s.EncodeEnrichment(&e)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(e.Observation.Indicator.Key()), Value: v, Offset: off}
}

func fbRecord(t testing.TB, s *events.Serde, fb events.Feedback) *kgo.Record {
	t.Helper()
	v, err := s.EncodeFeedback(&fb)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topicFB, Key: []byte(fb.Indicator.Key()), Value: v, Partition: 1, Offset: fbOffset.Add(1)}
}

// fbOffset gives every feedback record of the tests its own offset: records
// at the same coordinates are one record to the correlator.
var fbOffset atomic.Int64

// realCorrelator is the production correlator on the default policy, every
// shipped warninglist and an in-memory store.
func realCorrelator(t testing.TB) *correlator.Correlator {
	t.Helper()
	p, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.NewMemory(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := correlator.New(correlator.NewPolicyHolder(p), allowlist.NewHolder(set), nil, st, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeCorrelator records calls and returns canned answers.
type fakeCorrelator struct {
	mu         sync.Mutex
	processed  [][]events.Enrichment
	acked      [][]events.Verdict
	ackedPub   [][]correlator.Published
	feedback   [][]correlator.FeedbackRecord
	verdicts   func(batch []events.Enrichment) []events.Verdict
	processErr error
	ackErr     error
	fbErr      error
}

// Correlate returns f.verdicts, each decided on the last record of its
// indicator, as the real correlator does.
func (f *fakeCorrelator) Correlate(_ context.Context, acked []correlator.Published, batch []events.Enrichment) ([]correlator.Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(acked) > 0 {
		if f.ackErr != nil {
			return nil, f.ackErr
		}
		f.recordAck(acked)
	}
	if len(batch) == 0 {
		return nil, nil
	}
	f.processed = append(f.processed, batch)
	if f.processErr != nil {
		return nil, f.processErr
	}
	if f.verdicts == nil {
		return nil, nil
	}
	last := map[string]int{}
	for i := range batch {
		last[batch[i].Observation.Indicator.Key()] = i
	}
	var outs []correlator.Output
	for _, v := range f.verdicts(batch) {
		i, ok := last[v.Indicator.Key()]
		if !ok {
			i = -1 // matches no input: the stage must fail the batch
		}
		outs = append(outs, correlator.Output{Verdict: v, Record: i})
	}
	return outs, nil
}

func (f *fakeCorrelator) AckPublished(_ context.Context, ps []correlator.Published) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ackErr != nil {
		return f.ackErr
	}
	f.recordAck(ps)
	return nil
}

// recordAck keeps one ack call. Called with f.mu held.
func (f *fakeCorrelator) recordAck(ps []correlator.Published) {
	vs := make([]events.Verdict, len(ps))
	for i := range ps {
		vs[i] = ps[i].Verdict
	}
	f.acked = append(f.acked, vs)
	f.ackedPub = append(f.ackedPub, ps)
}

func (f *fakeCorrelator) ApplyFeedback(_ context.Context, fbs []correlator.FeedbackRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feedback = append(f.feedback, fbs)
	return f.fbErr
}

// oneVerdictPerKey returns a verdict per distinct key, in first-seen order.
func oneVerdictPerKey(batch []events.Enrichment) []events.Verdict {
	seen := map[string]bool{}
	var out []events.Verdict
	for _, e := range batch {
		k := e.Observation.Indicator.Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, events.Verdict{Indicator: e.Observation.Indicator, Priority: 9, Level: "critical", Action: events.VerdictBlock, PreviousPriority: -1})
	}
	return out
}

// produce simulates the runner's producer: each output of res is acknowledged
// through the hook, with err for outputs whose key is in fail.
func produce(s *Stage, res []stream.Result, fail map[string]bool) {
	for _, r := range res {
		for _, o := range r.Outputs {
			var err error
			if fail[string(o.Key)] {
				err = errProduce
			}
			s.OnProduceRecordUnbuffered(o, err)
		}
	}
}
