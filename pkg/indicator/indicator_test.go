package indicator

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
)

func TestCanonicalTwoSpellingsOneKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind, a, b, want string
	}{
		{"ip", "::ffff:1.2.3.4", "1.2.3.4", "ipv4:1.2.3.4"},
		{"ip", "1[.]2[.]3[.]4", " 1.2.3.4 ", "ipv4:1.2.3.4"},
		{"ip", "fe80::1%eth0", "FE80::1", "ipv6:fe80::1"},
		{"ip", "[2001:DB8::0001]", "2001:db8::1", "ipv6:2001:db8::1"},
		{"domain", "Example.COM.", "example.com", "domain:example.com"},
		{"domain", "bücher.de", "xn--bcher-kva.de", "domain:xn--bcher-kva.de"},
		{"domain", "BÜCHER.de", "bücher.de", "domain:xn--bcher-kva.de"},
		{"domain", "evil[.]example(.)org", "evil.example.org", "domain:evil.example.org"},
		{"url", "HXXP://Example.com:80", "http://example.com/", "url:http://example.com/"},
		{"url", "hxxps[:]//WWW.Example[.]com:443/a/./b/../c?q=1#frag", "https://www.example.com/a/c?q=1", "url:https://www.example.com/a/c?q=1"},
		{"url", "http://user:pw@1.2.3.4:8080/x", "http://1.2.3.4:8080/x", "url:http://1.2.3.4:8080/x"},
		{"url", "http://[::ffff:1.2.3.4]/", "http://1.2.3.4", "url:http://1.2.3.4/"},
		{"url", "http://bücher.de/", "http://xn--bcher-kva.de", "url:http://xn--bcher-kva.de/"},
		{"hash", "44D88612FEA8A8F36DE82E1278ABB02F", "44d88612fea8a8f36de82e1278abb02f", "md5:44d88612fea8a8f36de82e1278abb02f"},
		{"sha1", "3395856CE81F2B7382DEE72602F798B642F14140", "3395856ce81f2b7382dee72602f798b642f14140", "sha1:3395856ce81f2b7382dee72602f798b642f14140"},
		{"hash", "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", "sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"},
	}
	for _, tt := range tests {
		t.Run(tt.a, func(t *testing.T) {
			t.Parallel()
			a, err := Canonical(tt.kind, tt.a)
			if err != nil {
				t.Fatalf("Canonical(%q, %q): %v", tt.kind, tt.a, err)
			}
			b, err := Canonical(tt.kind, tt.b)
			if err != nil {
				t.Fatalf("Canonical(%q, %q): %v", tt.kind, tt.b, err)
			}
			if a.Key() != tt.want || b.Key() != tt.want {
				t.Errorf("keys %q and %q, want both %q", a.Key(), b.Key(), tt.want)
			}
			if err := Validate(a); err != nil {
				t.Errorf("Validate(%v) = %v, want nil", a, err)
			}
		})
	}
}

func TestCanonicalInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind, raw string
		want      error
	}{
		{"ip", "", ErrEmpty},
		{"ip", "1.2.3.4/../x", ErrInvalidIP},
		{"ip", "01.2.3.4", ErrInvalidIP},
		{"ip", "x.x.x.x", ErrInvalidIP},
		{"ip", "222.333.192.166", ErrInvalidIP},
		{events.TypeIPv6, "1.2.3.4", ErrInvalidIP},
		{"domain", "a.com%0d%0a", ErrInvalidDomain},
		{"domain", "a.com\r\nx.org", ErrInvalidDomain},
		{"domain", "localhost", ErrInvalidDomain},
		{"domain", "host.local", ErrNoPublicSuffix},
		{"domain", "example.unknowntld", ErrNoPublicSuffix},
		{"domain", "co.uk", ErrNoPublicSuffix},
		{"domain", "1.2.3.4", ErrInvalidDomain},
		{"domain", "-bad.example.com", ErrInvalidDomain},
		{"domain", "a..example.com", ErrInvalidDomain},
		{"domain", "ad.aspx", ErrNoPublicSuffix},
		{"domain", "xn--zz.com", ErrInvalidDomain},
		{"url", "example.com/path", ErrInvalidURL},
		{"url", "javascript:alert(1)", ErrInvalidURL},
		{"url", "file:///etc/passwd", ErrInvalidURL},
		{"url", "http://a.com:99999/", ErrInvalidURL},
		{"url", "http://host.local/", ErrInvalidURL},
		{"url", "http://a.com/\r\nx", ErrInvalidURL},
		{"hash", "abc", ErrInvalidHash},
		{"hash", "zz88612fea8a8f36de82e1278abb02f0", ErrInvalidHash},
		{"hash", "00000000000000000000000000000000", ErrInvalidHash},
		{events.TypeSHA256, "44d88612fea8a8f36de82e1278abb02f", ErrInvalidHash},
		{"email", "a@b.com", ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tt.kind, tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Canonical(%q, %q) = %v, %v; want error %v", tt.kind, tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ind  events.Indicator
		want error
	}{
		{events.Indicator{Type: events.TypeIPv4, Value: "1.2.3.4"}, nil},
		{events.Indicator{Type: events.TypeIPv4, Value: "1.2.3.4/../x"}, ErrInvalidIP},
		{events.Indicator{Type: events.TypeIPv6, Value: "::ffff:1.2.3.4"}, ErrInvalidIP},
		{events.Indicator{Type: events.TypeIPv6, Value: "2001:DB8::1"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeDomain, Value: "a.com%0d%0a"}, ErrInvalidDomain},
		{events.Indicator{Type: events.TypeDomain, Value: "Example.com"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeDomain, Value: "example.com."}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeDomain, Value: "example.com\n"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeDomain, Value: "bücher.de"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeURL, Value: "http://example.com"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeURL, Value: "http://example.com/a b"}, ErrNotCanonical},
		{events.Indicator{Type: events.TypeURL, Value: "http://example.com/"}, nil},
		{events.Indicator{Type: events.TypeMD5, Value: "44D88612FEA8A8F36DE82E1278ABB02F"}, ErrNotCanonical},
		{events.Indicator{Type: "email", Value: "a@b.com"}, ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.ind.Key(), func(t *testing.T) {
			t.Parallel()
			err := Validate(tt.ind)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate(%q) = %v, want %v", tt.ind.Key(), err, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	if ind, err := ParseKey("domain:example.org"); err != nil || ind.Value != "example.org" {
		t.Fatalf("ParseKey(domain:example.org) = %v, %v", ind, err)
	}
	if _, err := ParseKey("example.org"); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("ParseKey without type: err = %v, want ErrUnknownKind", err)
	}
	if _, err := ParseKey("ipv4:1.2.3.4:80"); err == nil {
		t.Fatal("ParseKey(ipv4:1.2.3.4:80) accepted")
	}
}

func TestDefaultNets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true}, {"172.16.0.1", true}, {"172.32.0.1", false}, {"192.168.1.1", true},
		{"100.64.0.1", true}, {"100.128.0.1", false}, {"127.0.0.1", true}, {"169.254.37.252", true},
		{"192.0.2.1", true}, {"198.51.100.7", true}, {"203.0.113.9", true}, {"198.18.0.1", true},
		{"198.20.0.1", false}, {"224.111.72.252", true}, {"230.1.1.2", true}, {"255.255.255.255", true},
		{"240.0.0.1", true}, {"0.0.0.0", true}, {"::1", true}, {"fd00::555", true}, {"fe80::1", true},
		{"ff02::1", true}, {"2001:db8::5", true}, {"::", true}, {"::ffff:10.0.0.1", true},
		{"8.8.8.8", false}, {"81.2.69.143", false}, {"2a00:1450::1", false},
	}
	nets := DefaultNets()
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			t.Parallel()
			if got := nets.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestParseNets(t *testing.T) {
	t.Parallel()
	n, err := ParseNets(" 10.0.0.0/8, 81.2.69.143 ,2a00::/16,")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{"10.9.9.9": true, "81.2.69.143": true, "81.2.69.144": false, "2a00::1": true, "192.168.1.1": false}
	for ip, want := range checks {
		if got := n.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	d, err := ParseNets("default,81.2.69.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Contains(netip.MustParseAddr("192.168.1.1")) || !d.Contains(netip.MustParseAddr("81.2.69.9")) {
		t.Error("default,81.2.69.0/24 does not contain defaults and the extra range")
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3.4/x"} {
		if _, err := ParseNets(bad); err == nil {
			t.Errorf("ParseNets(%q) accepted", bad)
		}
	}
}

func TestInternalSuffixes(t *testing.T) {
	t.Parallel()
	d := DefaultInternalSuffixes()
	tests := []struct {
		name string
		want bool
	}{
		{"printer.local", true}, {"DC01.CORP.", true}, {"nas.home.arpa", true}, {"x.internal", true},
		{"local", true}, {"notlocal", false}, {"example.com", false}, {"corp.example.com", false},
		{"4.3.2.1.in-addr.arpa", true},
	}
	for _, tt := range tests {
		if got := d.Match(tt.name); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	c, err := ParseInternalSuffixes(".corp.example.com, lan")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Match("pc1.corp.example.com") || c.Match("printer.local") || !c.Match("a.lan") {
		t.Error("configured suffixes do not match as expected")
	}
	if _, err := ParseInternalSuffixes("a b"); err == nil {
		t.Error("ParseInternalSuffixes(\"a b\") accepted")
	}
}
