package allowlist

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
)

// u128 is an address in the 128-bit space; IPv4 addresses are IPv4-mapped.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) inc() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}

func addrKey(a netip.Addr) u128 {
	b := a.As16() // IPv4 becomes ::ffff:a.b.c.d
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixRange returns the first and last address of p in the 128-bit space.
func prefixRange(p netip.Prefix) (u128, u128) {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	lo := addrKey(p.Masked().Addr())
	var hi u128
	switch {
	case bits >= 128:
		hi = lo
	case bits >= 64:
		hi = u128{lo.hi, lo.lo | (^uint64(0) >> uint(bits-64))}
	default:
		var mask uint64
		if bits > 0 {
			mask = ^uint64(0) >> uint(bits)
		} else {
			mask = ^uint64(0)
		}
		hi = u128{lo.hi | mask, ^uint64(0)}
	}
	return lo, hi
}

// parsePrefix accepts a prefix or a bare address (as a host prefix).
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type cidrItem struct {
	lo, hi u128
	entry  int32
}

// segment starts a run of addresses whose most specific entry is entry (-1: none).
type segment struct {
	start u128
	entry int32
}

// cidrTable maps each address to the most specific prefix that contains it:
// disjoint segments as sorted starts and their entries (-1: none), IPv4
// ones with 32-bit starts.
type cidrTable struct {
	v4Start []uint32
	v4Entry []int32
	v6Start []u128
	v6Entry []int32
}

// The IPv4-mapped range ::ffff:0.0.0.0 to ::ffff:255.255.255.255.
var (
	v4First = u128{0, 0xffff << 32}
	v4Last  = u128{0, 0xffff<<32 | 0xffffffff}
)

// buildCIDR flattens nested prefixes into disjoint segments. items must be in
// priority order (earlier wins among identical prefixes). parent and alt of the
// entries are filled so that an expired entry can fall back to an equal or
// enclosing one.
func buildCIDR(items []cidrItem, entries []entry) cidrTable {
	slices.SortStableFunc(items, func(a, b cidrItem) int {
		if c := a.lo.cmp(b.lo); c != 0 {
			return c
		}
		return b.hi.cmp(a.hi) // wider first
	})
	segs := make([]segment, 0, 2*len(items)+1)
	emit := func(start u128, e int32) {
		if n := len(segs); n > 0 && segs[n-1].start == start {
			segs[n-1].entry = e
			return
		}
		segs = append(segs, segment{start, e})
	}
	emit(u128{}, -1)
	var stack []cidrItem
	top := func() int32 {
		if len(stack) == 0 {
			return -1
		}
		return stack[len(stack)-1].entry
	}
	pop := func() {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if next, ok := t.hi.inc(); ok {
			emit(next, top())
		}
	}
	for _, it := range items {
		for len(stack) > 0 && stack[len(stack)-1].hi.cmp(it.lo) < 0 {
			pop()
		}
		if n := len(stack); n > 0 && stack[n-1].lo == it.lo && stack[n-1].hi == it.hi {
			// Identical prefix from a later list: chain it as an alternative.
			e := stack[n-1].entry
			for entries[e].alt >= 0 {
				e = entries[e].alt
			}
			entries[e].alt = it.entry
			entries[it.entry].parent = entries[stack[n-1].entry].parent
			continue
		}
		entries[it.entry].parent = top()
		stack = append(stack, it)
		emit(it.lo, it.entry)
	}
	for len(stack) > 0 {
		pop()
	}
	// Merge neighbours pointing at the same entry.
	out := segs[:1]
	for _, s := range segs[1:] {
		if s.entry == out[len(out)-1].entry {
			continue
		}
		out = append(out, s)
	}
	return split(out)
}

// split stores the segments compactly: those that start inside the IPv4
// range with 32-bit starts (plus one at the range's start), the others with
// 128-bit starts (plus one just after the IPv4 range). IPv4 addresses are
// looked up in the first table only, other addresses in the second.
func split(segs []segment) cidrTable {
	var t cidrTable
	at := func(a u128) int32 { // entry of the segment holding a
		i, _ := slices.BinarySearchFunc(segs, a, func(s segment, a u128) int { return s.start.cmp(a) })
		if i < len(segs) && segs[i].start == a {
			return segs[i].entry
		}
		return segs[i-1].entry // segs[0] starts at 0
	}
	after, _ := v4Last.inc()
	t.v4Start = append(t.v4Start, 0)
	t.v4Entry = append(t.v4Entry, at(v4First))
	for _, s := range segs {
		switch {
		case s.start.cmp(v4First) < 0:
			t.v6Start = append(t.v6Start, s.start)
			t.v6Entry = append(t.v6Entry, s.entry)
		case s.start.cmp(v4Last) <= 0:
			if s.start == v4First {
				continue
			}
			t.v4Start = append(t.v4Start, uint32(s.start.lo))
			t.v4Entry = append(t.v4Entry, s.entry)
		default:
			if n := len(t.v6Start); n == 0 || t.v6Start[n-1].cmp(after) < 0 {
				if s.start != after {
					t.v6Start = append(t.v6Start, after)
					t.v6Entry = append(t.v6Entry, at(after))
				}
			}
			t.v6Start = append(t.v6Start, s.start)
			t.v6Entry = append(t.v6Entry, s.entry)
		}
	}
	if n := len(t.v6Start); n == 0 || t.v6Start[n-1].cmp(after) < 0 {
		t.v6Start = append(t.v6Start, after)
		t.v6Entry = append(t.v6Entry, at(after))
	}
	t.v4Start, t.v4Entry = slices.Clip(t.v4Start), slices.Clip(t.v4Entry)
	t.v6Start, t.v6Entry = slices.Clip(t.v6Start), slices.Clip(t.v6Entry)
	return t
}

// lookup returns the most specific entry containing a (unmapped), or -1.
func (t *cidrTable) lookup(a netip.Addr) int32 {
	if a.Is4() {
		b := a.As4()
		k := binary.BigEndian.Uint32(b[:])
		starts := t.v4Start
		// Last segment whose start <= k.
		lo, hi := 0, len(starts)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if starts[m] <= k {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == 0 {
			return -1
		}
		return t.v4Entry[lo-1]
	}
	k := addrKey(a)
	starts := t.v6Start
	lo, hi := 0, len(starts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if starts[m].cmp(k) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return -1
	}
	return t.v6Entry[lo-1]
}
