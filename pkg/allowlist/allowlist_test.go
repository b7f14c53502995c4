package allowlist

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

var (
	shippedOnce sync.Once
	shippedSet  *Set
	shippedErr  error
)

func loadShipped(t testing.TB) *Set {
	t.Helper()
	shippedOnce.Do(func() {
		lists, err := Embedded([]string{All})
		if err != nil {
			shippedErr = err
			return
		}
		shippedSet, shippedErr = Compile(lists, Options{})
	})
	if shippedErr != nil {
		t.Fatalf("compile shipped lists: %v", shippedErr)
	}
	return shippedSet
}

func ip(v string) events.Indicator {
	if strings.Contains(v, ":") {
		return events.Indicator{Type: events.TypeIPv6, Value: v}
	}
	return events.Indicator{Type: events.TypeIPv4, Value: v}
}

func dom(v string) events.Indicator { return events.Indicator{Type: events.TypeDomain, Value: v} }

func TestCompileMatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	lists := []List{
		{Name: "local", Local: true, Type: TypeCIDR, Entries: []Entry{
			{Value: "10.1.2.0/24", Reason: "own egress"},
			{Value: "10.9.0.0/16", Reason: "expired scanner", Expires: now.Add(-time.Hour)},
			{Value: "10.8.0.0/16", Reason: "future", Expires: now.Add(time.Hour)},
			{Value: "partner.example", Type: TypeHostname, Reason: "partner"},
			{Value: "old.example", Type: TypeHostname, Reason: "expired", Expires: now.Add(-time.Minute)},
			{Value: `^evil-test-[0-9]+\.example$`, Type: TypeRegex, Reason: "lab hosts"},
		}},
		{Name: "wide", Type: TypeCIDR, Description: "wide range", Attributes: []string{"ip-src", "ip-dst"}, Entries: []Entry{
			{Value: "10.0.0.0/8"}, {Value: "2001:db8::/32"}, {Value: "10.1.2.0/24"},
		}},
		{Name: "narrow", Type: TypeCIDR, Description: "narrow", Entries: []Entry{
			{Value: "10.1.2.128/25"}, {Value: "2001:db8:1::1"},
		}},
		{Name: "aws", Type: TypeHostname, Description: "aws", Attributes: []string{"domain", "hostname", "url"}, Entries: []Entry{
			{Value: "amazonaws.com"}, {Value: ".cloudfront.net"},
		}},
		{Name: "exact", Type: TypeString, Description: "exact", Attributes: []string{"domain", "md5"}, Entries: []Entry{
			{Value: "Example.COM"}, {Value: "d41d8cd98f00b204e9800998ecf8427e"}, {Value: ".google.de"},
		}},
		{Name: "sandbox", Type: TypeSubstring, Description: "sandboxes", Attributes: []string{"domain", "url"}, Entries: []Entry{
			{Value: "any.run"},
		}},
	}
	s, err := Compile(lists, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ind      events.Indicator
		wantList string // empty: no match
	}{
		{"ip in wide", ip("10.200.0.1"), "wide"},
		{"most specific wins", ip("10.1.2.200"), "narrow"},
		{"local beats identical prefix", ip("10.1.2.5"), "local"},
		{"expired falls back to parent", ip("10.9.1.1"), "wide"},
		{"unexpired local", ip("10.8.1.1"), "local"},
		{"outside", ip("11.0.0.1"), ""},
		{"ipv6 in prefix", ip("2001:db8:ffff::1"), "wide"},
		{"ipv6 host entry", ip("2001:db8:1::1"), "narrow"},
		{"ipv6 next to host entry", ip("2001:db8:1::2"), "wide"},
		{"ipv6 outside", ip("2001:db9::1"), ""},
		{"hostname itself", dom("amazonaws.com"), "aws"},
		{"hostname subdomain", dom("s3.eu-west-1.amazonaws.com"), "aws"},
		{"hostname lookalike", dom("notamazonaws.com"), ""},
		{"hostname suffix lookalike", dom("amazonaws.com.evil.io"), ""},
		{"leading dot hostname", dom("d1.cloudfront.net"), "aws"},
		{"string exact case-insensitive", dom("example.com"), "exact"},
		{"string is not suffix", dom("www.example.com"), ""},
		{"string leading dot acts as hostname", dom("mail.google.de"), "exact"},
		{"hash exact", events.Indicator{Type: events.TypeMD5, Value: "d41d8cd98f00b204e9800998ecf8427e"}, "exact"},
		{"attribute mask: no sha1 in exact", events.Indicator{Type: events.TypeSHA1, Value: "d41d8cd98f00b204e9800998ecf8427e"}, ""},
		{"substring", dom("app.any.run"), "sandbox"},
		{"substring in url", events.Indicator{Type: events.TypeURL, Value: "https://app.any.run/tasks/1"}, "sandbox"},
		{"url host via hostname", events.Indicator{Type: events.TypeURL, Value: "https://bucket.s3.amazonaws.com/x"}, "aws"},
		{"regex", dom("evil-test-42.example"), "local"},
		{"regex no match", dom("evil-test-x.example"), ""},
		{"local hostname", dom("www.partner.example"), "local"},
		{"expired hostname", dom("old.example"), ""},
		{"bad ip", ip("not-an-ip"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := s.Match(tt.ind)
			if got := map[bool]string{true: m.List}[ok]; got != tt.wantList {
				t.Fatalf("Match(%v) = %q (%v), want %q", tt.ind, m.List, m.Reason, tt.wantList)
			}
			if ok && m.Reason == "" {
				t.Fatalf("Match(%v): empty reason", tt.ind)
			}
		})
	}
}

