package cache

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/pkg/events"
)

// fastDecode parses the JSON that encode writes (wireEntry: known keys, no escapes in strings) without
// reflection. All strings of the entry are substrings of one copy of raw, so an entry costs a handful of
// allocations. Anything it does not expect (an unknown or repeated key, null, an escape sequence, invalid
// UTF-8, a number out of range, …) makes it return ok=false, and decode falls back to encoding/json, so
// the result is always what encoding/json would give for input encode can produce.
func fastDecode(raw []byte) (Entry, bool) {
	p := parser{s: string(raw)}
	var e Entry
	ok := p.object(func(key string) bool {
		switch key {
		case "s":
			var ok bool
			e.Status, ok = p.str()
			return ok
		case "f":
			return p.fields(&e.Fields, &e.Sorted)
		case "e":
			return p.exposure(&e.Exposure)
		case "t":
			ms, ok := p.int(math.MinInt64, math.MaxInt64)
			e.FetchedAt = fromMillis(ms)
			return ok
		case "ttl":
			ms, ok := p.int(math.MinInt64, math.MaxInt64)
			e.TTL = time.Duration(ms) * time.Millisecond
			return ok
		}
		return false
	})
	if !ok || !p.end() {
		return Entry{}, false
	}
	return e, true
}

// parser is a cursor over one JSON document.
type parser struct {
	s string
	i int
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat consumes c (after white space) and reports whether it was there.
func (p *parser) eat(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() bool {
	p.ws()
	return p.i == len(p.s)
}

// str reads a string without escapes.
func (p *parser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return "", false
}

// int reads an integer literal in [lo, hi] (no fraction or exponent).
func (p *parser) int(lo, hi int64) (int64, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i == digits || p.i-digits > 18 || (p.s[digits] == '0' && p.i-digits > 1) {
		return 0, false // empty, possibly overflowing or with a leading zero: let encoding/json decide
	}
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		return 0, false
	}
	var n int64
	for _, c := range []byte(p.s[digits:p.i]) {
		n = n*10 + int64(c-'0')
	}
	if digits > start {
		n = -n
	}
	return n, n >= lo && n <= hi
}

// float reads a number.
func (p *parser) float() (float64, bool) {
	p.ws()
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.i++
	}
	lit := p.s[start:p.i]
	if !jsonNumber(lit) {
		return 0, false
	}
	f, err := strconv.ParseFloat(lit, 64)
	return f, err == nil
}

