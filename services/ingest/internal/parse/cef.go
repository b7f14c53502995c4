package parse

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CEF reads ArcSight Common Event Format records, with or without a syslog prefix:
//
//	[<PRI>][syslog header ]CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension
//
// Header fields escape '|' and '\' with a backslash. The extension is a list of key=value pairs
// where a value runs until the next " key=" and escapes '=', '\', newline (\n) and CR (\r).
// Custom fields (cs1..cs6, c6a1..c6a4, flexString1..2) are read through their ...Label keys.
type CEF struct {
	now func() time.Time
}

// NewCEF returns a CEF parser.
func NewCEF() *CEF { return &CEF{now: time.Now} }

var _ Parser = (*CEF)(nil)

// Name returns "cef".
func (*CEF) Name() string { return nameCEF }

// Detect reports whether raw holds a "CEF:<digits>|" marker in its first bytes.
func (*CEF) Detect(raw []byte) bool { return textFormat(raw) == nameCEF }

// cefMarker returns the index of "CEF:" followed by optional spaces, a version number and '|'.
func cefMarker(w []byte) int {
	off := 0
	for {
		i := bytes.Index(w[off:], []byte("CEF:"))
		if i < 0 {
			return -1
		}
		i += off
		j := i + 4
		for j < len(w) && w[j] == ' ' {
			j++
		}
		k := j
		for k < len(w) && w[k] >= '0' && w[k] <= '9' {
			k++
		}
		if k > j && k < len(w) && w[k] == '|' {
			return i
		}
		off = i + 4
	}
}

type cefPair struct{ key, val string }

// Parse reads one CEF record.
func (p *CEF) Parse(raw []byte) (Event, error) {
	line := txtTrim(raw)
	i := bytes.Index(line, []byte("CEF:"))
	if i < 0 {
		return Event{}, &Error{Format: nameCEF, Reason: ReasonMalformed, Detail: "no CEF: marker"}
	}
	s := strings.TrimLeft(string(line[i+4:]), " ")
	var hdr [7]string
	n := 0
	start := 0
	escaped := false
	for j := 0; j < len(s) && n < 7; j++ {
		switch c := s[j]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '|':
			hdr[n] = s[start:j]
			n++
			start = j + 1
		}
	}
	if n < 7 {
		return Event{}, &Error{Format: nameCEF, Reason: ReasonMalformed,
			Detail: fmt.Sprintf("header has %d of 7 '|' separators after CEF:", n)}
	}
	if !txtDigits(hdr[0]) {
		return Event{}, &Error{Format: nameCEF, Reason: ReasonMalformed,
			Detail: fmt.Sprintf("version %q is not a number", txtTruncate(hdr[0], 16))}
	}
	for k := 1; k < 7; k++ {
		hdr[k] = cefUnescapeHeader(hdr[k])
	}
	ev := Event{
		Vendor:  hdr[1],
		Product: hdr[2],
		Kind:    hdr[4],
		Rule:    hdr[5],
	}
	if ev.Rule == "" {
		ev.Rule = hdr[4]
	}
	sev, sevOK := cefSeverity(hdr[6])
	pairs := cefExtension(s[start:])
	now := p.now()

	var rt, startT, endT time.Time
	var srcNAT, dstNAT, duser, devSev string
	for _, kv := range pairs {
		v := kv.val
		switch kv.key {
		case "src":
			ev.SrcIP = v
		case "dst":
			ev.DstIP = v
		case "spt":
			ev.SrcPort = txtPort(v)
		case "dpt":
			ev.DstPort = txtPort(v)
		case "shost":
			ev.SrcHost = v
		case "dhost":
			ev.DstHost = v
		case "suser":
			ev.User = v
		case "duser":
			duser = v
		case "proto":
			ev.Protocol = txtProto(v)
		case "act":
			ev.Action = v
		case "cat":
			if ev.Kind == "" {
				ev.Kind = v
			}
		case "deviceSeverity":
			devSev = v
		case "rt":
			rt = cefTime(v, now)
		case "start":
			startT = cefTime(v, now)
		case "end":
			endT = cefTime(v, now)
		case "sourceTranslatedAddress":
			srcNAT = v
		case "destinationTranslatedAddress":
			dstNAT = v
		case "request":
			cefRequest(&ev, v)
		case "fileHash", "oldFileHash":
			txtObs(&ev, "hash", v, kv.key)
		case "destinationDnsDomain":
			txtObs(&ev, "domain", v, kv.key)
		case "c6a1", "c6a2", "c6a3", "c6a4":
			label := strings.ToLower(cefLabel(pairs, kv.key))
			switch {
			case strings.Contains(label, "source") && ev.SrcIP == "":
				ev.SrcIP = v
			case strings.Contains(label, "destination") && ev.DstIP == "":
				ev.DstIP = v
			default:
				txtObs(&ev, "ip", v, kv.key)
			}
		case "cs1", "cs2", "cs3", "cs4", "cs5", "cs6", "flexString1", "flexString2":
			if kind := cefLabelKind(cefLabel(pairs, kv.key)); kind != "" {
				txtObs(&ev, kind, v, kv.key)
			}
		default:
			if cefHashKey(kv.key) {
				txtObs(&ev, "hash", v, kv.key)
			}
		}
	}
	if ev.User == "" && !txtAbsent(duser) {
		ev.User = duser
	}
	if ev.SrcIP == "" && !txtAbsent(srcNAT) {
		ev.SrcIP = srcNAT
	}
	if ev.DstIP == "" && !txtAbsent(dstNAT) {
		ev.DstIP = dstNAT
	}
	if (!sevOK || sev == 0) && devSev != "" {
		if d, ok := cefSeverity(devSev); ok {
			sev, sevOK = d, true
		}
	}
	if sevOK {
		ev.Severity = sev
	}
	switch {
	case !rt.IsZero():
		ev.Time = rt
	case !startT.IsZero():
		ev.Time = startT
	case !endT.IsZero():
		ev.Time = endT
	default:
		ev.Time, _ = syslogPrefix(line[:i], now)
	}
	return ev, nil
}

