package allowlist

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
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

// entry is one compiled list entry. Its value (the original spelling, kept
// for the match evidence) is Set.text[text:next entry's text]: the values
// live in one string, not one allocation each.
type entry struct {
	list   int32
	alt    int32  // next entry with the same key, -1
	parent int32  // enclosing CIDR entry, -1
	text   uint32 // start of the value in Set.text
	mask   uint8
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
//
// It keeps what matching and the evidence need, compactly (all shipped
// warninglists: about 265,000 entries in about 15 MiB): entry values in one
// string, CIDR ranges as sorted numeric arrays (32-bit starts for IPv4),
// host names and exact strings in maps keyed by a 64-bit hash of the name
// (the entry's value confirms a hit), expiries and reasons only for the
// entries that have one.
type Set struct {
	now      func() time.Time
	lists    []listMeta
	entries  []entry
	text     string
	reasons  map[int32]string // entry reasons (local lists), by entry
	expires  map[int32]int64  // unix nanoseconds, by entry; none: never
	cidr     cidrTable
	exact    nameIndex // string entries, lower-cased
	host     nameIndex // hostname entries, lower-cased, no outer dots
	subs     []patternEntry
	regexes  []patternEntry
	expiring bool
}

// nameIndex finds the first entry (head of the alt chain) of a canonical
// name: an open-addressing table (linear probing, at most half full) of
// 32-bit hash tags and entries; the entry's value confirms a hit. The rare
// name whose 64-bit hash another name took is kept by its string.
type nameIndex struct {
	hash     func(name string) uint64
	byHash   map[uint64]int32 // while building
	tags     []uint32         // hash tag (never 0) per slot; 0: empty
	first    []int32
	collided map[string]int32
	key      func(value string) string // canonical name of an entry value
}

// Compile builds a Set. Lists given first win among equally specific matches.
func Compile(lists []List, opts Options) (*Set, error) {
	b := newBuilder(opts)
	for _, l := range lists {
		if err := b.add(l); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

// builder compiles lists one at a time, so a caller can drop each parsed
// list before parsing the next.
type builder struct {
	s     *Set
	hash  func(name string) uint64
	text  []byte
	items []cidrItem
}

func newBuilder(opts Options) *builder {
	s := &Set{
		now:     opts.Now,
		reasons: map[int32]string{},
		expires: map[int32]int64{},
		exact:   nameIndex{byHash: map[uint64]int32{}, key: exactKey},
		host:    nameIndex{byHash: map[uint64]int32{}, key: hostKey},
	}
	if s.now == nil {
		s.now = time.Now
	}
	seed := maphash.MakeSeed()
	return &builder{s: s, hash: func(name string) uint64 { return maphash.String(seed, name) }}
}

func exactKey(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// hostKey is the host name of a hostname entry, or of a string entry that
// starts with a dot.
func hostKey(v string) string { return strings.Trim(exactKey(v), ".") }

// value returns the value of entry e while building.
func (b *builder) value(e int32) string {
	end := len(b.text)
	if int(e)+1 < len(b.s.entries) {
		end = int(b.s.entries[e+1].text)
	}
	return string(b.text[b.s.entries[e].text:end])
}

// chain indexes entry e under its canonical name.
func (b *builder) chain(ix *nameIndex, name string, e int32) {
	h := b.hash(name)
	first, ok := ix.byHash[h]
	if !ok {
		ix.byHash[h] = e
		return
	}
	if ix.key(b.value(first)) != name {
		if ix.collided == nil {
			ix.collided = map[string]int32{}
		}
		if first, ok = ix.collided[name]; !ok {
			ix.collided[name] = e
			return
		}
	}
	for b.s.entries[first].alt >= 0 {
		first = b.s.entries[first].alt
	}
	b.s.entries[first].alt = e
}

// push appends an entry with value v and returns its index.
func (b *builder) push(en entry, v string, e Entry) int32 {
	idx := int32(len(b.s.entries))
	en.text = uint32(len(b.text))
	b.text = append(b.text, v...)
	b.s.entries = append(b.s.entries, en)
	if e.Reason != "" {
		b.s.reasons[idx] = e.Reason
	}
	if !e.Expires.IsZero() {
		b.s.expires[idx] = e.Expires.UnixNano()
		b.s.expiring = true
	}
	return idx
}

func (b *builder) add(l List) error {
	s := b.s
	li := int32(len(s.lists))
	s.lists = append(s.lists, listMeta{name: l.Name, description: l.Description})
	mask := attributesMask(l.Attributes)
	for _, e := range l.Entries {
		typ := e.Type
		if typ == "" {
			typ = l.Type
		}
		en := entry{list: li, mask: mask, alt: -1, parent: -1}
		switch typ {
		case TypeCIDR:
			p, err := parsePrefix(strings.ToLower(strings.TrimSpace(e.Value)))
			if err != nil {
				return fmt.Errorf("list %s: cidr %q: %w", l.Name, e.Value, ErrInvalidList)
			}
			en.mask &= maskIPv4 | maskIPv6
			idx := b.push(en, e.Value, e)
			lo, hi := prefixRange(p)
			b.items = append(b.items, cidrItem{lo: lo, hi: hi, entry: idx})
		case TypeHostname:
			h := hostKey(e.Value)
			if h == "" {
				continue
			}
			b.chain(&s.host, h, b.push(en, e.Value, e))
		case TypeString:
			v := exactKey(e.Value)
			if strings.HasPrefix(v, ".") {
				h := strings.Trim(v, ".")
				if h == "" {
					continue
				}
				b.chain(&s.host, h, b.push(en, e.Value, e))
				continue
			}
			b.chain(&s.exact, v, b.push(en, e.Value, e))
		case TypeSubstring:
			s.subs = append(s.subs, patternEntry{entry: b.push(en, e.Value, e), sub: exactKey(e.Value)})
		case TypeRegex:
			re, err := regexp.Compile(strings.TrimSpace(e.Value))
			if err != nil {
				return fmt.Errorf("list %s: regex %q: %w", l.Name, e.Value, err)
			}
			s.regexes = append(s.regexes, patternEntry{entry: b.push(en, e.Value, e), re: re})
		default:
			return fmt.Errorf("list %s: entry type %q: %w", l.Name, typ, ErrInvalidList)
		}
	}
	return nil
}

func (b *builder) finish() *Set {
	s := b.s
	s.cidr = buildCIDR(b.items, s.entries)
	s.entries = slices.Clip(s.entries)
	s.text = string(b.text)
	s.lists = slices.Clip(s.lists)
	if len(s.reasons) == 0 {
		s.reasons = nil
	}
	if len(s.expires) == 0 {
		s.expires = nil
	}
	s.exact.seal(b.hash)
	s.host.seal(b.hash)
	b.s, b.text, b.items = nil, nil, nil
	return s
}

// seal turns the build map into the lookup table.
func (ix *nameIndex) seal(hash func(string) uint64) {
	ix.hash = hash
	n := 1
	for n < 2*len(ix.byHash) {
		n <<= 1
	}
	ix.tags = make([]uint32, n)
	ix.first = make([]int32, n)
	mask := uint64(n - 1)
	for h, e := range ix.byHash {
		i := h & mask
		for ix.tags[i] != 0 {
			i = (i + 1) & mask
		}
		ix.tags[i], ix.first[i] = hashTag(h), e
	}
	ix.byHash = nil
}

func hashTag(h uint64) uint32 { return uint32(h>>32) | 1 }

// value returns the value of entry e.
func (s *Set) value(e int32) string {
	end := len(s.text)
	if int(e)+1 < len(s.entries) {
		end = int(s.entries[e+1].text)
	}
	return s.text[s.entries[e].text:end]
}

// find returns the first entry of a canonical name.
func (s *Set) find(ix *nameIndex, name string) (int32, bool) {
	if len(ix.tags) == 0 {
		return -1, false
	}
	h := ix.hash(name)
	tag, mask := hashTag(h), uint64(len(ix.tags)-1)
	for i := h & mask; ix.tags[i] != 0; i = (i + 1) & mask {
		if ix.tags[i] != tag {
			continue
		}
		e := ix.first[i]
		if v := s.value(e); v == name || ix.key(v) == name { // most values are stored as their key
			return e, true
		}
	}
	if ix.collided != nil {
		e, ok := ix.collided[name]
		return e, ok
	}
	return -1, false
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
	var seenBuf [8]int32
	seen := seenBuf[:0]
	s.visit(ind, now, func(e int32) bool {
		if l := s.entries[e].list; !slices.Contains(seen, l) {
			seen = append(seen, l)
			out = append(out, s.listMatch(e))
		}
		return true
	})
	return out
}

func (s *Set) listMatch(e int32) events.ListMatch {
	meta := s.lists[s.entries[e].list]
	reason := s.reasons[e]
	if reason == "" {
		reason = meta.description
	}
	if reason == "" {
		reason = meta.name
	}
	return events.ListMatch{List: meta.name, Reason: reason + " (" + s.value(e) + ")"}
}

func (s *Set) usable(e int32, mask uint8, now int64) bool {
	if s.entries[e].mask&mask == 0 {
		return false
	}
	if !s.expiring {
		return true
	}
	exp, ok := s.expires[e]
	return !ok || now < exp
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
		if e, ok := s.find(&s.exact, lower); ok && !s.each(e, mask, now, fn) {
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
		if e, ok := s.find(&s.exact, lower); ok && !s.each(e, mask, now, fn) {
			return
		}
		s.patterns(lower, mask, now, fn)
	}
}

// domain visits exact entries for the name, then hostname entries for the
// name and each parent domain, longest first.
func (s *Set) domain(d string, mask uint8, now int64, fn func(int32) bool) bool {
	if e, ok := s.find(&s.exact, d); ok && !s.each(e, mask, now, fn) {
		return false
	}
	for name := d; name != ""; {
		if e, ok := s.find(&s.host, name); ok && !s.each(e, mask, now, fn) {
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
