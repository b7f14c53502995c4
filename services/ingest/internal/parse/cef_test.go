package parse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testCEF() *CEF {
	return &CEF{now: func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }}
}

func TestCEFParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{
			name: "no syslog header, standard keys",
			in:   `CEF:0|Elastic|Vaporware|1.0.0-alpha|18|Web request|low|eventId=3457 requestMethod=POST proto=TCP src=1.128.3.4 spt=33876 dst=192.168.10.1 dpt=443 request=https://www.example.com/cart`,
			want: Event{Vendor: "Elastic", Product: "Vaporware", Kind: "18", Rule: "Web request", Severity: 1,
				SrcIP: "1.128.3.4", DstIP: "192.168.10.1", SrcPort: 33876, DstPort: 443, Protocol: "tcp",
				Observables: []Observable{{Kind: "url", Value: "https://www.example.com/cart", Field: "request"}}},
		},
		{
			name: "RFC 3164 header, space after CEF:, rt with zone, custom labels, translated address",
			in:   `<14>Apr  7 10:10:10 hostname CEF: 0|Palo Alto Networks|PAN-OS|6.1.3|url|THREAT|1|rt=Apr 07 2017 00:10:10 GMT src=10.10.10.10 dst=20.20.20.20 sourceTranslatedAddress=0.0.0.0 cs1Label=Rule cs1=Trusted-to-Untrusted suser= proto=tcp act=alert request=\"www.example.com/\" cs2Label=URL cs2=http://evil.example.org/x cat=(9999)`,
			want: Event{Vendor: "Palo Alto Networks", Product: "PAN-OS", Kind: "url", Rule: "THREAT", Severity: 1,
				Time:  time.Date(2017, 4, 7, 0, 10, 10, 0, time.UTC),
				SrcIP: "10.10.10.10", DstIP: "20.20.20.20", Protocol: "tcp", Action: "alert",
				Observables: []Observable{
					{Kind: "url", Value: "http://www.example.com/", Field: "request"},
					{Kind: "url", Value: "http://evil.example.org/x", Field: "cs2"},
				}},
		},
		{
			name: "header escapes, extension escapes, values with spaces, textual severity",
			in:   `CEF:1|Ven\|dor|Pro\\duct|1|sig|Name with \| pipe|very-high|msg=a\=b c\\d\nline2 act=not blocked shost=ws1 dhost=evil.example.com fileHash=44D88612FEA8A8F36DE82E1278ABB02F duser=bob`,
			want: Event{Vendor: "Ven|dor", Product: `Pro\duct`, Kind: "sig", Rule: "Name with | pipe", Severity: 4,
				Action: "not blocked", SrcHost: "ws1", DstHost: "evil.example.com", User: "bob",
				Observables: []Observable{{Kind: "hash", Value: "44D88612FEA8A8F36DE82E1278ABB02F", Field: "fileHash"}}},
		},
		{
			name: "epoch ms start, deviceSeverity fallback, c6a labels, bare request host, destinationDnsDomain",
			in:   `Jan 17 2020 08:52:09 fw CEF:0|V|P|1|7|N|Unknown|start=1459517280810 deviceSeverity=8 c6a2=2001:db8::1 c6a2Label=Source IPv6 Address c6a3=2a00::1 c6a3Label="Destination IPv6 Address" request=example.com destinationDnsDomain=evil.example.net`,
			want: Event{Vendor: "V", Product: "P", Kind: "7", Rule: "N", Severity: 3,
				Time:  time.UnixMilli(1459517280810).UTC(),
				SrcIP: "2001:db8::1", DstIP: "2a00::1",
				Observables: []Observable{
					{Kind: "domain", Value: "example.com", Field: "request"},
					{Kind: "domain", Value: "evil.example.net", Field: "destinationDnsDomain"},
				}},
		},
		{
			name: "pipe inside extension value, vendor hash keys, empty signature name",
			in:   `CEF:0|Trend Micro|Deep Security Agent|1.2.3|4000000||6|cs6=A | B | C cs6Label=Container TrendMicroDsFileSHA1=3395856CE81F2B7382DEE72602F798B642F14140 act=Delete rt=Jan 17 2020 08:52:10`,
			want: Event{Vendor: "Trend Micro", Product: "Deep Security Agent", Kind: "4000000", Rule: "4000000", Severity: 2,
				Action: "Delete", Time: time.Date(2020, 1, 17, 8, 52, 10, 0, time.UTC),
				Observables: []Observable{{Kind: "hash", Value: "3395856CE81F2B7382DEE72602F798B642F14140", Field: "TrendMicroDsFileSHA1"}}},
		},
		{
			name: "translated addresses used when src/dst absent",
			in:   `CEF:0|V|P|1|7|N|3|sourceTranslatedAddress=192.168.103.254 destinationTranslatedAddress=89.160.20.156 spt=1 dpt=443`,
			want: Event{Vendor: "V", Product: "P", Kind: "7", Rule: "N", Severity: 1,
				SrcIP: "192.168.103.254", DstIP: "89.160.20.156", SrcPort: 1, DstPort: 443},
		},
	}
	p := testCEF()
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

func TestCEFExtensionValues(t *testing.T) {
	t.Parallel()
	got := cefExtension(`msg=This event is padded with whitespace dst=192.168.1.2 src=192.168.3.4     `)
	want := []cefPair{{"msg", "This event is padded with whitespace"}, {"dst", "192.168.1.2"}, {"src", "192.168.3.4"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("padded: got %q, want %q", got, want)
	}
	got = cefExtension(`url=http://a/?x=1&y=2 ad.Error_,Code=3 ad.field[0]=v r=\\ end=x\r`)
	want = []cefPair{{"url", "http://a/?x=1&y=2"}, {"ad.Error_,Code", "3"}, {"ad.field[0]", "v"}, {"r", `\`}, {"end", "x\r"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dotted keys: got %q, want %q", got, want)
	}
}

func TestCEFMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, detail string
	}{
		{`CEF:0|Vendor|Product|1.0|100`, "header has 4 of 7 '|' separators"},
		{`CEF:0|V|P|1|2|N\|6|k=v`, "header has 6 of 7"},
		{`CEF:x|V|P|1|2|N|6|k=v`, `version "x" is not a number`},
		{`hello`, "no CEF: marker"},
	}
	p := testCEF()
	for _, tt := range tests {
		_, err := p.Parse([]byte(tt.in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != ReasonMalformed || !strings.Contains(pe.Detail, tt.detail) {
			t.Errorf("Parse(%q) = %v, want malformed with %q", tt.in, err, tt.detail)
		}
	}
}

func TestCEFSeverity(t *testing.T) {
	t.Parallel()
	tests := map[string]int{"0": 0, "1": 1, "3": 1, "4": 2, "6": 2, "7": 3, "8": 3, "9": 4, "10": 4,
		"Low": 1, "Medium": 2, "High": 3, "Very-High": 4, "very-high": 4, "Unknown": 0}
	for in, want := range tests {
		if got, ok := cefSeverity(in); !ok || got != want {
			t.Errorf("cefSeverity(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := cefSeverity("11"); ok {
		t.Error("cefSeverity(11) accepted")
	}
}

func FuzzCEF(f *testing.F) {
	for _, l := range textSampleLines(f, nameCEF) {
		f.Add(l)
	}
	f.Add([]byte(`CEF:0|a\|b|c\\|d|e|f|g|k=\=\\\n x=`))
	p := NewCEF()
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := p.Parse(raw)
		checkParseResult(t, nameCEF, err)
	})
}

func BenchmarkCEF(b *testing.B) { benchmarkParser(b, NewCEF()) }