// cefExtension splits an extension into key=value pairs. A key is a run of [A-Za-z0-9_.,[\]]
// preceded by a space (or the start) and followed by an unescaped '='. A value runs until the
// space before the next key; trailing spaces are dropped and escapes undone.
func cefExtension(ext string) []cefPair {
	ext = strings.TrimLeft(ext, " ")
	pairs := make([]cefPair, 0, 24)
	keyStart, eq := -1, -1
	for j := 0; j < len(ext); j++ {
		if ext[j] != '=' || cefEscaped(ext, j) {
			continue
		}
		ks := j
		for ks > 0 && cefKeyChar(ext[ks-1]) {
			ks--
		}
		if ks == j || (ks > 0 && ext[ks-1] != ' ') {
			continue
		}
		if eq >= 0 {
			pairs = append(pairs, cefPair{key: ext[keyStart:eq], val: cefUnescapeValue(strings.TrimRight(ext[eq+1:ks], " "))})
		}
		keyStart, eq = ks, j
	}
	if eq >= 0 {
		pairs = append(pairs, cefPair{key: ext[keyStart:eq], val: cefUnescapeValue(strings.TrimRight(ext[eq+1:], " "))})
	}
	return pairs
}

// cefEscaped reports whether the byte at j is preceded by an odd number of backslashes.
func cefEscaped(s string, j int) bool {
	n := 0
	for k := j - 1; k >= 0 && s[k] == '\\'; k-- {
		n++
	}
	return n%2 == 1
}

func cefKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ',' || c == '[' || c == ']'
}

func cefUnescapeHeader(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '|' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func cefUnescapeValue(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '=', '\\', '|':
				c = s[i+1]
				i++
			case 'n':
				c = '\n'
				i++
			case 'r':
				c = '\r'
				i++
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// cefLabel returns the value of key+"Label" with surrounding quotes removed.
func cefLabel(pairs []cefPair, key string) string {
	for _, kv := range pairs {
		if len(kv.key) == len(key)+5 && strings.HasPrefix(kv.key, key) && strings.HasSuffix(kv.key, "Label") {
			return strings.Trim(kv.val, `"`)
		}
	}
	return ""
}

// cefLabelKind maps a custom field label to an observable kind, or "".
func cefLabelKind(label string) string {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "url", "request url", "requesturl", "full url", "malicious url", "uri":
		return "url"
	case "domain", "domain name", "dns domain", "query", "dns query", "hostname", "host name":
		return "domain"
	case "md5", "sha1", "sha256", "sha-1", "sha-256", "hash", "file hash", "filehash", "file md5", "file sha1", "file sha256":
		return "hash"
	case "ip", "ip address", "remote ip", "attacker ip", "source ip", "destination ip":
		return "ip"
	}
	return ""
}

// cefHashKey reports whether a vendor key names a file digest, e.g. TrendMicroDsFileSHA256.
func cefHashKey(k string) bool {
	if len(k) < 3 {
		return false
	}
	l := strings.ToLower(k)
	return strings.HasSuffix(l, "md5") || strings.HasSuffix(l, "sha1") || strings.HasSuffix(l, "sha256")
}

// cefRequest records the request field as a URL, or as a domain when it is a bare host name.
func cefRequest(ev *Event, v string) {
	v = strings.TrimPrefix(v, `\"`)
	v = strings.TrimSuffix(v, `\"`)
	v = strings.Trim(v, `"`)
	switch {
	case txtAbsent(v):
	case strings.Contains(v, "://"):
		txtObs(ev, "url", v, "request")
	case strings.ContainsAny(v, "/?"):
		txtObs(ev, "url", "http://"+v, "request")
	default:
		txtObs(ev, "domain", v, "request")
	}
}

// cefSeverity maps a CEF severity (0-10 or Unknown/Low/Medium/High/Very-High) to 0-4.
func cefSeverity(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		switch {
		case n <= 0:
			return 0, n == 0
		case n <= 3:
			return 1, true
		case n <= 6:
			return 2, true
		case n <= 8:
			return 3, true
		case n <= 10:
			return 4, true
		}
		return 0, false
	}
	return txtSeverity(s)
}

// cefTimeLayouts are the date formats CEF allows for rt/start/end besides epoch milliseconds,
// plus a few seen from vendors.
var cefTimeLayouts = [...]string{
	"Jan 2 2006 15:04:05.000",
	"Jan 2 2006 15:04:05",
	"Jan 2 15:04:05.000",
	"Jan 2 15:04:05",
	"2 January 2006 15:04:05",
	"2006-01-02 15:04:05",
}

// cefTime reads epoch milliseconds or one of the CEF date formats (a trailing zone name is
// ignored, UTC assumed); the zero time when none fits.
func cefTime(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if txtDigits(v) {
		return txtEpoch(v)
	}
	if t := txtISO(v); !t.IsZero() {
		return t
	}
	if i := strings.LastIndexByte(v, ' '); i > 0 {
		if z := v[i+1:]; z == "GMT" || z == "UTC" || z == "Z" {
			v = v[:i]
		}
	}
	v = strings.Join(strings.Fields(v), " ")
	for _, layout := range cefTimeLayouts {
		t, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		if t.Year() == 0 {
			t = txtClock(t.Format("15:04:05.000"), t.Month().String(), t.Day(), "", now)
		}
		return t.UTC()
	}
	return time.Time{}
}

// truncate cuts s to at most n bytes.
func txtTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
