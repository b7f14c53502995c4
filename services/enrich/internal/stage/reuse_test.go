package stage

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/services/enrich/internal/provider"
)

// spyEnricher counts the observations that reach the real enricher.
type spyEnricher struct {
	Enricher
	Reuser
	mu  sync.Mutex
	obs int
}

func (s *spyEnricher) EnrichBatchSorted(ctx context.Context, obs []events.Observation) ([]events.Enrichment, [][]events.SortedFields, error) {
	s.mu.Lock()
	s.obs += len(obs)
	s.mu.Unlock()
	return s.Enricher.EnrichBatchSorted(ctx, obs)
}

func newSpy(t testing.TB, provs ...provider.Provider) *spyEnricher {
	e := newEnricher(t, nil, provs...)
	return &spyEnricher{Enricher: e, Reuser: e}
}

func decodeAll(t *testing.T, s *events.Serde, res []stream.Result) []events.Enrichment {
	t.Helper()
	var out []events.Enrichment
	for i, r := range res {
		if r.Err != nil || len(r.Outputs) != 1 {
			t.Fatalf("record %d: err %v, %d outputs", i, r.Err, len(r.Outputs))
		}
		en, err := s.DecodeEnrichment(t.Context(), r.Outputs[0].Value)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out = append(out, en)
	}
	return out
}

