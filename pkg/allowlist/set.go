package allowlist

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// type mask bits: which indicator types an entry applies to.
const (
	maskIPv4 uint8 = 1 << iota
	maskIPv6
	maskDomain
	maskURL
	maskMD5
	maskSHA1
	maskSHA256
	maskAll = ^uint8(0)
)

func typeMask(t string) uint8 {
	switch t {
	case events.TypeIPv4:
		return maskIPv4
	case events.TypeIPv6:
		return maskIPv6
	case events.TypeDomain:
		return maskDomain
	case events.TypeURL:
		return maskURL
	case events.TypeMD5:
		return maskMD5
	case events.TypeSHA1:
		return maskSHA1
	case events.TypeSHA256:
		return maskSHA256
	}
	return 0
}

// attributesMask maps MISP matching_attributes to indicator types.
func attributesMask(attrs []string) uint8 {
	if len(attrs) == 0 {
		return maskAll
	}
	var m uint8
	for _, a := range attrs {
		for part := range strings.SplitSeq(a, "|") {
			switch part {
			case "ip-src", "ip-dst", "ip":
				m |= maskIPv4 | maskIPv6
			case "domain", "hostname":
				m |= maskDomain
			case "url", "uri", "link":
				m |= maskURL
			case "md5":
				m |= maskMD5
			case "sha1":
				m |= maskSHA1
			case "sha256":
				m |= maskSHA256
			}
		}
	}
	return m
}

type entry struct {
	list    int32
	mask    uint8
	expires int64 // unix nanoseconds, 0 = never
	alt     int32 // next entry with the same key, -1
	parent  int32 // enclosing CIDR entry, -1
	value   string
	reason  string
}

type listMeta struct {
	name, description string
}

type patternEntry struct {
	entry int32
	sub   string
	re    *regexp.Regexp
}

// Options tune [Compile].
type Options struct {
	// Now is the clock used for entry expiry; nil means time.Now.
	Now func() time.Time
}

// Set is a compiled, immutable group of lists. It is safe for concurrent use.
type Set struct {
	now      func() time.Time
	lists    []listMeta
	entries  []entry
	cidr     cidrTable
	exact    map[string]int32 // string entries, lower-cased
	host     map[string]int32 // hostname entries, lower-cased, no outer dots
	subs     []patternEntry
	regexes  []patternEntry
	expiring bool
}

// Compile builds a Set. Lists given first win among equally specific matches.
func Compile(lists []List, opts Options) (*Set, error) {
	s := &Set{
		now:   opts.Now,
		exact: make(map[string]int32),
		host:  make(map[string]int32),
	}
	if s.now == nil {
		s.now = time.Now
	}
	var items []cidrItem
	chain := func(m map[string]int32, key string, e int32) {
		first, ok := m[key]
		if !ok {
			m[key] = e
			return
		}
		for s.entries[first].alt >= 0 {
			first = s.entries[first].alt
		}
		s.entries[first].alt = e
	}
	for li, l := range lists {
		s.lists = append(s.lists, listMeta{name: l.Name, description: l.Description})
		mask := attributesMask(l.Attributes)
		for _, e := range l.Entries {
			typ := e.Type
			if typ == "" {
				typ = l.Type
			}
			en := entry{list: int32(li), mask: mask, alt: -1, parent: -1, value: e.Value, reason: e.Reason}
			if !e.Expires.IsZero() {
				en.expires = e.Expires.UnixNano()
				s.expiring = true
			}
			idx := int32(len(s.entries))
			v := strings.ToLower(strings.TrimSpace(e.Value))
			switch typ {
			case TypeCIDR:
				p, err := parsePrefix(v)
				if err != nil {
					return nil, fmt.Errorf("list %s: cidr %q: %w", l.Name, e.Value, ErrInvalidList)
				}
				en.mask &= maskIPv4 | maskIPv6
				s.entries = append(s.entries, en)
				lo, hi := prefixRange(p)
				items = append(items, cidrItem{lo: lo, hi: hi, entry: idx})
			case TypeHostname:
				h := strings.Trim(v, ".")
				if h == "" {
					continue
				}
				s.entries = append(s.entries, en)
				chain(s.host, h, idx)
			case TypeString:
				s.entries = append(s.entries, en)
				if strings.HasPrefix(v, ".") {
					h := strings.Trim(v, ".")
					if h == "" {
						s.entries = s.entries[:idx]
						continue
					}
					chain(s.host, h, idx)
					continue
				}
				chain(s.exact, v, idx)
			case TypeSubstring:
				s.entries = append(s.entries, en)
				s.subs = append(s.subs, patternEntry{entry: idx, sub: v})
			case TypeRegex:
				re, err := regexp.Compile(strings.TrimSpace(e.Value))
				if err != nil {
					return nil, fmt.Errorf("list %s: regex %q: %w", l.Name, e.Value, err)
				}
				s.entries = append(s.entries, en)
				s.regexes = append(s.regexes, patternEntry{entry: idx, re: re})
			default:
				return nil, fmt.Errorf("list %s: entry type %q: %w", l.Name, typ, ErrInvalidList)
			}
		}
	}
	s.cidr = buildCIDR(items, s.entries)
	return s, nil
}

