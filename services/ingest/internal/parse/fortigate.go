package parse

import (
	"strings"
	"time"
)

// FortiGate reads FortiOS key=value log lines, with or without a syslog header: pairs are
// separated by spaces, values are bare or double-quoted (an unterminated quote runs to the end
// of the line), and anything before the first pair is treated as the syslog header.
type FortiGate struct{}

// NewFortiGate returns a FortiGate parser.
func NewFortiGate() *FortiGate { return &FortiGate{} }

var _ Parser = (*FortiGate)(nil)

// Name returns "fortigate".
func (*FortiGate) Name() string { return nameFortiGate }

// Detect reports whether raw has logid= and type= pairs with date=, devid= or eventtime= in its
// first bytes (and is not CEF, ASA or PAN-OS).
func (*FortiGate) Detect(raw []byte) bool { return textFormat(raw) == nameFortiGate }

// fortiKV calls fn for each key=value pair of s.
func fortiKV(s string, fn func(k, v string)) {
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		ks := i
		for i < len(s) && fortiKeyChar(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '=' || i == ks {
			for i < len(s) && s[i] != ' ' {
				i++
			}
			continue
		}
		key := s[ks:i]
		i++
		var v string
		if i < len(s) && s[i] == '"' {
			i++
			end := strings.IndexByte(s[i:], '"')
			if end < 0 {
				v, i = s[i:], len(s)
			} else {
				v, i = s[i:i+end], i+end+1
			}
		} else {
			vs := i
			for i < len(s) && s[i] != ' ' {
				i++
			}
			v = s[vs:i]
		}
		fn(key, v)
	}
}

func fortiKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// Parse reads one FortiGate record.
func (*FortiGate) Parse(raw []byte) (Event, error) {
	line := string(txtTrim(raw))
	ev := Event{Vendor: "Fortinet", Product: "FortiGate"}
	var typ, subtype, date, clock, tz, eventtime, level, severity string
	var hostname, url, service, utmaction, attack, virus, policyname, policyid string
	pairs := 0
	fortiKV(line, func(k, v string) {
		pairs++
		switch k {
		case "type":
			typ = v
		case "subtype":
			subtype = v
		case "date":
			date = v
		case "time":
			clock = v
		case "tz":
			tz = v
		case "eventtime":
			eventtime = v
		case "level":
			level = v
		case "severity", "crlevel":
			if severity == "" || k == "severity" {
				severity = v
			}
		case "srcip":
			ev.SrcIP = v
		case "dstip":
			ev.DstIP = v
		case "srcport":
			ev.SrcPort = txtPort(v)
		case "dstport":
			ev.DstPort = txtPort(v)
		case "proto":
			ev.Protocol = txtProto(v)
		case "action":
			ev.Action = v
		case "utmaction":
			utmaction = v
		case "user":
			if !txtAbsent(v) {
				ev.User = v
			}
		case "srcname":
			ev.SrcHost = v
		case "hostname":
			hostname = v
		case "url":
			url = v
		case "service":
			service = v
		case "qname":
			txtObs(&ev, "domain", v, k)
		case "attack":
			attack = v
		case "virus":
			virus = v
		case "policyname":
			policyname = v
		case "policyid":
			policyid = v
		case "filehash", "analyticscksum", "checksum", "filehashsrc":
			txtObs(&ev, "hash", v, k)
		case "remip":
			txtObs(&ev, "ip", v, k)
		case "ipaddr":
			for _, a := range strings.Split(v, ",") {
				txtObs(&ev, "ip", strings.TrimSpace(a), k)
			}
		}
	})
	if pairs == 0 || typ == "" {
		return Event{}, &Error{Format: nameFortiGate, Reason: ReasonMalformed, Detail: "no type= pair"}
	}
	ev.Kind = typ
	if subtype != "" {
		ev.Kind = typ + "/" + subtype
	}
	switch strings.ToLower(utmaction) {
	case "block", "blocked", "reset", "deny", "dropped":
		ev.Action = utmaction
	}
	switch {
	case attack != "":
		ev.Rule = attack
	case virus != "":
		ev.Rule = virus
	case policyname != "":
		ev.Rule = policyname
	case policyid != "":
		ev.Rule = "policy " + policyid
	}
	if s, ok := txtSeverity(severity); ok && severity != "" {
		ev.Severity = s
	} else if s, ok := txtSeverity(level); ok {
		ev.Severity = s
	}
	ev.Time = fortiTime(eventtime, date, clock, tz)
	if !txtAbsent(hostname) {
		ev.DstHost = hostname
		txtObs(&ev, "domain", hostname, "hostname")
	}
	fortiURL(&ev, url, hostname, service)
	return ev, nil
}

// fortiTime prefers the epoch eventtime, then date+time with the tz offset (UTC when absent).
func fortiTime(eventtime, date, clock, tz string) time.Time {
	if t := txtEpoch(eventtime); !t.IsZero() {
		return t
	}
	if date == "" || clock == "" {
		return time.Time{}
	}
	if tz != "" {
		if t, err := time.Parse("2006-01-02 15:04:05 -0700", date+" "+clock+" "+tz); err == nil {
			return t.UTC()
		}
	}
	if t, err := time.Parse("2006-01-02 15:04:05", date+" "+clock); err == nil {
		return t
	}
	return time.Time{}
}

// fortiURL records url=, joined with hostname= when it is only a path.
func fortiURL(ev *Event, url, hostname, service string) {
	switch {
	case txtAbsent(url):
	case strings.Contains(url, "://"):
		txtObs(ev, "url", url, "url")
	case strings.HasPrefix(url, "/") && !txtAbsent(hostname):
		scheme := "http://"
		if strings.EqualFold(service, "HTTPS") || ev.DstPort == 443 {
			scheme = "https://"
		}
		txtObs(ev, "url", scheme+hostname+url, "url")
	}
}
