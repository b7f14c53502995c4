package cache

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/vigilsec/vigil/pkg/events"
)

// appendEntry appends the JSON of e's wireEntry to b without reflection: exactly the bytes encoding/json
// writes (field order, omitempty/omitzero, sorted map keys, HTML-safe string escaping, float format).
// Strings and floats outside the plain fast path are written by encoding/json itself.
func appendEntry(b []byte, e *Entry) ([]byte, error) {
	var err error
	b = append(b, `{"s":`...)
	if b, err = appendStr(b, e.Status); err != nil {
		return nil, err
	}
	if len(e.Fields) > 0 {
		f := e.Sorted
		if len(f) != 2*len(e.Fields) {
			f = events.SortFields(e.Fields)
		}
		b = append(b, `,"f":{`...)
		for i := 0; i < len(f); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendStr(b, f[i]); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendStr(b, f[i+1]); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	if !exposureZero(&e.Exposure) {
		b = append(b, `,"e":`...)
		if b, err = appendExposure(b, &e.Exposure); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, millis(e.FetchedAt), 10)
	b = append(b, `,"ttl":`...)
	b = strconv.AppendInt(b, e.TTL.Milliseconds(), 10)
	return append(b, '}'), nil
}

// exposureZero reports whether encode's wireExposure of x is its zero value (omitted by omitzero).
func exposureZero(x *events.Exposure) bool {
	return !x.Malicious && x.InboundScore == 0 && x.OutboundScore == 0 && !x.VPN && !x.Proxy && !x.Tor &&
		!x.Hosting && !x.Cloud && !x.Scanner && !x.Mobile && !x.Darkweb && len(x.OpenPorts) == 0 &&
		len(x.CVEs) == 0 && x.ASN == 0 && x.ASName == "" && x.Org == "" && x.Country == "" &&
		x.AbuseConfidence == 0 && x.GreyNoiseClass == "" && x.Categories == nil &&
		millis(x.FirstSeen) == 0 && millis(x.LastSeen) == 0
}

// jw writes the omitempty members of one JSON object; first tracks whether a comma is needed.
type jw struct {
	b     []byte
	first bool
	err   error
}

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) boolean(k string, v bool) {
	if v {
		w.key(k)
		w.b = append(w.b, "true"...)
	}
}

func (w *jw) integer(k string, v int64, always bool) {
	if v != 0 || always {
		w.key(k)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *jw) str(k, v string, always bool) {
	if w.err != nil || (v == "" && !always) {
		return
	}
	w.key(k)
	w.b, w.err = appendStr(w.b, v)
}

func (w *jw) strs(k string, v []string) {
	if w.err != nil || len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		if w.b, w.err = appendStr(w.b, s); w.err != nil {
			return
		}
	}
	w.b = append(w.b, ']')
}

func (w *jw) int32s(k string, v []int32) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, n := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = strconv.AppendInt(w.b, int64(n), 10)
	}
	w.b = append(w.b, ']')
}

func appendExposure(b []byte, x *events.Exposure) ([]byte, error) {
	w := jw{b: append(b, '{'), first: true}
	w.boolean("mal", x.Malicious)
	w.integer("in", int64(x.InboundScore), false)
	w.integer("out", int64(x.OutboundScore), false)
	w.boolean("vpn", x.VPN)
	w.boolean("pxy", x.Proxy)
	w.boolean("tor", x.Tor)
	w.boolean("hst", x.Hosting)
	w.boolean("cld", x.Cloud)
	w.boolean("scn", x.Scanner)
	w.boolean("mob", x.Mobile)
	w.boolean("drk", x.Darkweb)
	if len(x.OpenPorts) > 0 {
		w.key("ports")
		w.b = append(w.b, '[')
		for i := range x.OpenPorts {
			p := &x.OpenPorts[i]
			if i > 0 {
				w.b = append(w.b, ',')
			}
			pw := jw{b: append(w.b, '{'), first: true}
			pw.integer("p", int64(p.Port), true)
			pw.str("pr", p.Protocol, false)
			pw.str("sv", p.Service, false)
			pw.str("v", p.Version, false)
			pw.boolean("vu", p.Vulnerable)
			pw.strs("tg", p.Tags)
			if pw.err != nil {
				return nil, pw.err
			}
			w.b = append(pw.b, '}')
		}
		w.b = append(w.b, ']')
	}
	if len(x.CVEs) > 0 {
		w.key("cves")
		w.b = append(w.b, '[')
		for i := range x.CVEs {
			c := &x.CVEs[i]
			if i > 0 {
				w.b = append(w.b, ',')
			}
			cw := jw{b: append(w.b, '{'), first: true}
			cw.str("id", c.ID, true)
			if cw.err != nil {
				return nil, cw.err
			}
			if c.CVSS != 0 {
				cw.key("c")
				if cw.b, cw.err = appendFloat(cw.b, c.CVSS); cw.err != nil {
					return nil, cw.err
				}
			}
			cw.int32s("p", c.Ports)
			w.b = append(cw.b, '}')
		}
		w.b = append(w.b, ']')
	}
	w.integer("asn", x.ASN, false)
	w.str("asnm", x.ASName, false)
	w.str("org", x.Org, false)
	w.str("cc", x.Country, false)
	w.integer("abc", int64(x.AbuseConfidence), false)
	w.str("gn", x.GreyNoiseClass, false)
	w.strs("cat", x.Categories)
	w.integer("fs", millis(x.FirstSeen), false)
	w.integer("ls", millis(x.LastSeen), false)
	if w.err != nil {
		return nil, w.err
	}
	return append(w.b, '}'), nil
}

// appendStr writes s as a JSON string: directly when it is printable ASCII that encoding/json leaves as it
// is, else through encoding/json (escapes, HTML-safe characters, invalid UTF-8).
func appendStr(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(b, raw...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// appendFloat writes f as encoding/json does; the exponent form and non-finite values (an error) go
// through encoding/json.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21 || math.IsNaN(f)) {
		raw, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		return append(b, raw...), nil
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}
