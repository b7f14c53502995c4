package cache

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// TestAppendEntryMatchesEncodingJSON: the reflection-free encoder writes exactly the bytes encoding/json
// writes for the wire form, including escapes, empty-but-present slices, exponent floats and stale Sorted.
func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123).UTC()
	stale := richEntry()
	stale.Sorted = events.SortedFields{"x", "y"} // out of step with Fields: must not be trusted
	sorted := richEntry()
	sorted.Sorted = events.SortFields(sorted.Fields)
	cases := map[string]Entry{
		"rich":       richEntry(),
		"sorted":     sorted,
		"stale":      stale,
		"sample":     sampleEntry(events.StatusOK, time.Hour),
		"not found":  {Status: events.StatusNotFound, FetchedAt: at, TTL: time.Minute},
		"zero":       {},
		"escapes":    {Status: "ok", Fields: map[string]string{"q\"k": "a\\b", "html": "<a href='x'>&</a>", "ctl": "\x01\t\n", "utf8": "Zürich ✓", "bad": "\xff\xfe", "ls": "\u2028"}, FetchedAt: at, TTL: time.Second},
		"empty cats": {Status: "ok", Exposure: events.Exposure{Categories: []string{}}, FetchedAt: at, TTL: time.Second},
		"empty map":  {Status: "ok", Fields: map[string]string{}, FetchedAt: at, TTL: time.Second},
		"floats": {Status: "ok", FetchedAt: at, TTL: time.Second, Exposure: events.Exposure{CVEs: []events.CVE{
			{ID: "a", CVSS: 1e-7}, {ID: "b", CVSS: 1e21}, {ID: "c", CVSS: 7.25}, {ID: "d", CVSS: -3}, {ID: "e", CVSS: 123456789.125}, {ID: "f", Ports: []int32{-1, 0, 65535}},
		}}},
		"ports": {Status: "ok", FetchedAt: at, TTL: time.Second, Exposure: events.Exposure{OpenPorts: []events.Port{
			{}, {Port: 1, Tags: []string{}}, {Port: 2, Tags: []string{"", "<>"}, Version: "1&2"},
		}, FirstSeen: at, ASN: -5, InboundScore: -1}},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			want, werr := encodeJSON(e)
			got, gerr := encode(e)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("errors differ: encoding/json %v, fast %v", werr, gerr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes differ:\nfast %s\njson %s", got, want)
			}
		})
	}
}

// TestAppendEntryRejectsNonFinite: NaN and infinite CVSS scores are errors, as with encoding/json.
func TestAppendEntryRejectsNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := Entry{Status: "ok", Exposure: events.Exposure{CVEs: []events.CVE{{ID: "x", CVSS: f}}}}
		if _, err := encode(e); err == nil {
			t.Errorf("CVSS %v encoded without error", f)
		}
	}
}

// FuzzAppendEntry compares the fast encoder with encoding/json over arbitrary strings and numbers.
func FuzzAppendEntry(f *testing.F) {
	f.Add("ok", "k", "v", "tcp", "CVE-2021-1", 9.5, int64(64512), int32(443))
	f.Add("", "<", "\xff", "", "", 1e-9, int64(-1), int32(-7))
	f.Fuzz(func(t *testing.T, status, k, v, proto, cve string, cvss float64, asn int64, port int32) {
		e := Entry{Status: status, Fields: map[string]string{k: v, "z" + k: v + k}, FetchedAt: time.UnixMilli(asn).UTC(), TTL: time.Duration(asn),
			Exposure: events.Exposure{ASN: asn, ASName: v, Categories: []string{k},
				OpenPorts: []events.Port{{Port: port, Protocol: proto, Tags: []string{v}}},
				CVEs:      []events.CVE{{ID: cve, CVSS: cvss, Ports: []int32{port}}}}}
		want, werr := encodeJSON(e)
		got, gerr := encode(e)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("errors differ: encoding/json %v, fast %v", werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("bytes differ:\nfast %s\njson %s", got, want)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e := sampleEntry(events.StatusOK, time.Hour) // printable ASCII, like provider answers
	e.Sorted = events.SortFields(e.Fields)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encode(e)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodeJSON(e)
		}
	})
}