func TestShippedLists(t *testing.T) {
	t.Parallel()
	s := loadShipped(t)
	tests := []struct {
		ind      events.Indicator
		wantList string
	}{
		{ip("8.8.8.8"), "public-dns-v4"},
		{ip("1.1.1.1"), "public-dns-v4"},
		{ip("52.95.110.1"), "vpn-ipv4"}, // a /24 inside an AWS /16: more specific
		{ip("2001:4860:4864::1"), "google-gmail-sending-ips"},
		{ip("fe80::1"), "ipv6-linklocal"},
		{ip("146.112.61.104"), "sinkholes"}, // host entries; sinkholes listed first by name
		{dom("s3.amazonaws.com"), ""},       // no hostname list holds amazonaws.com in the subset
		{dom("www.google.de"), "google"},
		{dom("app.any.run"), "security-provider-blogpost"}, // hostname before substring
		{events.Indicator{Type: events.TypeSHA256, Value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, "common-ioc-false-positive"},
		{ip("203.0.113.7"), "rfc5735"},
	}
	for _, tt := range tests {
		m, ok := s.Match(tt.ind)
		if tt.wantList == "" {
			continue // only presence checks below
		}
		if !ok || m.List != tt.wantList {
			// Several lists overlap; accept any match but require the expected
			// list to be the most specific when prefixes differ.
			t.Errorf("Match(%v) = %q %v, want %q", tt.ind, m.List, ok, tt.wantList)
		}
	}
	all := s.MatchAll(ip("52.95.110.1"))
	if !hasList(all, "amazon-aws") || !hasList(all, "vpn-ipv4") || all[0].List != "vpn-ipv4" {
		t.Errorf("MatchAll(52.95.110.1) = %v, want vpn-ipv4 then amazon-aws", all)
	}
	if all := s.MatchAll(dom("app.any.run")); !hasList(all, "automated-malware-analysis") {
		t.Errorf("MatchAll(app.any.run) = %v, want automated-malware-analysis", all)
	}
	if _, ok := s.Match(dom("notamazonaws.com")); ok {
		t.Error("notamazonaws.com matched")
	}
	if s.Len() < 100000 {
		t.Errorf("Len = %d, want all shipped entries", s.Len())
	}
}

func TestEmbeddedSelection(t *testing.T) {
	t.Parallel()
	lists, err := Embedded([]string{"rfc1918", "amazon-aws"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != 2 || lists[0].Name != "rfc1918" || lists[1].Name != "amazon-aws" {
		t.Fatalf("lists = %v", lists)
	}
	if _, err := Embedded([]string{"no-such-list"}); err == nil {
		t.Fatal("unknown list accepted")
	}
	if n := len(EmbeddedNames()); n != 99 {
		t.Fatalf("EmbeddedNames = %d, want 99", n)
	}
}

func TestParseLocal(t *testing.T) {
	t.Parallel()
	good := `
lists:
  - name: partners
    description: partner proxies
    entries:
      - {value: 198.51.100.0/24, reason: ACME proxy, expires: 2030-01-01T00:00:00Z}
      - {value: portal.partner.example, type: hostname, reason: ACME}
`
	lists, err := ParseLocal("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != 1 || len(lists[0].Entries) != 2 || lists[0].Entries[0].Type != TypeCIDR || lists[0].Entries[0].Expires.Year() != 2030 {
		t.Fatalf("lists = %+v", lists)
	}
	bad := []string{
		"lists:\n  - name: x\n    entries:\n      - {value: a, type: glob}\n",
		"lists:\n  - entries: []\n",
		"lists:\n  - name: x\n    entries:\n      - {value: ''}\n",
		"lists: [",
	}
	for _, b := range bad {
		if _, err := ParseLocal("bad.yaml", []byte(b)); err == nil {
			t.Errorf("ParseLocal(%q) accepted", b)
		}
	}
	if _, err := Compile([]List{{Name: "x", Type: TypeCIDR, Entries: []Entry{{Value: "300.1.1.1/8"}}}}, Options{}); err == nil {
		t.Error("bad cidr accepted")
	}
	if _, err := Compile([]List{{Name: "x", Type: TypeRegex, Entries: []Entry{{Value: "("}}}}, Options{}); err == nil {
		t.Error("bad regex accepted")
	}
}

func TestHolderSwapAndOverlay(t *testing.T) {
	t.Parallel()
	a, _ := Compile([]List{{Name: "a", Type: TypeCIDR, Entries: []Entry{{Value: "192.0.2.0/24"}}}}, Options{})
	b, _ := Compile([]List{{Name: "b", Type: TypeCIDR, Entries: []Entry{{Value: "192.0.2.0/24"}}}}, Options{})
	o, _ := Compile([]List{{Name: "analyst", Local: true, Type: TypeCIDR, Entries: []Entry{{Value: "192.0.2.9"}}}}, Options{})
	h := NewHolder(a)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if m, ok := h.Match(ip("192.0.2.1")); !ok || (m.List != "a" && m.List != "b") {
					t.Errorf("concurrent match = %v %v", m, ok)
					return
				}
			}
		})
	}
	h.Swap(b)
	wg.Wait()
	if m, _ := h.Match(ip("192.0.2.1")); m.List != "b" {
		t.Fatalf("after swap = %q", m.List)
	}
	h.SetOverlay(o)
	if m, _ := h.Match(ip("192.0.2.9")); m.List != "analyst" {
		t.Fatalf("overlay = %q", m.List)
	}
	var zero Holder
	if _, ok := zero.Match(ip("192.0.2.1")); ok {
		t.Fatal("zero holder matched")
	}
}

