package parse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// panosLine builds a CSV record with the given fields set (index → value) after a syslog header.
func panosLine(n int, set map[int]string) string {
	f := make([]string, n)
	f[0], f[1], f[2], f[5] = "1", "2015/01/05 05:38:58", "0006C110285", "1"
	for i, v := range set {
		f[i] = v
	}
	return "<14>Jan  5 05:38:59 PAN1.example.com " + strings.Join(f, ",")
}

func TestPANOSParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{
			name: "sample THREAT vulnerability with quoted misc",
			in:   `<11>Jan  5 05:38:59 PAN1.exampleCustomer.com 1,2015/01/05 05:38:58,0006C110285,THREAT,vulnerability,1,2015/01/05 05:38:58,10.0.0.115,216.0.10.198,0.0.0.0,0.0.0.0,EX-Allow,example\user.name,,web-browsing,vsys1,internal,external,ethernet1/2,ethernet1/1,LOG-Default,2015/01/05 05:38:58,12031,1,54180,80,0,0,0x80004000,tcp,reset-both,"ad.aspx?f=300x250&id=12;tile=1;ord=67AF705D60B1119C0F18BEA336F9",HTTP: IIS Denial Of Service Attempt(40019),any,high,client-to-server,347368099,0x0,10.0.0.0-10.255.255.255,US,0,,1200568889751109656,, `,
			want: Event{Vendor: "Palo Alto Networks", Product: "PAN-OS", Kind: "THREAT/vulnerability",
				Time:  time.Date(2015, 1, 5, 5, 38, 58, 0, time.UTC),
				SrcIP: "10.0.0.115", DstIP: "216.0.10.198", SrcPort: 54180, DstPort: 80, Protocol: "tcp",
				Action: "reset-both", User: `example\user.name`, Severity: 3, Rule: "HTTP: IIS Denial Of Service Attempt(40019)"},
		},
		{
			name: "sample TRAFFIC with destination user",
			in:   `<14>Jan  5 12:51:34 PAN1.exampleCustomer.com 1,2015/01/05 12:51:33,0011C103117,TRAFFIC,end,1,2015/01/05 12:51:33,10.0.0.22,10.1.0.28,0.0.0.0,0.0.0.0,EX-Allow,,example\user.name,vmware,vsys1,v_external,v_internal,ethernet1/2,ethernet1/1,LOG-Default,2015/01/05 12:51:33,33888863,1,62961,902,0,0,0x4019,udp,allow,108,108,0,1,2015/01/05 12:51:01,30,any,0,17754932051,0x0,10.0.0.0-10.255.255.255,10.0.0.0-10.255.255.255,0,1,0 `,
			want: Event{Vendor: "Palo Alto Networks", Product: "PAN-OS", Kind: "TRAFFIC/end",
				Time:  time.Date(2015, 1, 5, 12, 51, 33, 0, time.UTC),
				SrcIP: "10.0.0.22", DstIP: "10.1.0.28", SrcPort: 62961, DstPort: 902, Protocol: "udp",
				Action: "allow", User: `example\user.name`, Rule: "EX-Allow"},
		},
		{
			name: "THREAT url with quoted comma, file digest",
			in: panosLine(44, map[int]string{3: "THREAT", 4: "url", 6: "2020/02/03 04:05:06", 7: "10.0.0.5", 8: "93.184.216.34",
				24: "5000", 25: "443", 29: "tcp", 30: "block-url", 31: `"evil.example.com/a,b?""q"""`, 32: "(9999)",
				34: "informational", 43: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}),
			want: Event{Vendor: "Palo Alto Networks", Product: "PAN-OS", Kind: "THREAT/url",
				Time:  time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC),
				SrcIP: "10.0.0.5", DstIP: "93.184.216.34", SrcPort: 5000, DstPort: 443, Protocol: "tcp",
				Action: "block-url", Rule: "(9999)",
				Observables: []Observable{
					{Kind: "url", Value: `https://evil.example.com/a,b?"q"`, Field: "url"},
					{Kind: "hash", Value: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", Field: "file_digest"},
				}},
		},
	}
	p := NewPANOS()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPANOSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, reason, detail string
	}{
		{panosLine(20, map[int]string{3: "TRAFFIC"}), ReasonMalformed, "TRAFFIC record has 20 fields, need at least 31"},
		{panosLine(33, map[int]string{3: "THREAT"}), ReasonMalformed, "THREAT record has 33 fields, need at least 35"},
		{panosLine(40, map[int]string{3: "SYSTEM"}), ReasonUnsupported, "log type SYSTEM"},
		{panosLine(40, map[int]string{3: "TRAFFIC", 12: `"open`}), ReasonMalformed, "unterminated quote in field 12"},
		{"no csv here", ReasonMalformed, "no ',<receive time>"},
	}
	for _, tt := range tests {
		_, err := NewPANOS().Parse([]byte(tt.in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != tt.reason || !strings.Contains(pe.Detail, tt.detail) {
			t.Errorf("Parse(%.80q) = %v, want %s with %q", tt.in, err, tt.reason, tt.detail)
		}
	}
}

func FuzzPANOS(f *testing.F) {
	for _, l := range textSampleLines(f, namePANOS) {
		f.Add(l)
	}
	p := NewPANOS()
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := p.Parse(raw)
		checkParseResult(t, namePANOS, err)
	})
}

func BenchmarkPANOS(b *testing.B) { benchmarkParser(b, NewPANOS()) }