// Len returns the number of compiled entries.
func (s *Set) Len() int { return len(s.entries) }

// Lists returns the names of the compiled lists in priority order.
func (s *Set) Lists() []string {
	out := make([]string, len(s.lists))
	for i, l := range s.lists {
		out[i] = l.name
	}
	return out
}

// Match reports the most specific list entry that covers ind.
func (s *Set) Match(ind events.Indicator) (events.ListMatch, bool) {
	if s == nil {
		return events.ListMatch{}, false
	}
	var now int64
	if s.expiring {
		now = s.now().UnixNano()
	}
	e := int32(-1)
	s.visit(ind, now, func(x int32) bool {
		e = x
		return false
	})
	if e < 0 {
		return events.ListMatch{}, false
	}
	return s.listMatch(e), true
}

// MatchAll reports every list that covers ind, most specific first, one
// match per list.
func (s *Set) MatchAll(ind events.Indicator) []events.ListMatch {
	if s == nil {
		return nil
	}
	var now int64
	if s.expiring {
		now = s.now().UnixNano()
	}
	var out []events.ListMatch
	seen := make(map[int32]bool)
	s.visit(ind, now, func(e int32) bool {
		en := &s.entries[e]
		if !seen[en.list] {
			seen[en.list] = true
			out = append(out, s.listMatch(e))
		}
		return true
	})
	return out
}

func (s *Set) listMatch(e int32) events.ListMatch {
	en := &s.entries[e]
	meta := s.lists[en.list]
	reason := en.reason
	if reason == "" {
		reason = meta.description
	}
	if reason == "" {
		reason = meta.name
	}
	return events.ListMatch{List: meta.name, Reason: reason + " (" + en.value + ")"}
}

func (s *Set) usable(e int32, mask uint8, now int64) bool {
	en := &s.entries[e]
	return en.mask&mask != 0 && (en.expires == 0 || now < en.expires)
}

// each calls fn for every usable entry in the alternative chain of e and
// reports whether fn asked to continue.
func (s *Set) each(e int32, mask uint8, now int64, fn func(int32) bool) bool {
	for ; e >= 0; e = s.entries[e].alt {
		if s.usable(e, mask, now) && !fn(e) {
			return false
		}
	}
	return true
}

// visit calls fn for each usable entry covering ind, most specific first,
// until fn returns false.
func (s *Set) visit(ind events.Indicator, now int64, fn func(int32) bool) {
	mask := typeMask(ind.Type)
	if mask == 0 {
		return
	}
	value := ind.Value
	switch ind.Type {
	case events.TypeIPv4, events.TypeIPv6:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return
		}
		for e := s.cidr.lookup(a.Unmap()); e >= 0; e = s.entries[e].parent {
			if !s.each(e, mask, now, fn) {
				return
			}
		}
		s.patterns(strings.ToLower(value), mask, now, fn)
	case events.TypeURL:
		lower := strings.ToLower(value)
		if e, ok := s.exact[lower]; ok && !s.each(e, mask, now, fn) {
			return
		}
		if u, err := url.Parse(value); err == nil && u.Hostname() != "" {
			if !s.domain(strings.ToLower(u.Hostname()), mask, now, fn) {
				return
			}
		}
		s.patterns(lower, mask, now, fn)
	case events.TypeDomain:
		d := strings.Trim(strings.ToLower(value), ".")
		if !s.domain(d, mask, now, fn) {
			return
		}
		s.patterns(d, mask, now, fn)
	default:
		lower := strings.ToLower(value)
		if e, ok := s.exact[lower]; ok && !s.each(e, mask, now, fn) {
			return
		}
		s.patterns(lower, mask, now, fn)
	}
}

// domain visits exact entries for the name, then hostname entries for the
// name and each parent domain, longest first.
func (s *Set) domain(d string, mask uint8, now int64, fn func(int32) bool) bool {
	if e, ok := s.exact[d]; ok && !s.each(e, mask, now, fn) {
		return false
	}
	for name := d; name != ""; {
		if e, ok := s.host[name]; ok && !s.each(e, mask, now, fn) {
			return false
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return true
}

func (s *Set) patterns(v string, mask uint8, now int64, fn func(int32) bool) {
	for _, p := range s.subs {
		if s.usable(p.entry, mask, now) && strings.Contains(v, p.sub) && !fn(p.entry) {
			return
		}
	}
	for _, p := range s.regexes {
		if s.usable(p.entry, mask, now) && p.re.MatchString(v) && !fn(p.entry) {
			return
		}
	}
}
