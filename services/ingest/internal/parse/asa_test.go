package parse

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func testASA() *CiscoASA {
	return &CiscoASA{now: func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }}
}

func TestCiscoASAParse(t *testing.T) {
	t.Parallel()
	asa := func(kind string, sev int, e Event) Event {
		e.Vendor, e.Product, e.Kind, e.Severity = "Cisco", "ASA", kind, sev
		return e
	}
	jan5 := time.Date(2024, 1, 5, 8, 52, 35, 0, time.UTC)
	tests := []struct {
		in   string
		want Event
	}{
		{`<166>Jan  5 08:52:35 10.22.8.216 %ASA-6-302013: Built inbound TCP connection 212806031 for outside:198.51.100.7/58633 (198.51.100.7/58633)(LOCAL\user.name) to inside:10.22.8.12/389 (10.22.8.12/389) (user.name)`,
			asa("302013", 0, Event{Time: jan5, SrcIP: "198.51.100.7", SrcPort: 58633, DstIP: "10.22.8.12", DstPort: 389, Protocol: "tcp", Action: "Built", User: `LOCAL\user.name`})},
		{`<166>Jan  5 08:52:35 fw %ASA-6-302013: Built outbound TCP connection 17605397 for outside:69.111.72.9/80 (69.111.72.9/80) to inside:10.22.8.102/55659 (206.111.72.41/40627)`,
			asa("302013", 0, Event{Time: jan5, SrcIP: "10.22.8.102", SrcPort: 55659, DstIP: "69.111.72.9", DstPort: 80, Protocol: "tcp", Action: "Built"})},
		{`<166>Jan  5 08:52:35 fw %ASA-6-302016: Teardown UDP connection 17603649 for outside:206.111.72.2/161 to inside:10.22.8.48/63297 duration 0:02:01 bytes 209`,
			asa("302016", 0, Event{Time: jan5, SrcIP: "206.111.72.2", SrcPort: 161, DstIP: "10.22.8.48", DstPort: 63297, Protocol: "udp", Action: "Teardown"})},
		{`<166>Jan  5 08:52:35 fw %ASA-6-302020: Built outbound ICMP connection for faddr 8.8.8.8/0 gaddr 10.0.0.1/1 laddr 10.0.0.2/1`,
			asa("302020", 0, Event{Time: jan5, SrcIP: "10.0.0.2", DstIP: "8.8.8.8", Protocol: "icmp", Action: "Built"})},
		{`<164>Aug 05 2016 01:02:25: %ASA-4-106023: Deny udp src Inside:10.230.4.88/42350 dst Outside:192.168.2.53/53 by access-group "Inside_access_in" [0x962df600, 0x0]`,
			asa("106023", 2, Event{Time: time.Date(2016, 8, 5, 1, 2, 25, 0, time.UTC), SrcIP: "10.230.4.88", SrcPort: 42350, DstIP: "192.168.2.53", DstPort: 53, Protocol: "udp", Action: "Deny", Rule: "Inside_access_in"})},
		{`%ASA-2-106001: Inbound TCP connection denied from 10.47.32.45/60641 to 10.254.8.193/5060 flags SYN  on interface Inside`,
			asa("106001", 4, Event{SrcIP: "10.47.32.45", SrcPort: 60641, DstIP: "10.254.8.193", DstPort: 5060, Protocol: "tcp", Action: "Deny"})},
		{`%ASA-2-106006: Deny inbound UDP from 81.2.69.1/53 to 10.0.0.1/1234 on interface outside`,
			asa("106006", 4, Event{SrcIP: "81.2.69.1", SrcPort: 53, DstIP: "10.0.0.1", DstPort: 1234, Protocol: "udp", Action: "Deny"})},
		{`%ASA-3-106014: Deny inbound icmp src Inside:10.230.4.87 dst Inside:10.22.75.251 (type 8, code 0)`,
			asa("106014", 3, Event{SrcIP: "10.230.4.87", DstIP: "10.22.75.251", Protocol: "icmp", Action: "Deny"})},
		{`%ASA-6-106100: access-list outside_in denied tcp outside/81.2.69.1(4444) -> inside/10.0.0.5(445) hit-cnt 1 first hit [0x1, 0x0]`,
			asa("106100", 0, Event{SrcIP: "81.2.69.1", SrcPort: 4444, DstIP: "10.0.0.5", DstPort: 445, Protocol: "tcp", Action: "denied", Rule: "outside_in"})},
		{`%ASA-4-710003: TCP access denied by ACL from 81.2.69.1/2345 to outside:10.0.0.1/22`,
			asa("710003", 2, Event{SrcIP: "81.2.69.1", SrcPort: 2345, DstIP: "10.0.0.1", DstPort: 22, Protocol: "tcp", Action: "Deny"})},
		{`%ASA-6-305011: Built dynamic TCP translation from inside:10.22.8.188/64340 to outside:206.111.72.41/2013`,
			asa("305011", 0, Event{SrcIP: "10.22.8.188", SrcPort: 64340, Protocol: "tcp", Action: "Built"})},
		{`%ASA-3-313001: Denied ICMP type=3, code=3 from 198.27.69.147 on interface Outside`,
			asa("313001", 3, Event{SrcIP: "198.27.69.147", Protocol: "icmp", Action: "Deny"})},
		{`%ASA-4-113019: Group = 192.168.140.20, Username = alice, IP = 81.2.69.3, Session disconnected.`,
			asa("113019", 2, Event{SrcIP: "81.2.69.3", User: "alice"})},
		{`%ASA-7-609001: Built local-host inside:67.111.72.204`,
			asa("609001", 0, Event{Action: "Built", Observables: []Observable{{Kind: "ip", Value: "67.111.72.204", Field: "local-host"}}})},
		{`%FTD-4-999999: Something odd from 81.2.69.9:500, and 2001:db8::1.`,
			Event{Vendor: "Cisco", Product: "FTD", Kind: "999999", Severity: 2, Observables: []Observable{
				{Kind: "ip", Value: "81.2.69.9", Field: "message"}, {Kind: "ip", Value: "2001:db8::1", Field: "message"}}}},
	}
	p := testASA()
	for _, tt := range tests {
		t.Run(tt.want.Kind, func(t *testing.T) {
			t.Parallel()
			got, err := p.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q):\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCiscoASAMalformed(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"%ASA-6-: x", "%ASA-6-30201x: Built", "no tag", "%ASA-6-"} {
		_, err := testASA().Parse([]byte(in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != ReasonMalformed {
			t.Errorf("Parse(%q) = %v, want malformed", in, err)
		}
	}
}

func FuzzCiscoASA(f *testing.F) {
	for _, l := range textSampleLines(f, nameCiscoASA) {
		f.Add(l)
	}
	p := NewCiscoASA()
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := p.Parse(raw)
		checkParseResult(t, nameCiscoASA, err)
	})
}

func BenchmarkCiscoASA(b *testing.B) { benchmarkParser(b, NewCiscoASA()) }