func BenchmarkMatchShipped(b *testing.B) {
	s := loadShipped(b)
	inds := []events.Indicator{ip("8.8.8.8"), ip("52.95.110.1"), ip("203.0.113.77"), ip("198.18.0.1"), ip("2a00:1450:4001::1"), ip("45.155.205.233")}
	b.Run("ip", func(b *testing.B) {
		for i := range b.N {
			s.Match(inds[i%len(inds)])
		}
	})
	doms := []events.Indicator{dom("www.google.de"), dom("a.b.c.evil-domain.xyz"), dom("api.github.com")}
	b.Run("domain", func(b *testing.B) {
		for i := range b.N {
			s.Match(doms[i%len(doms)])
		}
	})
}

func hasList(ms []events.ListMatch, name string) bool {
	for _, m := range ms {
		if m.List == name {
			return true
		}
	}
	return false
}

// TestNameIndexCollisions forces hash collisions (full and 32-bit tag) in
// the host and exact-string indexes: every name must still find its own
// entries, alternatives included, and nothing else.
func TestNameIndexCollisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(string) uint64
	}{
		{"same hash", func(string) uint64 { return 42 }},
		{"same tag", func(s string) uint64 { return 7<<32 | uint64(len(s)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(Options{})
			b.hash = tc.hash
			lists := []List{
				{Name: "a", Type: TypeHostname, Entries: []Entry{{Value: "Example.COM"}, {Value: "cdn.example.net"}, {Value: "x.org"}}},
				{Name: "b", Type: TypeString, Entries: []Entry{{Value: "exact-one"}, {Value: ".example.com"}, {Value: "exact-two"}}},
			}
			for _, l := range lists {
				if err := b.add(l); err != nil {
					t.Fatal(err)
				}
			}
			s := b.finish()
			for _, c := range []struct {
				ind  events.Indicator
				want []string
			}{
				{dom("www.example.com"), []string{"a", "b"}},
				{dom("cdn.example.net"), []string{"a"}},
				{dom("example.net"), nil},
				{dom("y.org"), nil},
				{events.Indicator{Type: events.TypeMD5, Value: "EXACT-TWO"}, []string{"b"}},
				{events.Indicator{Type: events.TypeMD5, Value: "exact-three"}, nil},
			} {
				var got []string
				for _, m := range s.MatchAll(c.ind) {
					got = append(got, m.List)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s: lists %v, want %v", c.ind.Value, got, c.want)
				}
			}
		})
	}
}