// jsonNumber reports whether s follows JSON's number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func jsonNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (p *parser) bool() (bool, bool) {
	p.ws()
	switch {
	case len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "true":
		p.i += 4
		return true, true
	case len(p.s)-p.i >= 5 && p.s[p.i:p.i+5] == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// object reads {"key": value, …}, calling member for each key with the cursor before its value. A key
// seen twice fails (encoding/json would merge; encode never writes one).
func (p *parser) object(member func(key string) bool) bool { return p.members(member, true) }

// members is object; with check false, member must detect repeated keys itself.
func (p *parser) members(member func(key string) bool, check bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	var buf [24]string
	seen := buf[:0]
	for {
		k, ok := p.str()
		if !ok || !p.eat(':') {
			return false
		}
		if check {
			for _, s := range seen {
				if s == k {
					return false
				}
			}
			seen = append(seen, k)
		}
		if !member(k) {
			return false
		}
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// array reads [v, …], calling elem with the cursor before each value; empty reports an empty array.
func (p *parser) array(elem func() bool) (empty, ok bool) {
	if !p.eat('[') {
		return false, false
	}
	if p.eat(']') {
		return true, true
	}
	for {
		if !elem() {
			return false, false
		}
		if p.eat(']') {
			return false, true
		}
		if !p.eat(',') {
			return false, false
		}
	}
}

// fields reads the evidence map and also returns it as sorted pairs: encoding/json writes map keys in
// order, so the pairs come sorted unless the input was written otherwise (then they are sorted here).
func (p *parser) fields(dst *map[string]string, sorted *events.SortedFields) bool {
	// Size hint: a flat object of strings has four quotes per member (a value with a brace only skews it).
	hint := 0
	for i := p.i; i < len(p.s) && p.s[i] != '}'; i++ {
		if p.s[i] == '"' {
			hint++
		}
	}
	m := make(map[string]string, hint/4)
	pairs := make(events.SortedFields, 0, hint/2)
	inOrder := true
	ok := p.members(func(k string) bool {
		v, ok := p.str()
		n := len(m)
		m[k] = v
		if len(pairs) > 0 && pairs[len(pairs)-2] >= k {
			inOrder = false
		}
		pairs = append(pairs, k, v)
		return ok && len(m) > n // a repeated key fails
	}, false)
	*dst = m
	if !inOrder {
		pairs = events.SortFields(m)
	}
	if len(pairs) > 0 {
		*sorted = pairs
	}
	return ok
}

func (p *parser) strings(dst *[]string) bool {
	out := []string{}
	_, ok := p.array(func() bool {
		v, ok := p.str()
		out = append(out, v)
		return ok
	})
	*dst = out
	return ok
}

func (p *parser) int32s(dst *[]int32) bool {
	out := []int32{}
	_, ok := p.array(func() bool {
		v, ok := p.int(math.MinInt32, math.MaxInt32)
		out = append(out, int32(v))
		return ok
	})
	*dst = out
	return ok
}

func (p *parser) setBool(dst *bool) bool {
	v, ok := p.bool()
	*dst = v
	return ok
}

func (p *parser) setInt32(dst *int32) bool {
	v, ok := p.int(math.MinInt32, math.MaxInt32)
	*dst = int32(v)
	return ok
}

func (p *parser) setStr(dst *string) bool {
	v, ok := p.str()
	*dst = v
	return ok
}

func (p *parser) setTime(dst *time.Time) bool {
	v, ok := p.int(math.MinInt64, math.MaxInt64)
	*dst = fromMillis(v)
	return ok
}

func (p *parser) exposure(x *events.Exposure) bool {
	return p.object(func(k string) bool {
		switch k {
		case "mal":
			return p.setBool(&x.Malicious)
		case "in":
			return p.setInt32(&x.InboundScore)
		case "out":
			return p.setInt32(&x.OutboundScore)
		case "vpn":
			return p.setBool(&x.VPN)
		case "pxy":
			return p.setBool(&x.Proxy)
		case "tor":
			return p.setBool(&x.Tor)
		case "hst":
			return p.setBool(&x.Hosting)
		case "cld":
			return p.setBool(&x.Cloud)
		case "scn":
			return p.setBool(&x.Scanner)
		case "mob":
			return p.setBool(&x.Mobile)
		case "drk":
			return p.setBool(&x.Darkweb)
		case "ports":
			return p.ports(&x.OpenPorts)
		case "cves":
			return p.cves(&x.CVEs)
		case "asn":
			v, ok := p.int(math.MinInt64, math.MaxInt64)
			x.ASN = v
			return ok
		case "asnm":
			return p.setStr(&x.ASName)
		case "org":
			return p.setStr(&x.Org)
		case "cc":
			return p.setStr(&x.Country)
		case "abc":
			return p.setInt32(&x.AbuseConfidence)
		case "gn":
			return p.setStr(&x.GreyNoiseClass)
		case "cat":
			return p.strings(&x.Categories)
		case "fs":
			return p.setTime(&x.FirstSeen)
		case "ls":
			return p.setTime(&x.LastSeen)
		}
		return false
	})
}

func (p *parser) ports(dst *[]events.Port) bool {
	var out []events.Port
	empty, ok := p.array(func() bool {
		var pt events.Port
		ok := p.object(func(k string) bool {
			switch k {
			case "p":
				return p.setInt32(&pt.Port)
			case "pr":
				return p.setStr(&pt.Protocol)
			case "sv":
				return p.setStr(&pt.Service)
			case "v":
				return p.setStr(&pt.Version)
			case "vu":
				return p.setBool(&pt.Vulnerable)
			case "tg":
				return p.strings(&pt.Tags)
			}
			return false
		})
		out = append(out, pt)
		return ok
	})
	if !empty {
		*dst = out // decode leaves an empty list nil (it copies only non-empty lists out)
	}
	return ok
}

func (p *parser) cves(dst *[]events.CVE) bool {
	var out []events.CVE
	empty, ok := p.array(func() bool {
		var c events.CVE
		ok := p.object(func(k string) bool {
			switch k {
			case "id":
				return p.setStr(&c.ID)
			case "c":
				v, ok := p.float()
				c.CVSS = v
				return ok
			case "p":
				return p.int32s(&c.Ports)
			}
			return false
		})
		out = append(out, c)
		return ok
	})
	if !empty {
		*dst = out
	}
	return ok
}