// TestRecordCacheServesRepeats checks that a later observation of an indicator is answered from the record
// cache (no enricher call) with exactly the enrichment the enricher would give it: its own observation,
// the same results and exposure.
func TestRecordCacheServesRepeats(t *testing.T) {
	s := testSerde(t)
	p := &fakeProvider{name: "cip"}
	spy := newSpy(t, p)
	rec := &recorder{}
	h := New(Config{OutTopic: "out", RecordCacheSize: 100}, spy, s, rec, nil)
	plain := New(Config{OutTopic: "out"}, newEnricher(t, nil, &fakeProvider{name: "cip"}), s, nil, nil)

	first := []*kgo.Record{record(t, s, observation("45.33.32.1"), 1), record(t, s, observation("45.33.32.2"), 2)}
	if _, err := h.Handle(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if spy.obs != 2 {
		t.Fatalf("first batch: enricher saw %d observations, want 2", spy.obs)
	}
	o := observation("45.33.32.1")
	o.Producer.Offset, o.Sighting.AssetIP, o.Sighting.Severity = 77, "10.0.0.9", 2
	second := []*kgo.Record{record(t, s, o, 3), record(t, s, observation("45.33.32.3"), 4)}
	res, err := h.Handle(t.Context(), asResults(second))
	if err != nil {
		t.Fatal(err)
	}
	if spy.obs != 3 {
		t.Fatalf("second batch: enricher saw %d observations in all, want 3 (only the new indicator)", spy.obs)
	}
	if p.total() != 3 {
		t.Fatalf("provider called %d times, want 3", p.total())
	}
	got := decodeAll(t, s, res)
	wantRes, err := plain.Handle(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	want := decodeAll(t, s, wantRes)
	for i := range got {
		// FetchedAt / CachedAt / EnrichedAt are times of the two independent enrichers: compare the rest.
		for _, en := range []*events.Enrichment{&got[i], &want[i]} {
			en.EnrichedAt = time.Time{}
			for j := range en.Results {
				en.Results[j].FetchedAt, en.Results[j].CachedAt = time.Time{}, time.Time{}
			}
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d: from the record cache\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}
	if got[0].Observation.Producer.Offset != 77 || got[0].Observation.Sighting.AssetIP != "10.0.0.9" {
		t.Fatalf("reused enrichment lost its own observation: %+v", got[0].Observation)
	}
	if rec.n != 4 {
		t.Fatalf("recorder saw %d enrichments, want 4", rec.n)
	}
}

// asResults is the identity; it keeps the call sites above readable.
func asResults(recs []*kgo.Record) []*kgo.Record { return recs }

// TestRecordCacheNeverReusesFailures checks that a provider error is not stored: the next observation of
// the indicator goes back to the enricher (and the provider), and an answer after recovery is reused.
func TestRecordCacheNeverReusesFailures(t *testing.T) {
	s := testSerde(t)
	p := &fakeProvider{name: "cip", fn: down}
	spy := newSpy(t, p)
	h := New(Config{OutTopic: "out", RecordCacheSize: 100}, spy, s, nil, nil)
	batch := func(off int64) []*kgo.Record { return []*kgo.Record{record(t, s, observation("45.33.32.1"), off)} }
	res, err := h.Handle(t.Context(), batch(1))
	if err != nil {
		t.Fatal(err)
	}
	if en := decodeAll(t, s, res); en[0].Results[0].Status != events.StatusError {
		t.Fatalf("status %q, want error", en[0].Results[0].Status)
	}
	p.fn = nil // recovered (the breaker of the test enricher opened after one failure: wait it out)
	h2 := New(Config{OutTopic: "out", RecordCacheSize: 100}, newSpy(t, p), s, nil, nil)
	for _, hh := range []*Handler{h, h2} {
		if _, err := hh.Handle(t.Context(), batch(2)); err != nil {
			t.Fatal(err)
		}
	}
	if spy.obs != 2 {
		t.Fatalf("enricher saw %d observations, want 2: an error result must not be reused", spy.obs)
	}
	before := p.total()
	res, err = h2.Handle(t.Context(), batch(3))
	if err != nil {
		t.Fatal(err)
	}
	if en := decodeAll(t, s, res); en[0].Results[0].Status != events.StatusOK || p.total() != before {
		t.Fatalf("after recovery: status %q, provider calls %d -> %d; want ok from the record cache", en[0].Results[0].Status, before, p.total())
	}
}

// TestRecordCacheExpiry checks that an entry is not served after its earliest answer's TTL: the
// observation goes back to the enricher, which re-fetches.
func TestRecordCacheExpiry(t *testing.T) {
	s := testSerde(t)
	p := &fakeProvider{name: "cip"}
	spy := newSpy(t, p)
	h := New(Config{OutTopic: "out", RecordCacheSize: 100}, spy, s, nil, nil)
	batch := func(off int64) []*kgo.Record { return []*kgo.Record{record(t, s, observation("45.33.32.1"), off)} }
	if _, err := h.Handle(t.Context(), batch(1)); err != nil {
		t.Fatal(err)
	}
	e, ok := h.reuse.Get("ipv4:45.33.32.1")
	if !ok || e.until.IsZero() {
		t.Fatalf("no record cache entry with an expiry: %+v %v", e, ok)
	}
	h.now = func() time.Time { return e.until.Add(-time.Millisecond) }
	if _, err := h.Handle(t.Context(), batch(2)); err != nil {
		t.Fatal(err)
	}
	if spy.obs != 1 {
		t.Fatalf("before expiry: enricher saw %d observations, want 1", spy.obs)
	}
	h.now = func() time.Time { return e.until }
	if _, err := h.Handle(t.Context(), batch(3)); err != nil {
		t.Fatal(err)
	}
	if spy.obs != 2 {
		t.Fatalf("at expiry: enricher saw %d observations, want 2", spy.obs)
	}
}

// TestRecordCacheKeysAllowlist checks that an allow-listed observation (providers skipped) and a plain one
// of the same indicator never share an entry.
func TestRecordCacheKeysAllowlist(t *testing.T) {
	s := testSerde(t)
	p := &fakeProvider{name: "cip"}
	h := New(Config{OutTopic: "out", RecordCacheSize: 100}, newSpy(t, p), s, nil, nil)
	allowed := observation("45.33.32.1")
	allowed.Allowlist = &events.ListMatch{List: "partners", Reason: "partner proxy"}
	res, err := h.Handle(t.Context(), []*kgo.Record{record(t, s, allowed, 1), record(t, s, observation("45.33.32.1"), 2), record(t, s, allowed, 3)})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeAll(t, s, res)
	if got[0].Results[0].Status != events.StatusSkipped || got[1].Results[0].Status != events.StatusOK || got[2].Results[0].Status != events.StatusSkipped {
		t.Fatalf("statuses %q %q %q, want skipped ok skipped", got[0].Results[0].Status, got[1].Results[0].Status, got[2].Results[0].Status)
	}
	res, err = h.Handle(t.Context(), []*kgo.Record{record(t, s, observation("45.33.32.1"), 4), record(t, s, allowed, 5)})
	if err != nil {
		t.Fatal(err)
	}
	got = decodeAll(t, s, res)
	if got[0].Results[0].Status != events.StatusOK || got[1].Results[0].Status != events.StatusSkipped {
		t.Fatalf("from the record cache: statuses %q %q, want ok skipped", got[0].Results[0].Status, got[1].Results[0].Status)
	}
}

// mapRecords is an in-memory RecordStore.
type mapRecords struct {
	mu   sync.Mutex
	m    map[string][]byte
	ttl  map[string]time.Duration
	gets int
}

func (m *mapRecords) GetRecords(_ context.Context, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = m.m[k]
	}
	return out, nil
}

func (m *mapRecords) SetRecords(_ context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		m.m[k], m.ttl[k] = bytes.Clone(vals[i]), ttls[i]
	}
	return nil
}

// TestRecordCacheShared checks the shared tier: what one handler enriched, a second one (another replica,
// or a restart) serves without its enricher, byte for byte the same tail, in one lookup per batch; an
// expired or unreadable shared entry is not served.
func TestRecordCacheShared(t *testing.T) {
	s := testSerde(t)
	shared := &mapRecords{m: map[string][]byte{}, ttl: map[string]time.Duration{}}
	p := &fakeProvider{name: "cip"}
	a := New(Config{OutTopic: "out", RecordCacheSize: 100, Shared: shared}, newSpy(t, p), s, nil, nil)
	ips := []string{"45.33.32.1", "45.33.32.2"}
	var batch []*kgo.Record
	for i, ip := range ips {
		batch = append(batch, record(t, s, observation(ip), int64(i)))
	}
	resA, err := a.Handle(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared.m) != 2 {
		t.Fatalf("%d shared records written, want 2", len(shared.m))
	}
	for k, ttl := range shared.ttl {
		if ttl <= 0 || ttl > 24*time.Hour {
			t.Fatalf("shared record %s stored for %v, want the answer's remaining TTL", k, ttl)
		}
	}
	spyB := newSpy(t, p)
	b := New(Config{OutTopic: "out", RecordCacheSize: 100, Shared: shared}, spyB, s, nil, nil)
	gets := shared.gets
	resB, err := b.Handle(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if spyB.obs != 0 || p.total() != 2 || shared.gets != gets+1 {
		t.Fatalf("second replica: enricher saw %d, provider calls %d, shared lookups %d; want 0, 2, 1", spyB.obs, p.total(), shared.gets-gets)
	}
	for i := range resA {
		ea, eb := decodeAll(t, s, resA[i:i+1])[0], decodeAll(t, s, resB[i:i+1])[0]
		ea.EnrichedAt, eb.EnrichedAt = time.Time{}, time.Time{}
		// the first pass reports the answer as fetched, not cached; the shared copy is the same answer
		for j := range ea.Results {
			ea.Results[j].CachedAt, eb.Results[j].CachedAt = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(ea, eb) {
			t.Fatalf("record %d: shared tier gave\n%+v\nwant\n%+v", i, eb, ea)
		}
	}
	// now in b's own tier: no further shared lookup
	if _, err := b.Handle(t.Context(), batch); err != nil || shared.gets != gets+1 {
		t.Fatalf("third pass: err %v, shared lookups %d, want none", err, shared.gets-gets-1)
	}

	// an unreadable entry and an expired one go to the enricher
	for k := range shared.m {
		shared.m[k] = []byte("garbage")
	}
	spyC := newSpy(t, p)
	c := New(Config{OutTopic: "out", RecordCacheSize: 100, Shared: shared}, spyC, s, nil, nil)
	if _, err := c.Handle(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if spyC.obs != 2 {
		t.Fatalf("unreadable shared entries: enricher saw %d, want 2", spyC.obs)
	}
	spyD := newSpy(t, p)
	d := New(Config{OutTopic: "out", RecordCacheSize: 100, Shared: shared}, spyD, s, nil, nil)
	d.now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	if _, err := d.Handle(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if spyD.obs != 2 {
		t.Fatalf("expired shared entries: enricher saw %d, want 2", spyD.obs)
	}
}

// TestReuseEntryMarshal round-trips an entry and rejects truncations.
func TestReuseEntryMarshal(t *testing.T) {
	e := &reuseEntry{tail: []byte{1, 2, 3, 250}, until: time.UnixMilli(1_700_000_000_123), country: "NL",
		results: []reuseResult{{"criminalip", events.StatusOK, 1_700_000_000_000_000_001}, {"offline", events.StatusSkipped, 0}, {"greynoise", events.StatusNotFound, 5}}}
	b := e.marshal()
	got, ok := unmarshalEntry(b)
	if !ok || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v %v, want %+v", got, ok, e)
	}
	for cut := 0; cut < len(b)-len(e.tail); cut++ {
		if _, ok := unmarshalEntry(b[:cut]); ok {
			t.Fatalf("accepted a record cut at %d", cut)
		}
	}
}
