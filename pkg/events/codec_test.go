package events

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the released-schema fixtures (only when releasing a new schema version)")

func newSerde(t testing.TB) *Serde {
	t.Helper()
	s, err := NewSerde()
	if err != nil {
		t.Fatalf("NewSerde: %v", err)
	}
	return s
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func sampleObservation() Observation {
	return Observation{
		Indicator:  Indicator{Type: TypeIPv4, Value: "203.0.113.7"},
		Field:      "dest_ip",
		EventTime:  t0,
		IngestTime: t0.Add(time.Second),
		Producer:   Producer{Topic: "raw.suricata", Partition: 3, Offset: 42, Format: "suricata_eve", Vendor: "OISF", Product: "Suricata"},
		Sighting: Sighting{AssetIP: "10.0.0.5", AssetHost: "ws-01", User: "alice", Direction: DirectionOutbound,
			Action: ActionBlocked, Severity: 3, Rule: "ET MALWARE x", SrcPort: 51000, DstPort: 443, Protocol: "tcp", Count: 2},
		Allowlist: &ListMatch{List: "partners", Reason: "partner proxy"},
	}
}

func sampleEnrichment() Enrichment {
	return Enrichment{
		Observation: sampleObservation(),
		Results: []ProviderResult{
			{Provider: "criminalip", Status: StatusOK, FetchedAt: t0, TTL: time.Hour, Fields: map[string]string{"inbound_score": "Critical"}},
			{Provider: "greynoise", Status: StatusBreakerOpen, Error: "breaker open"},
		},
		Exposure: Exposure{Malicious: true, InboundScore: 5, OutboundScore: 3, VPN: true, Tor: true,
			OpenPorts: []Port{{Port: 22, Protocol: "tcp", Service: "ssh", Version: "8.9", Vulnerable: true, Tags: []string{"login"}}},
			CVEs:      []CVE{{ID: "CVE-2024-6387", CVSS: 8.1, Ports: []int32{22}}},
			ASN:       64500, ASName: "EXAMPLE-AS", Org: "Example", Country: "NL", AbuseConfidence: 90,
			GreyNoiseClass: "malicious", Categories: []string{"scanner"}, FirstSeen: t0.Add(-time.Hour), LastSeen: t0},
		EnrichedAt: t0.Add(2 * time.Second),
	}
}

func sampleVerdict() Verdict {
	return Verdict{
		Indicator: Indicator{Type: TypeDomain, Value: "example.org"}, Priority: 8, Level: "high", Action: VerdictAlert,
		Reasons:       []Reason{{Code: "criminalip.inbound", Text: "criminalip.inbound=Critical", Weight: 4}},
		PolicyVersion: "2026-12-01", PreviousPriority: -1, PriorityWithoutExposure: 2, ExposureChanged: true,
		Sightings: SightingSummary{Count: 10, Count1h: 2, Count24h: 5, Count7d: 10, DistinctAssets: 3, FirstSeen: t0,
			LastSeen: t0.Add(time.Minute), Allowed: 4, Blocked: 6, BlockedShare: 0.6, MaxSeverity: 3},
		Attributes: []Attribute{{Name: "Criminal IP Inbound Score", Value: "Critical"}},
		Tags:       []string{"vigil"}, Sources: []string{"criminalip"}, SetScore: true, Description: "d",
		EventTime: t0, DecidedAt: t0.Add(3 * time.Second), ValidUntil: t0.Add(24 * time.Hour),
	}
}

func sampleFeedback() Feedback {
	return Feedback{Indicator: Indicator{Type: TypeIPv4, Value: "198.51.100.1"}, ThreatQID: 12, Kind: "status_changed",
		NewStatus: "Whitelisted", PreviousStatus: "Active", NewScore: -1, Reason: "partner", Analyst: "a@b",
		VigilAction: VerdictBlock, VigilPriority: 9, ChangedAt: t0}
}

func sampleDeadLetter() DeadLetter {
	return DeadLetter{Key: []byte("k"), Value: []byte{0xff, 0x00}, Headers: []Header{{Key: "h", Value: []byte("v")}},
		SourceTopic: "raw.cef", SourcePartition: 1, SourceOffset: 7, Stage: "ingest", ErrorClass: "unknown_format",
		Message: "no parser", Attempts: 1, Time: t0}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	ctx := t.Context()
	cases := []struct {
		name string
		in   any
		rt   func() (any, error)
	}{
		{"observation", sampleObservation(), func() (any, error) {
			o := sampleObservation()
			b, err := s.EncodeObservation(&o)
			if err != nil {
				return nil, err
			}
			return s.DecodeObservation(ctx, b)
		}},
		{"enrichment", sampleEnrichment(), func() (any, error) {
			e := sampleEnrichment()
			b, err := s.EncodeEnrichment(&e)
			if err != nil {
				return nil, err
			}
			return s.DecodeEnrichment(ctx, b)
		}},
		{"verdict", sampleVerdict(), func() (any, error) {
			v := sampleVerdict()
			b, err := s.EncodeVerdict(&v)
			if err != nil {
				return nil, err
			}
			return s.DecodeVerdict(ctx, b)
		}},
		{"feedback", sampleFeedback(), func() (any, error) {
			f := sampleFeedback()
			b, err := s.EncodeFeedback(&f)
			if err != nil {
				return nil, err
			}
			return s.DecodeFeedback(ctx, b)
		}},
		{"deadletter", sampleDeadLetter(), func() (any, error) {
			d := sampleDeadLetter()
			b, err := s.EncodeDeadLetter(&d)
			if err != nil {
				return nil, err
			}
			return s.DecodeDeadLetter(ctx, b)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rt()
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip mismatch\n got %#v\nwant %#v", got, tc.in)
			}
		})
	}
}

