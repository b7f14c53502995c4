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
