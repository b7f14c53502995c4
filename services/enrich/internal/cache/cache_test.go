package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

func TestKey(t *testing.T) {
	got := Key("criminalip", Fingerprint("secret-1"), events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.7"})
	if !strings.HasPrefix(got, "vigil:enrich:v1:criminalip:") || !strings.HasSuffix(got, ":ipv4:203.0.113.7") {
		t.Fatalf("key %q", got)
	}
	if strings.Contains(got, "secret") {
		t.Fatalf("key %q leaks the credential", got)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"same secret same fingerprint", "k1", "k1", true},
		{"different accounts differ", "k1", "k2", false},
		{"empty is anon", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa, fb := Fingerprint(tt.a), Fingerprint(tt.b)
			if (fa == fb) != tt.same {
				t.Fatalf("Fingerprint(%q)=%q Fingerprint(%q)=%q", tt.a, fa, tt.b, fb)
			}
		})
	}
	if fp := Fingerprint("k1"); len(fp) != 8 {
		t.Fatalf("fingerprint %q: want 8 hex digits", fp)
	}
	if Fingerprint("") != "anon" {
		t.Fatal("empty credential should be anon")
	}
}

func TestCodecRoundTripAndCompact(t *testing.T) {
	e := sampleEntry(events.StatusOK, time.Hour)
	raw, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Exposure.CVEs[0].CVSS != 9.4 || got.Exposure.OpenPorts[0].Tags[0] != "Data Leak" || !got.FetchedAt.Equal(e.FetchedAt) || got.TTL != time.Hour {
		t.Fatalf("round trip lost data: %+v", got)
	}
	nf, err := encode(Entry{Status: events.StatusNotFound, FetchedAt: time.Now(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(nf) > 60 {
		t.Fatalf("not_found entry is %d bytes (%s): zero values should be omitted", len(nf), nf)
	}
}

func TestDecodeRejectsGarbageAndErrors(t *testing.T) {
	for _, raw := range []string{`nope`, `{"s":"error","t":1,"ttl":1000}`, `{"s":"ok","t":0,"ttl":1000}`} {
		if _, err := decode([]byte(raw)); err == nil {
			t.Fatalf("decode(%s) accepted", raw)
		}
	}
}

// TestDecodeReusesNothingVisible decodes a rich entry and then a sparse one: the pooled scratch space must
// not leak the first entry's ports, tags, CVE ports or fields into the second, nor change the first.
func TestDecodeReusesNothingVisible(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond).UTC()
	rich := Entry{Status: events.StatusOK, Fields: map[string]string{"k": "v"}, FetchedAt: now, TTL: time.Hour,
		Exposure: events.Exposure{
			OpenPorts: []events.Port{{Port: 22, Protocol: "tcp", Service: "ssh", Version: "9", Vulnerable: true, Tags: []string{"a"}}, {Port: 80}},
			CVEs:      []events.CVE{{ID: "CVE-1", CVSS: 9.8, Ports: []int32{22}}},
		}}
	sparse := Entry{Status: events.StatusOK, FetchedAt: now, TTL: time.Hour,
		Exposure: events.Exposure{OpenPorts: []events.Port{{Port: 443}}, CVEs: []events.CVE{{ID: "CVE-2"}}}}
	rawRich, err := encode(rich)
	if err != nil {
		t.Fatal(err)
	}
	rawSparse, err := encode(sparse)
	if err != nil {
		t.Fatal(err)
	}
	first, err := decode(rawRich)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := decode(rawSparse)
		if err != nil {
			t.Fatal(err)
		}
		if p := got.Exposure.OpenPorts; len(p) != 1 || p[0].Port != 443 || p[0].Protocol != "" || p[0].Vulnerable || p[0].Tags != nil {
			t.Fatalf("sparse ports %+v", p)
		}
		if c := got.Exposure.CVEs; len(c) != 1 || c[0].ID != "CVE-2" || c[0].CVSS != 0 || c[0].Ports != nil {
			t.Fatalf("sparse cves %+v", c)
		}
		if got.Fields != nil {
			t.Fatalf("sparse fields %v", got.Fields)
		}
	}
	if p := first.Exposure.OpenPorts; len(p) != 2 || p[0].Service != "ssh" || len(p[0].Tags) != 1 || p[0].Tags[0] != "a" || p[1].Port != 80 {
		t.Fatalf("first entry changed: %+v", p)
	}
	if c := first.Exposure.CVEs; len(c) != 1 || c[0].ID != "CVE-1" || len(c[0].Ports) != 1 || first.Fields["k"] != "v" {
		t.Fatalf("first entry changed: %+v %v", c, first.Fields)
	}
}
