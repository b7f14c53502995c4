package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/enrich/internal/cache"
	"github.com/vigilsec/vigil/services/enrich/internal/enricher"
	"github.com/vigilsec/vigil/services/enrich/internal/limit"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// fakeProvider answers from fn and counts calls.
type fakeProvider struct {
	name string
	fn   func(ind events.Indicator) (provider.Result, error)

	mu    sync.Mutex
	calls map[string]int
}

func (f *fakeProvider) Name() string         { return f.name }
func (f *fakeProvider) Supports(string) bool { return true }
func (f *fakeProvider) Lookup(_ context.Context, ind events.Indicator) (provider.Result, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[ind.Value]++
	f.mu.Unlock()
	if f.fn != nil {
		return f.fn(ind)
	}
	return provider.Result{Found: true, Fields: map[string]string{"seen": "yes"}, Exposure: events.Exposure{Country: "NL", InboundScore: 4}}, nil
}

func (f *fakeProvider) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func down(events.Indicator) (provider.Result, error) {
	return provider.Result{}, &provider.Error{Kind: provider.ErrUnavailable, Status: 503, Message: "down"}
}

// recorder counts Enriched calls.
type recorder struct {
	mu sync.Mutex
	n  int
}

func (r *recorder) Enriched(_ context.Context, ens []events.Enrichment) {
	r.mu.Lock()
	r.n += len(ens)
	r.mu.Unlock()
}

// EnrichedRepeats counts the records of the first provider's results (one result per record each).
func (r *recorder) EnrichedRepeats(_ context.Context, provider, _, _ string, n int64) {
	if provider != "cip" {
		return
	}
	r.mu.Lock()
	r.n += int(n)
	r.mu.Unlock()
}

