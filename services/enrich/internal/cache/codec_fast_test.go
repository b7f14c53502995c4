package cache

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// richEntry uses every field of the wire form.
func richEntry() Entry {
	now := time.Now().Truncate(time.Millisecond).UTC()
	return Entry{Status: events.StatusOK, FetchedAt: now, TTL: 90 * time.Minute,
		Fields: map[string]string{"inbound_score": "Critical", "as_name": "EXAMPLE-CÖLO", "empty": ""},
		Exposure: events.Exposure{
			Malicious: true, InboundScore: 5, OutboundScore: 4, VPN: true, Proxy: true, Tor: true, Hosting: true,
			Cloud: true, Scanner: true, Mobile: true, Darkweb: true, ASN: 64512, ASName: "EXAMPLE", Org: "Ex Ltd",
			Country: "DE", AbuseConfidence: 87, GreyNoiseClass: "malicious", Categories: []string{"tor", "vpn"},
			FirstSeen: now.Add(-time.Hour), LastSeen: now,
			OpenPorts: []events.Port{{Port: 22, Protocol: "tcp", Service: "ssh", Version: "7.4", Vulnerable: true, Tags: []string{"a", "b"}}, {Port: 80}},
			CVEs:      []events.CVE{{ID: "CVE-2021-23017", CVSS: 9.4, Ports: []int32{80}}, {ID: "CVE-1", CVSS: 1e-7}},
		}}
}

// TestFastDecodeTakesEncodedEntries: what encode writes is read by the fast path, and equals what
// encoding/json reads.
func TestFastDecodeTakesEncodedEntries(t *testing.T) {
	for _, e := range []Entry{richEntry(), sampleEntry(events.StatusOK, time.Hour), {Status: events.StatusNotFound, FetchedAt: time.UnixMilli(1_700_000_000_000).UTC(), TTL: time.Hour}} {
		raw, err := encode(e)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := fastDecode(raw)
		if !ok {
			t.Fatalf("fast path refused %s", raw)
		}
		slow, err := decodeJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast and encoding/json differ for %s:\nfast %+v\njson %+v", raw, fast, slow)
		}
	}
}

// TestFastDecodeFallsBack: inputs outside what encode writes leave the fast path, and decode still reads
// the valid ones through encoding/json.
func TestFastDecodeFallsBack(t *testing.T) {
	tests := []struct {
		raw    string
		decode bool // decode (via encoding/json) accepts it
	}{
		{`{"s":"ok","t":1700000000000,"ttl":1000,"f":{"k":"a\"b"}}`, true}, // escape
		{`{"S":"ok","t":1700000000000,"ttl":1000}`, true},                  // key case
		{`{"s":"ok","t":1700000000000,"ttl":1000,"x":1}`, true},            // unknown key
		{`{"s":"ok","t":1700000000000,"ttl":1000,"f":null}`, true},         // null
		{`{"s":"ok","s":"ok","t":1700000000000,"ttl":1000}`, true},         // repeated key
		{`{"s":"ok","t":1700000000000,"ttl":1000,"e":{"in":4294967296}}`, false},
		{`{"s":"ok","t":1.5,"ttl":1000}`, false},
		{`{"s":"ok","t":1700000000000,"ttl":1000,"e":{"cves":[{"id":"x","c":.5}]}}`, false},
		{`{"s":"ok","t":1700000000000,"ttl":1000} x`, false},
		{"{\"s\":\"o\xffk\",\"t\":1700000000000,\"ttl\":1000}", false}, // invalid UTF-8: JSON path replaces it, status no longer ok
	}
	for _, tt := range tests {
		if _, ok := fastDecode([]byte(tt.raw)); ok {
			t.Errorf("fast path accepted %s", tt.raw)
		}
		if _, err := decode([]byte(tt.raw)); (err == nil) != tt.decode {
			t.Errorf("decode(%s) err = %v, want ok=%v", tt.raw, err, tt.decode)
		}
	}
}

// FuzzFastDecode: whenever the fast path accepts an input, it agrees with encoding/json.
func FuzzFastDecode(f *testing.F) {
	for _, e := range []Entry{richEntry(), sampleEntry(events.StatusOK, time.Hour)} {
		raw, err := encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"s":"ok","t":1,"ttl":-0,"e":{"cves":[{"id":"a","c":-1.5e3,"p":[]}],"ports":[],"cat":[]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := fastDecode(raw)
		if !ok {
			return
		}
		slow, err := decodeJSON(raw)
		if !fast.Cacheable() {
			if err == nil {
				t.Fatalf("fast path entry not cacheable but encoding/json accepted %q", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", raw, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("differ for %q:\nfast %+v\njson %+v", raw, fast, slow)
		}
	})
}

// TestFastDecodeManyFields: an evidence map larger than the duplicate-check buffer stays on the fast path,
// and a repeated field key still leaves it.
func TestFastDecodeManyFields(t *testing.T) {
	e := richEntry()
	for i := range 40 {
		e.Fields[string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	raw, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := fastDecode(raw)
	if !ok || !reflect.DeepEqual(got.Fields, e.Fields) {
		t.Fatalf("fast path refused or changed %d fields (ok=%v)", len(e.Fields), ok)
	}
	if _, ok := fastDecode([]byte(`{"s":"ok","f":{"a":"1","a":"2"},"t":1700000000000,"ttl":1000}`)); ok {
		t.Fatal("repeated field key accepted")
	}
}