func TestSingleObjectFraming(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	o := sampleObservation()
	b, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0xC3 || b[1] != 0x01 {
		t.Fatalf("want SOE magic C3 01, got %x", b[:2])
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	o := sampleObservation()
	good, err := s.EncodeObservation(&o)
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, good[10:]...)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"json", []byte(`{"a":1}`), ErrCorrupt},
		{"unknown fingerprint", unknownFP, ErrUnknownSchema},
		{"registry id without registry", []byte{0, 0, 0, 0, 9, 2}, ErrUnknownSchema},
		{"truncated", good[:len(good)-3], ErrCorrupt},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.DecodeObservation(t.Context(), tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want *DecodeError, got %T", err)
			}
		})
	}
	v := sampleVerdict()
	vb, _ := s.EncodeVerdict(&v)
	if _, err := s.DecodeObservation(t.Context(), vb); !errors.Is(err, ErrWrongRecord) {
		t.Fatalf("verdict bytes decoded as observation: %v", err)
	}
}

// TestReleasedFixturesDecode proves that records written by every released schema version
// (binary fixtures in testdata/fixtures, kept forever) still decode with the current reader.
func TestReleasedFixturesDecode(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	ctx := t.Context()
	if *update {
		writeFixtures(t, s)
	}
	files, err := filepath.Glob("testdata/fixtures/*.bin")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		var got, want any
		switch {
		case strings.HasPrefix(name, "observation."):
			got, err = s.DecodeObservation(ctx, b)
			want = sampleObservation()
		case strings.HasPrefix(name, "enrichment."):
			got, err = s.DecodeEnrichment(ctx, b)
			want = sampleEnrichment()
		case strings.HasPrefix(name, "verdict."):
			got, err = s.DecodeVerdict(ctx, b)
			want = sampleVerdict()
		case strings.HasPrefix(name, "feedback."):
			got, err = s.DecodeFeedback(ctx, b)
			want = sampleFeedback()
		case strings.HasPrefix(name, "deadletter."):
			got, err = s.DecodeDeadLetter(ctx, b)
			want = sampleDeadLetter()
		default:
			t.Fatalf("unexpected fixture %s", name)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s decoded to\n%#v\nwant\n%#v", name, got, want)
		}
	}
}

// TestOlderWriterReadable decodes a record written with an older, smaller Observation schema
// (no allowlist, no count): missing fields take their defaults.
func TestOlderWriterReadable(t *testing.T) {
	t.Parallel()
	s := newSerde(t)
	old, err := os.ReadFile("testdata/observation.older.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.addHistory("observation.older.avsc", old); err != nil {
		t.Fatal(err)
	}
	ws := s.byFP[lastFP(t, s, old)]
	native := map[string]any{
		"indicator": map[string]any{"type": "ipv4", "value": "192.0.2.1"}, "event_time": t0, "ingest_time": t0,
		"producer": map[string]any{"topic": "raw.x", "partition": int32(0), "offset": int64(1), "format": "cef"},
		"sighting": map[string]any{"direction": "inbound", "action": "allowed"},
	}
	b, err := ws.codec.SingleFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DecodeObservation(t.Context(), b)
	if err != nil {
		t.Fatalf("decode older writer: %v", err)
	}
	if got.Indicator.Value != "192.0.2.1" || got.Sighting.Count != 1 || got.Allowlist != nil || got.Sighting.Direction != "inbound" {
		t.Fatalf("unexpected decode of older record: %+v", got)
	}
}

func lastFP(t *testing.T, s *Serde, raw []byte) uint64 {
	t.Helper()
	for fp, ws := range s.byFP {
		if bytes.Equal([]byte(ws.codec.Schema()), bytes.TrimSpace(raw)) || ws.source == string(raw) {
			return fp
		}
	}
	t.Fatal("older schema not registered")
	return 0
}

func writeFixtures(t *testing.T, s *Serde) {
	t.Helper()
	o, e, v, f, d := sampleObservation(), sampleEnrichment(), sampleVerdict(), sampleFeedback(), sampleDeadLetter()
	enc := map[string]func() ([]byte, error){
		"observation": func() ([]byte, error) { return s.EncodeObservation(&o) },
		"enrichment":  func() ([]byte, error) { return s.EncodeEnrichment(&e) },
		"verdict":     func() ([]byte, error) { return s.EncodeVerdict(&v) },
		"feedback":    func() ([]byte, error) { return s.EncodeFeedback(&f) },
		"deadletter":  func() ([]byte, error) { return s.EncodeDeadLetter(&d) },
	}
	for name, fn := range enc {
		b, err := fn()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata/fixtures", name+".v1.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sch, _ := s.Schema(map[string]string{"observation": SchemaObservation, "enrichment": SchemaEnrichment,
			"verdict": SchemaVerdict, "feedback": SchemaFeedback, "deadletter": SchemaDeadLetter}[name])
		if err := os.WriteFile(filepath.Join("../../schemas/history", name+".v1.avsc"), []byte(sch+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkEncodeObservation(b *testing.B) {
	s := newSerde(b)
	o := sampleObservation()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.EncodeObservation(&o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeObservation(b *testing.B) {
	s := newSerde(b)
	o := sampleObservation()
	buf, _ := s.EncodeObservation(&o)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeObservation(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}