func testSerde(t testing.TB) *events.Serde {
	t.Helper()
	s, err := events.NewSerde()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newEnricher builds a real enricher over in-memory cache and limiter. Required providers trip on one failure.
func newEnricher(t testing.TB, required map[string]bool, provs ...provider.Provider) *enricher.Enricher {
	t.Helper()
	cfg := enricher.Config{
		Providers:    map[string]enricher.ProviderConfig{},
		Concurrency:  1,
		Retry:        enricher.RetryConfig{MaxAttempts: 1, Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: time.Second},
		Breaker:      enricher.BreakerConfig{Failures: 1, OpenFor: time.Minute},
		InternalNets: indicator.NewNets(), // nothing internal: the test IPs are public-looking
	}
	for _, p := range provs {
		cfg.Providers[p.Name()] = enricher.ProviderConfig{Enabled: true, Required: required[p.Name()]}
	}
	e, err := enricher.New(cfg, provs, cache.New(cache.Config{L1Size: 10_000}, nil, nil), limit.New(nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func observation(ip string) events.Observation {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return events.Observation{
		Indicator: events.Indicator{Type: events.TypeIPv4, Value: ip}, Field: "dest_ip", EventTime: t0, IngestTime: t0,
		Producer: events.Producer{Topic: "raw.suricata", Format: "suricata_eve"},
		Sighting: events.Sighting{Direction: events.DirectionOutbound, Action: events.ActionAllowed, Count: 1},
	}
}

func record(t testing.TB, s *events.Serde, o events.Observation, offset int64) *kgo.Record {
	t.Helper()
	b, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "indicators.observed", Key: []byte(o.Indicator.Key()), Value: b, Offset: offset}
}

func TestHandleOutputsKeyedAndEnriched(t *testing.T) {
	s := testSerde(t)
	p := &fakeProvider{name: "cip"}
	rec := &recorder{}
	h := New(Config{OutTopic: "indicators.enriched"}, newEnricher(t, nil, p), s, rec, nil)
	ips := []string{"45.33.32.1", "45.33.32.2", "45.33.32.1", "45.33.32.3", "45.33.32.1"}
	var recs []*kgo.Record
	for i, ip := range ips {
		recs = append(recs, record(t, s, observation(ip), int64(i)))
	}
	res, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(recs) {
		t.Fatalf("%d results for %d records", len(res), len(recs))
	}
	for i, r := range res {
		if r.Err != nil || len(r.Outputs) != 1 {
			t.Fatalf("record %d: err %v, %d outputs", i, r.Err, len(r.Outputs))
		}
		out := r.Outputs[0]
		if out.Topic != "indicators.enriched" || string(out.Key) != "ipv4:"+ips[i] {
			t.Fatalf("record %d: topic %q key %q", i, out.Topic, out.Key)
		}
		en, err := s.DecodeEnrichment(t.Context(), out.Value)
		if err != nil {
			t.Fatal(err)
		}
		if en.Observation.Indicator.Value != ips[i] || len(en.Results) != 1 || en.Results[0].Status != events.StatusOK {
			t.Fatalf("record %d: enrichment %+v", i, en)
		}
		if en.Exposure.Country != "NL" || en.Exposure.InboundScore != 4 {
			t.Fatalf("record %d: exposure %+v", i, en.Exposure)
		}
	}
	if p.total() != 3 {
		t.Fatalf("provider called %d times for 3 distinct IPs in one batch", p.total())
	}
	// A second (cached) pass writes the fields from the cache's sorted pairs: the bytes must be exactly
	// what encoding the decoded enrichment with the map gives.
	p.fn = func(events.Indicator) (provider.Result, error) {
		return provider.Result{Found: true, Fields: map[string]string{"z": "1", "a": "2", "m": "3"}}, nil
	}
	more := []*kgo.Record{record(t, s, observation("45.33.32.9"), 9), record(t, s, observation("45.33.32.9"), 10)}
	for pass := range 2 {
		res, err := h.Handle(t.Context(), more)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			en, err := s.DecodeEnrichment(t.Context(), r.Outputs[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.EncodeEnrichment(&en)
			if err != nil || !bytes.Equal(again, r.Outputs[0].Value) || len(en.Results[0].Fields) != 3 {
				t.Fatalf("pass %d: output differs from the map encoding (%v, fields %v)", pass, err, en.Results[0].Fields)
			}
		}
	}
	rec.n -= 4
	if rec.n != len(ips) {
		t.Fatalf("recorder saw %d enrichments, want %d", rec.n, len(ips))
	}
}

func TestHandleDecodeErrorIsPermanent(t *testing.T) {
	s := testSerde(t)
	h := New(Config{OutTopic: "out"}, newEnricher(t, nil, &fakeProvider{name: "cip"}), s, nil, nil)
	good := record(t, s, observation("45.33.32.9"), 0)
	bad := &kgo.Record{Key: []byte("ipv4:45.33.32.10"), Value: []byte("not avro at all")}
	res, err := h.Handle(t.Context(), []*kgo.Record{bad, good, {Value: nil}})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		var pe *stream.PermanentError
		if !errors.As(res[i].Err, &pe) || pe.Class != ClassDecode {
			t.Fatalf("record %d: err %v, want a permanent %q error", i, res[i].Err, ClassDecode)
		}
		if len(res[i].Outputs) != 0 {
			t.Fatalf("record %d: outputs for an undecodable record", i)
		}
	}
	if res[1].Err != nil || len(res[1].Outputs) != 1 || string(res[1].Outputs[0].Key) != "ipv4:45.33.32.9" {
		t.Fatalf("good record: %+v", res[1])
	}
}

// A batch of only undecodable records never calls the enricher.
func TestHandleAllUndecodable(t *testing.T) {
	s := testSerde(t)
	enr := &countingEnricher{}
	h := New(Config{OutTopic: "out"}, enr, s, nil, nil)
	res, err := h.Handle(t.Context(), []*kgo.Record{{Value: []byte{0xc3, 0x01, 1, 2}}})
	if err != nil || len(res) != 1 || res[0].Err == nil {
		t.Fatalf("res %+v err %v", res, err)
	}
	if enr.calls != 0 {
		t.Fatalf("enricher called %d times", enr.calls)
	}
}

type countingEnricher struct {
	calls int
	err   error
}

func (c *countingEnricher) EnrichBatchSorted(_ context.Context, obs []events.Observation) ([]events.Enrichment, [][]events.SortedFields, error) {
	c.calls++
	if c.err != nil {
		return nil, nil, c.err
	}
	out := make([]events.Enrichment, len(obs))
	for i, o := range obs {
		out[i] = events.Enrichment{Observation: o}
	}
	return out, nil, nil
}

func TestHandlePausesWhenRequiredProviderDown(t *testing.T) {
	s := testSerde(t)
	req := &fakeProvider{name: "cip", fn: down}
	other := &fakeProvider{name: "idb"}
	h := New(Config{OutTopic: "out"}, newEnricher(t, map[string]bool{"cip": true}, req, other), s, nil, nil)
	// The first lookup fails and opens the breaker (Failures: 1); the second record then finds it open.
	recs := []*kgo.Record{record(t, s, observation("45.33.32.1"), 0), record(t, s, observation("45.33.32.2"), 1)}
	res, err := h.Handle(t.Context(), recs)
	if !errors.Is(err, stream.ErrPause) || !errors.Is(err, enricher.ErrRequiredProviderDown) {
		t.Fatalf("err = %v, want ErrPause wrapping ErrRequiredProviderDown", err)
	}
	if res != nil {
		t.Fatalf("results returned with a batch error: %+v", res)
	}
}

// An optional provider that is down yields partial enrichments, not an error.
func TestHandlePartialWhenOptionalProviderDown(t *testing.T) {
	s := testSerde(t)
	h := New(Config{OutTopic: "out"}, newEnricher(t, nil, &fakeProvider{name: "cip", fn: down}, &fakeProvider{name: "idb"}), s, nil, nil)
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, record(t, s, observation(fmt.Sprintf("45.33.32.%d", i+1)), int64(i)))
	}
	res, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{events.StatusError, events.StatusBreakerOpen, events.StatusBreakerOpen}
	for i, r := range res {
		if r.Err != nil || len(r.Outputs) != 1 {
			t.Fatalf("record %d: %+v", i, r)
		}
		en, err := s.DecodeEnrichment(t.Context(), r.Outputs[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		st := map[string]string{}
		for _, pr := range en.Results {
			st[pr.Provider] = pr.Status
		}
		if st["cip"] != want[i] || st["idb"] != events.StatusOK {
			t.Fatalf("record %d: statuses %v, want cip=%s idb=ok", i, st, want[i])
		}
	}
}

func TestHandleOtherErrorsReturned(t *testing.T) {
	s := testSerde(t)
	boom := errors.New("boom")
	h := New(Config{OutTopic: "out"}, &countingEnricher{err: boom}, s, nil, nil)
	_, err := h.Handle(t.Context(), []*kgo.Record{record(t, s, observation("45.33.32.1"), 0)})
	if !errors.Is(err, boom) || errors.Is(err, stream.ErrPause) {
		t.Fatalf("err = %v, want boom without ErrPause", err)
	}
}

// An input without a key still gets a keyed output (the canonical indicator key).
func TestHandleMissingKey(t *testing.T) {
	s := testSerde(t)
	h := New(Config{OutTopic: "out"}, &countingEnricher{}, s, nil, nil)
	r := record(t, s, observation("45.33.32.7"), 0)
	r.Key = nil
	res, err := h.Handle(t.Context(), []*kgo.Record{r})
	if err != nil || len(res[0].Outputs) != 1 || string(res[0].Outputs[0].Key) != "ipv4:45.33.32.7" {
		t.Fatalf("res %+v err %v", res, err)
	}
}
