package allowlist

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
)

// TestCIDRTablesMatchBruteForce compiles nested IPv4 and IPv6 prefixes
// (some spanning the IPv4-mapped range) and checks every lookup, near the
// boundaries of the 32-bit and 128-bit tables and at random, against the
// most specific containing prefix found by brute force.
func TestCIDRTablesMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"::/0", "::/1", "::ffff:0:0/96", "::ffff:10.0.0.0/104", "::fffe:0:0/95", "::/64",
		"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "255.255.255.255", "0.0.0.0", "2001:db8::/32", "2001:db8::1", "::1:0:0:0/96"}
	for range 300 {
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			prefixes = append(prefixes, netip.PrefixFrom(a, 8+rng.IntN(25)).Masked().String())
		} else {
			var b [16]byte
			b[0], b[1], b[2] = 0x20, 0x01, byte(rng.IntN(4))
			for i := 3; i < 16; i++ {
				b[i] = byte(rng.IntN(256))
			}
			prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16(b), 16+rng.IntN(113)).Masked().String())
		}
	}
	t.Run("random", func(t *testing.T) { checkCIDR(t, rng, prefixes, 15) })
	// No segment starts right after the IPv4-mapped range: the entry there
	// (::/64) differs from the one just below the range (::fffe:0:0/96).
	t.Run("across the IPv4 range", func(t *testing.T) { checkCIDR(t, rng, []string{"::/64", "::fffe:0:0/96", "10.0.0.0/8"}, 0) })
}

// checkCIDR compares lookups in a Set of prefixes (one list each) with brute
// force; the prefixes from index random on are probed at their edges.
func checkCIDR(t *testing.T, rng *rand.Rand, prefixes []string, random int) {
	var lists []List
	type rng128 struct{ lo, hi u128 }
	var ranges []rng128
	for i, p := range prefixes {
		pp, err := parsePrefix(p)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := prefixRange(pp)
		ranges = append(ranges, rng128{lo, hi})
		lists = append(lists, List{Name: fmt.Sprint(i), Type: TypeCIDR, Entries: []Entry{{Value: p}}})
	}
	s, err := Compile(lists, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := func(a netip.Addr) string {
		k := addrKey(a)
		best, bestSize := "", u128{}
		for i, r := range ranges {
			if r.lo.cmp(k) > 0 || r.hi.cmp(k) < 0 {
				continue
			}
			size := u128{r.hi.hi - r.lo.hi, r.hi.lo - r.lo.lo}
			if r.hi.lo < r.lo.lo {
				size.hi--
			}
			if best == "" || size.cmp(bestSize) < 0 { // strictly smaller: the first list wins ties
				best, bestSize = fmt.Sprint(i), size
			}
		}
		return best
	}
	queries := []string{"0.0.0.0", "255.255.255.255", "10.1.2.3", "10.1.2.4", "9.255.255.255", "::", "::1",
		"::fffe:ffff:ffff", "::1:0:0:0", "::1:0:0:1", "::ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::1", "2001:db8::2"}
	for _, p := range prefixes[random:] {
		pp := netip.MustParsePrefix(p)
		queries = append(queries, pp.Addr().String(), pp.Addr().Prev().String(), pp.Addr().Next().String())
	}
	for range 2000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		if rng.IntN(3) == 0 {
			b[0], b[1] = 0x20, 0x01
		}
		queries = append(queries, netip.AddrFrom16(b).String(), netip.AddrFrom4([4]byte(b[:4])).String())
	}
	for _, q := range queries {
		if q == "invalid IP" { // Prev of ::
			continue
		}
		a := netip.MustParseAddr(q).Unmap()
		typ := events.TypeIPv6
		if a.Is4() {
			typ = events.TypeIPv4
		}
		m, ok := s.Match(events.Indicator{Type: typ, Value: q})
		got := ""
		if ok {
			got = m.List
		}
		if w := want(a); got != w {
			t.Fatalf("%s: list %q, want %q", q, got, w)
		}
	}
}
