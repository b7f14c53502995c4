package events

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// TestEnrichmentSplicedMatchesEncode checks that an Enrichment assembled from the input observation's
// body and a separately encoded tail is byte-identical to encoding the whole record, and decodes back to
// the same value, over generated records (every field, edge values, with and without results).
func TestEnrichmentSplicedMatchesEncode(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	g := newGen(7)
	identical := 0
	for i := range 500 {
		e := g.enrichment()
		rawObs, err := s.EncodeObservation(&e.Observation)
		if err != nil {
			t.Fatal(err)
		}
		o, body, err := s.DecodeObservationBody(t.Context(), rawObs)
		if err != nil {
			t.Fatalf("record %d: decode observation: %v", i, err)
		}
		if body == nil {
			t.Fatalf("record %d: current-schema observation without a body", i)
		}
		e.Observation = o
		tail := AppendEnrichmentTail(nil, e.Results, nil, &e.Exposure)
		got := s.EncodeEnrichmentSpliced(body, tail, e.EnrichedAt)
		want, err := s.EncodeEnrichment(&e)
		if err != nil {
			t.Fatal(err)
		}
		// The spliced record carries the producer's observation bytes; it must decode to what the
		// re-encoded one decodes to, and be the same bytes wherever re-encoding the decoded observation
		// gives back the input (everything but out-of-range generated times).
		back, err := s.DecodeEnrichment(t.Context(), got)
		if err != nil {
			t.Fatalf("record %d: decode spliced: %v", i, err)
		}
		want2, err := s.DecodeEnrichment(t.Context(), want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, want2) {
			t.Fatalf("record %d: spliced record decodes differently\n got %+v\nwant %+v", i, back, want2)
		}
		if bytes.Equal(appendObservation(nil, &o), body) {
			identical++
			if !bytes.Equal(got, want) {
				t.Fatalf("record %d: spliced encoding differs from EncodeEnrichment\n got %x\nwant %x", i, got, want)
			}
		}
	}
	if identical < 250 {
		t.Fatalf("only %d of 500 observations re-encoded to their input bytes; the byte comparison covers too little", identical)
	}
}

// TestDecodeObservationBodyZeroCount checks that a current-schema record another writer encoded with a
// sighting count below 1 is decoded but not offered for splicing (the encoder would write 1).
func TestDecodeObservationBodyZeroCount(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	o := sampleObservation()
	o.Allowlist = nil
	o.Sighting.Count = 1
	b, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	// The record ends with the count (zig-zag 1 = 0x02) and the null allowlist union (0x00): write 0.
	if n := len(b); b[n-2] != 0x02 || b[n-1] != 0x00 {
		t.Fatalf("unexpected record end %x", b[n-2:])
	}
	b[len(b)-2] = 0x00
	got, body, err := s.DecodeObservationBody(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil || got.Indicator != o.Indicator {
		t.Fatalf("count 0: body %x, indicator %+v; want no body and the decoded indicator", body, got.Indicator)
	}
}

// TestDecodeObservationBodyOlderWriter checks that a record of an older Observation schema is decoded
// but never offered for splicing (its bytes are not the current layout).
func TestDecodeObservationBodyOlderWriter(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	o := sampleObservation()
	cur, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, err := s.DecodeObservationBody(t.Context(), cur); err != nil || !bytes.Equal(body, cur[10:]) {
		t.Fatalf("current writer: body %x err %v, want the bytes after the 10-byte framing", body, err)
	}
	old, err := os.ReadFile("testdata/observation.older.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.addHistory("observation.older.avsc", old); err != nil {
		t.Fatal(err)
	}
	for fp, ws := range s.byFP {
		if ws.name != SchemaObservation || ws.fast {
			continue
		}
		native := map[string]any{
			"indicator": map[string]any{"type": "ipv4", "value": "192.0.2.1"}, "event_time": t0, "ingest_time": t0,
			"producer": map[string]any{"topic": "raw.x", "partition": int32(0), "offset": int64(1), "format": "cef"},
			"sighting": map[string]any{"direction": "inbound", "action": "allowed"},
		}
		b, err := ws.codec.SingleFromNative(nil, native)
		if err != nil {
			t.Fatalf("older schema %016x: %v", fp, err)
		}
		got, body, err := s.DecodeObservationBody(t.Context(), b)
		if err != nil {
			t.Fatalf("older schema %016x: %v", fp, err)
		}
		if body != nil || got.Indicator.Value != "192.0.2.1" {
			t.Fatalf("older schema %016x: body %x, indicator %q; want no body and the decoded value", fp, body, got.Indicator.Value)
		}
		return
	}
	t.Fatal("the older Observation schema was not registered")
}

// TestPeekObservationMatchesDecode checks PeekObservation against the full decoder on generated records,
// and that it declines what it cannot vouch for.
func TestPeekObservationMatchesDecode(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	g := newGen(11)
	for i := range 500 {
		o := g.observation()
		b, err := s.EncodeObservation(&o)
		if err != nil {
			t.Fatal(err)
		}
		full, body, err := s.DecodeObservationBody(t.Context(), b)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := s.PeekObservation(b)
		if !ok {
			t.Fatalf("record %d: peek declined a current-schema record", i)
		}
		if p.Indicator != full.Indicator || p.Allowlisted != (full.Allowlist != nil) || !bytes.Equal(p.Body, body) {
			t.Fatalf("record %d: peek %+v / %v, decode %+v / %v", i, p.Indicator, p.Allowlisted, full.Indicator, full.Allowlist != nil)
		}
		// every truncation is declined
		for cut := 10; cut < len(b); cut += 1 + len(b)/17 {
			if _, ok := s.PeekObservation(b[:cut]); ok {
				t.Fatalf("record %d: peek accepted a record cut at %d of %d bytes", i, cut, len(b))
			}
		}
		if _, ok := s.PeekObservation(append(bytes.Clone(b), 0)); ok {
			t.Fatalf("record %d: peek accepted a trailing byte", i)
		}
	}
	o := sampleObservation()
	o.Allowlist = nil
	b, _ := s.EncodeObservation(&o)
	b[len(b)-2] = 0x00 // count 0
	if _, ok := s.PeekObservation(b); ok {
		t.Fatal("peek accepted a sighting count of 0")
	}
	v := sampleVerdict()
	vb, _ := s.EncodeVerdict(&v)
	if _, ok := s.PeekObservation(vb); ok {
		t.Fatal("peek accepted a Verdict")
	}
}
