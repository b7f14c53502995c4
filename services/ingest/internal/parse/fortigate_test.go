package parse

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestFortiGateParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{
			name: "syslog header, quoted and bare values, eventtime seconds",
			in:   `Jan  6 19:47:37 fw01 date=2021-01-06 time=11:17:02 devname="fw01" logid="0000000013" type="traffic" subtype="forward" level="notice" eventtime=1609960622 srcip=10.192.168.121 srcport=55468 dstip=95.192.16.56 dstport=53 proto=17 action="accept" policyid=1 service="DNS"`,
			want: Event{Vendor: "Fortinet", Product: "FortiGate", Kind: "traffic/forward", Time: time.Unix(1609960622, 0).UTC(),
				SrcIP: "10.192.168.121", DstIP: "95.192.16.56", SrcPort: 55468, DstPort: 53, Protocol: "udp",
				Action: "accept", Severity: 1, Rule: "policy 1"},
		},
		{
			name: "date time tz, utm webfilter with hostname and path url, user, utmaction",
			in:   `date=2020-09-28 time=15:37:02 tz="-0700" logid="0316013056" type="utm" subtype="webfilter" level="warning" srcip=10.1.100.11 dstip=93.184.216.34 dstport=443 proto=6 service="HTTPS" action="passthrough" utmaction="block" hostname="Evil.Example.com" url="/dl/x.exe" user="bob" policyname="out"`,
			want: Event{Vendor: "Fortinet", Product: "FortiGate", Kind: "utm/webfilter", Time: time.Date(2020, 9, 28, 22, 37, 2, 0, time.UTC),
				SrcIP: "10.1.100.11", DstIP: "93.184.216.34", DstPort: 443, Protocol: "tcp", Action: "block",
				User: "bob", Severity: 2, Rule: "out", DstHost: "Evil.Example.com",
				Observables: []Observable{
					{Kind: "domain", Value: "Evil.Example.com", Field: "hostname"},
					{Kind: "url", Value: "https://Evil.Example.com/dl/x.exe", Field: "url"},
				}},
		},
		{
			name: "ips attack, virus hash, dns qname, nanosecond eventtime, unterminated quote",
			in:   `date=2019-05-13 time=11:20:54 logid="0419016384" type="utm" subtype="ips" eventtime=1557771654587081441 severity="critical" srcip=81.2.69.142 dstip=10.1.100.11 attack="Eicar.Virus.Test.Signature" action="dropped" qname="c2.example.net" filehash="275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f" user="N/A" msg="open quote`,
			want: Event{Vendor: "Fortinet", Product: "FortiGate", Kind: "utm/ips", Time: time.Unix(0, 1557771654587081441).UTC(),
				SrcIP: "81.2.69.142", DstIP: "10.1.100.11", Action: "dropped", Severity: 4, Rule: "Eicar.Virus.Test.Signature",
				Observables: []Observable{
					{Kind: "domain", Value: "c2.example.net", Field: "qname"},
					{Kind: "hash", Value: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", Field: "filehash"},
				}},
		},
	}
	p := NewFortiGate()
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

func TestFortiGateMalformed(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "date=2020-01-01 logid=1", "no pairs at all"} {
		_, err := NewFortiGate().Parse([]byte(in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != ReasonMalformed {
			t.Errorf("Parse(%q) = %v, want malformed", in, err)
		}
	}
}

func FuzzFortiGate(f *testing.F) {
	for _, l := range textSampleLines(f, nameFortiGate) {
		f.Add(l)
	}
	p := NewFortiGate()
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := p.Parse(raw)
		checkParseResult(t, nameFortiGate, err)
	})
}

func BenchmarkFortiGate(b *testing.B) { benchmarkParser(b, NewFortiGate()) }
