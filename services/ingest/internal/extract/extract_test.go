package extract

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
	"github.com/vigilsec/vigil/services/ingest/internal/parse"
)

// fakeAllow lists indicators by key.
type fakeAllow map[string]string

func (f fakeAllow) Match(ind events.Indicator) (events.ListMatch, bool) {
	r, ok := f[ind.Key()]
	return events.ListMatch{List: "test", Reason: r}, ok
}

var _ Matcher = fakeAllow(nil)

type obsSummary struct {
	Key, Field, Direction, Action, Asset, AssetHost string
	Allow                                           string
}

func summarise(obs []events.Observation) []obsSummary {
	var out []obsSummary
	for _, o := range obs {
		s := obsSummary{Key: o.Indicator.Key(), Field: o.Field, Direction: o.Sighting.Direction,
			Action: o.Sighting.Action, Asset: o.Sighting.AssetIP, AssetHost: o.Sighting.AssetHost}
		if o.Allowlist != nil {
			s.Allow = o.Allowlist.Reason
		}
		out = append(out, s)
	}
	return out
}

func TestExtract(t *testing.T) {
	t.Parallel()
	x := New(Config{Allow: fakeAllow{"domain:allowed.example.com": "cdn"}})
	tests := []struct {
		name        string
		ev          parse.Event
		want        []obsSummary
		wantDropped map[string]int
	}{
		{
			name: "outbound: internal asset, external destination, host names",
			ev: parse.Event{SrcIP: "10.0.0.5", DstIP: "::ffff:81.2.69.142", SrcHost: "WS01.corp", DstHost: "Evil.Example.COM.",
				Action: "accept"},
			want: []obsSummary{
				{Key: "ipv4:81.2.69.142", Field: "dst_ip", Direction: "outbound", Action: "allowed", Asset: "10.0.0.5", AssetHost: "ws01.corp"},
				{Key: "domain:evil.example.com", Field: "dst_host", Direction: "outbound", Action: "allowed", Asset: "10.0.0.5", AssetHost: "ws01.corp"},
			},
			wantDropped: map[string]int{DropInternal: 1},
		},
		{
			name: "inbound, deny",
			ev:   parse.Event{SrcIP: "81.2.69.1", DstIP: "192.168.1.10", DstHost: "srv1", Action: "Deny"},
			want: []obsSummary{
				{Key: "ipv4:81.2.69.1", Field: "src_ip", Direction: "inbound", Action: "blocked", Asset: "192.168.1.10", AssetHost: "srv1"},
			},
			wantDropped: map[string]int{DropInternal: 1},
		},
		{
			name:        "both internal",
			ev:          parse.Event{SrcIP: "10.0.0.1", DstIP: "fd00::1", Action: "drop"},
			wantDropped: map[string]int{DropInternal: 2},
		},
		{
			name: "both external: unknown direction, no asset",
			ev:   parse.Event{SrcIP: "81.2.69.1", DstIP: "81.2.69.2", Action: "reset-both"},
			want: []obsSummary{
				{Key: "ipv4:81.2.69.1", Field: "src_ip", Direction: "unknown", Action: "blocked"},
				{Key: "ipv4:81.2.69.2", Field: "dst_ip", Direction: "unknown", Action: "blocked"},
			},
		},
		{
			name: "observables: dedup, internal URL/domain, invalid, allow-list tag, hashes",
			ev: parse.Event{SrcIP: "10.1.1.1", DstIP: "81.2.69.1", Action: "alert", Observables: []parse.Observable{
				{Kind: "ip", Value: "81.2.69.1", Field: "dns.answer"},
				{Kind: "url", Value: "hxxp://81.2.69.1:80", Field: "http.url"},
				{Kind: "url", Value: "http://intranet.corp/login", Field: "http.url"},
				{Kind: "url", Value: "http://10.0.0.9/x", Field: "http.url"},
				{Kind: "domain", Value: "printer.local", Field: "dns.rrname"},
				{Kind: "domain", Value: "allowed.example.com", Field: "dns.rrname"},
				{Kind: "domain", Value: "bad..name", Field: "dns.rrname"},
				{Kind: "hash", Value: "44D88612FEA8A8F36DE82E1278ABB02F", Field: "md5"},
				{Kind: "sha256", Value: "44D88612FEA8A8F36DE82E1278ABB02F", Field: "sha256"},
				{Kind: "ip", Value: "x.x.x.x", Field: "other"},
			}},
			want: []obsSummary{
				{Key: "ipv4:81.2.69.1", Field: "dst_ip", Direction: "outbound", Action: "alerted", Asset: "10.1.1.1"},
				{Key: "url:http://81.2.69.1/", Field: "http.url", Direction: "outbound", Action: "alerted", Asset: "10.1.1.1"},
				{Key: "domain:allowed.example.com", Field: "dns.rrname", Direction: "outbound", Action: "alerted", Asset: "10.1.1.1", Allow: "cdn"},
				{Key: "md5:44d88612fea8a8f36de82e1278abb02f", Field: "md5", Direction: "outbound", Action: "alerted", Asset: "10.1.1.1"},
			},
			wantDropped: map[string]int{DropInternal: 4, DropInvalid: 3},
		},
		{
			name: "no addresses: EDR host is the asset, hash observed",
			ev: parse.Event{SrcHost: "LAPTOP-7", Action: "quarantined", Observables: []parse.Observable{
				{Kind: "sha1", Value: "3395856ce81f2b7382dee72602f798b642f14140", Field: "sha1"}}},
			want: []obsSummary{
				{Key: "sha1:3395856ce81f2b7382dee72602f798b642f14140", Field: "sha1", Direction: "unknown", Action: "blocked", AssetHost: "laptop-7"},
			},
		},
		{
			name: "unspecified source is absent",
			ev:   parse.Event{SrcIP: "0.0.0.0", DstIP: "81.2.69.9"},
			want: []obsSummary{
				{Key: "ipv4:81.2.69.9", Field: "dst_ip", Direction: "unknown", Action: "unknown"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs, dropped := x.Extract(tt.ev, Meta{Topic: "raw.fw", Partition: 3, Offset: 42, Format: "test"})
			if got := summarise(obs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("observations:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(dropped, tt.wantDropped) {
				t.Errorf("dropped = %v, want %v", dropped, tt.wantDropped)
			}
		})
	}
}

func TestExtractMetaAndTimes(t *testing.T) {
	t.Parallel()
	x := New(Config{})
	ingest := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	evTime := time.Date(2024, 4, 30, 23, 0, 0, 0, time.UTC)
	ev := parse.Event{Vendor: "Fortinet", Product: "FortiGate", SrcIP: "10.0.0.1", DstIP: "81.2.69.1",
		SrcPort: 5555, DstPort: 443, Protocol: "TCP", User: "bob", Severity: 9, Rule: "r1", Action: "deny"}
	meta := Meta{Topic: "raw.fortigate", Partition: 2, Offset: 77, Format: "fortigate", IngestTime: ingest}

	obs, _ := x.Extract(ev, meta)
	if len(obs) != 1 {
		t.Fatalf("got %d observations, want 1", len(obs))
	}
	want := events.Observation{
		Indicator: events.Indicator{Type: events.TypeIPv4, Value: "81.2.69.1"}, Field: "dst_ip",
		EventTime: ingest, IngestTime: ingest,
		Producer: events.Producer{Topic: "raw.fortigate", Partition: 2, Offset: 77, Format: "fortigate", Vendor: "Fortinet", Product: "FortiGate"},
		Sighting: events.Sighting{AssetIP: "10.0.0.1", User: "bob", Direction: events.DirectionOutbound, Action: events.ActionBlocked,
			Severity: 4, Rule: "r1", SrcPort: 5555, DstPort: 443, Protocol: "tcp", Count: 1},
	}
	if !reflect.DeepEqual(obs[0], want) {
		t.Errorf("zero event time:\n got %+v\nwant %+v", obs[0], want)
	}
	ev.Time = evTime
	obs, _ = x.Extract(ev, meta)
	if !obs[0].EventTime.Equal(evTime) {
		t.Errorf("EventTime = %v, want the event's %v", obs[0].EventTime, evTime)
	}
}

// TestExtractNeverEmitsInternal feeds internal addresses and names in every field and checks
// that none of them comes out as an indicator.
func TestExtractNeverEmitsInternal(t *testing.T) {
	t.Parallel()
	nets, err := indicator.ParseNets("default,81.2.69.0/24")
	if err != nil {
		t.Fatal(err)
	}
	x := New(Config{Internal: nets})
	internal := []string{"10.1.2.3", "172.16.9.9", "192.168.0.1", "100.64.1.1", "127.0.0.1", "169.254.1.1",
		"192.0.2.5", "198.51.100.5", "203.0.113.5", "198.18.0.1", "224.0.0.251", "255.255.255.255", "240.0.0.1",
		"::1", "fe80::1%eth0", "fd12::1", "ff02::1", "2001:db8::9", "::ffff:10.0.0.1", "81.2.69.77", "[::ffff:192.168.1.1]"}
	names := []string{"host.local", "dc01.corp", "nas.home.arpa", "WS-01", "x.internal.", "srv.lan", "a.localdomain"}
	var obsIn []parse.Observable
	for _, a := range internal {
		obsIn = append(obsIn,
			parse.Observable{Kind: "ip", Value: a},
			parse.Observable{Kind: "url", Value: "http://" + bracket(a) + "/x"},
			parse.Observable{Kind: "domain", Value: a})
	}
	for _, n := range names {
		obsIn = append(obsIn, parse.Observable{Kind: "domain", Value: n}, parse.Observable{Kind: "url", Value: "https://" + n + "/"})
	}
	for i, a := range internal {
		b := internal[(i+1)%len(internal)]
		ev := parse.Event{SrcIP: a, DstIP: b, SrcHost: names[i%len(names)], DstHost: a, Observables: obsIn}
		obs, dropped := x.Extract(ev, Meta{})
		for _, o := range obs {
			t.Errorf("event %d emitted %s", i, o.Indicator.Key())
		}
		if dropped[DropInternal] == 0 {
			t.Errorf("event %d: nothing counted as internal", i)
		}
	}
}

func bracket(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() && !ip.Is4In6() {
		return "[" + ip.WithZone("").String() + "]"
	}
	return a
}

func TestAction(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		// Suricata
		"allowed": "allowed", "blocked": "blocked",
		// Fortinet
		"accept": "allowed", "close": "allowed", "deny": "blocked", "dropped": "blocked", "passthrough": "allowed",
		"timeout": "allowed", "server-rst": "allowed", "pass": "allowed",
		// PAN-OS
		"allow": "allowed", "drop": "blocked", "reset-both": "blocked", "reset-client": "blocked", "reset-server": "blocked",
		"alert": "alerted", "block-url": "blocked", "drop-icmp": "blocked", "sinkhole": "blocked", "continue": "allowed",
		// ASA
		"Built": "allowed", "Teardown": "allowed", "Deny": "blocked", "denied": "blocked", "permitted": "allowed", "discarded": "blocked",
		// CEF act
		"Accept": "allowed", "Drop": "blocked", "Refuse": "blocked", "Bypass": "allowed", "not blocked": "alerted",
		"detectOnly": "alerted", "Delete": "blocked", " BLOCK ": "blocked",
		// EDR
		"detected": "alerted", "quarantined": "blocked", "prevented": "blocked",
		// unknown
		"": "unknown", "login": "unknown", "Retrieve password": "unknown",
	}
	for in, want := range tests {
		if got := Action(in); got != want {
			t.Errorf("Action(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCollapser(t *testing.T) {
	t.Parallel()
	mk := func(key, asset, action string, partition int32, offset int64, count int32) events.Observation {
		ind, err := indicator.ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return events.Observation{Indicator: ind, Producer: events.Producer{Topic: "t", Partition: partition, Offset: offset},
			Sighting: events.Sighting{AssetIP: asset, Action: action, Count: count}}
	}
	in := []events.Observation{
		mk("ipv4:81.2.69.1", "10.0.0.1", "blocked", 0, 10, 1),
		mk("ipv4:81.2.69.1", "10.0.0.1", "blocked", 0, 11, 1),
		mk("ipv4:81.2.69.1", "10.0.0.2", "blocked", 0, 12, 1), // other asset
		mk("ipv4:81.2.69.1", "10.0.0.1", "allowed", 0, 13, 1), // other action
		mk("ipv4:81.2.69.1", "10.0.0.1", "blocked", 1, 14, 1), // other partition
		mk("domain:example.com", "10.0.0.1", "blocked", 0, 15, 0),
		mk("ipv4:81.2.69.1", "10.0.0.1", "blocked", 0, 16, 3),
		mk("domain:example.com", "10.0.0.1", "blocked", 0, 17, 1),
	}
	got := Collapser{}.Collapse(in)
	type row struct {
		key    string
		offset int64
		count  int32
	}
	var rows []row
	for _, o := range got {
		rows = append(rows, row{o.Indicator.Key(), o.Producer.Offset, o.Sighting.Count})
	}
	want := []row{{"ipv4:81.2.69.1", 10, 5}, {"ipv4:81.2.69.1", 12, 1}, {"ipv4:81.2.69.1", 13, 1}, {"ipv4:81.2.69.1", 14, 1}, {"domain:example.com", 15, 2}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("Collapse:\n got %v\nwant %v", rows, want)
	}
	if one := (Collapser{}).Collapse(in[:1]); len(one) != 1 {
		t.Errorf("Collapse of one = %d observations", len(one))
	}
	if n := addCount(2147483000, 1000); n != 2147483647 {
		t.Errorf("addCount overflow = %d, want MaxInt32", n)
	}
}

func BenchmarkExtract(b *testing.B) {
	x := New(Config{})
	ev := parse.Event{SrcIP: "10.0.0.5", DstIP: "81.2.69.142", DstHost: "evil.example.com", Action: "deny",
		Observables: []parse.Observable{{Kind: "url", Value: "http://evil.example.com/a"}, {Kind: "hash", Value: "44d88612fea8a8f36de82e1278abb02f"}}}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = x.Extract(ev, Meta{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// AppendExtract appends after what dst holds, leaves it alone, and dedupes within the record only.
func TestAppendExtract(t *testing.T) {
	t.Parallel()
	x := New(Config{})
	ev := parse.Event{SrcIP: "10.0.0.5", DstIP: "185.220.101.4", Observables: []parse.Observable{{Kind: "ip", Value: "185.220.101.4", Field: "x"}}}
	prior := events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "185.220.101.4"}, Field: "prior"}
	got := x.AppendExtract([]events.Observation{prior}, ev, Meta{Offset: 7})
	if len(got) != 2 {
		t.Fatalf("got %d observations, want the prior one and one new (the duplicate observable collapsed)", len(got))
	}
	if got[0].Field != "prior" || got[0].Producer.Offset != 0 {
		t.Fatalf("prior observation changed: %+v", got[0])
	}
	if got[1].Indicator != prior.Indicator || got[1].Producer.Offset != 7 || got[1].Field != "dst_ip" {
		t.Fatalf("new observation %+v, want dst_ip 185.220.101.4 at offset 7", got[1])
	}
	want, _ := x.Extract(ev, Meta{Offset: 7})
	if len(want) != 1 || want[0].Indicator != got[1].Indicator {
		t.Fatalf("Extract = %+v, want the same observation as AppendExtract", want)
	}
}
