package parse

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// This file holds what the text parsers (CEF, FortiGate, PAN-OS, Cisco ASA) share: reading an
// optional syslog prefix, telling the four formats apart, and small value helpers.

// detectWindow is how many leading bytes Detect looks at.
const detectWindow = 512

// Text format names.
const (
	nameCEF       = "cef"
	nameFortiGate = "fortigate"
	namePANOS     = "panos"
	nameCiscoASA  = "cisco_asa"
)

// textFormat tells which text format raw is in, or "" for none. The rules are tried in a fixed
// order so that the four Detect methods never accept the same record.
func textFormat(raw []byte) string {
	w := raw
	if len(w) > detectWindow {
		w = w[:detectWindow]
	}
	if len(w) == 0 || w[0] == '{' || w[0] == '[' {
		return ""
	}
	if cefMarker(w) >= 0 {
		return nameCEF
	}
	if asaMarker(w) >= 0 {
		return nameCiscoASA
	}
	if _, _, ok := panosLocate(w); ok {
		return namePANOS
	}
	if bytes.Contains(w, []byte("logid=")) && bytes.Contains(w, []byte("type=")) &&
		(bytes.Contains(w, []byte("date=")) || bytes.Contains(w, []byte("devid=")) || bytes.Contains(w, []byte("eventtime="))) {
		return nameFortiGate
	}
	return ""
}

// syslogPrefix reads the time and host from what precedes a message in a syslog line:
// "<PRI>", an RFC 5424 "1 TIMESTAMP HOST ..." header, an RFC 3164 "Mmm dd hh:mm:ss HOST"
// header, Cisco's "Mmm dd yyyy hh:mm:ss:" or a bare ISO 8601 timestamp. Missing parts are zero.
// A year-less time gets the year that puts it closest before now.
func syslogPrefix(p []byte, now time.Time) (time.Time, string) {
	s := strings.TrimSpace(string(p))
	if strings.HasPrefix(s, "<") {
		if i := strings.IndexByte(s, '>'); i > 0 && i <= 4 {
			s = strings.TrimSpace(s[i+1:])
		}
	}
	f := strings.Fields(s)
	if len(f) >= 2 && f[0] == "1" && len(f[1]) >= 10 && f[1][4] == '-' {
		f = f[1:] // RFC 5424 version
	}
	if len(f) == 0 {
		return time.Time{}, ""
	}
	var t time.Time
	rest := f
	if len(f[0]) >= 10 && f[0][4] == '-' {
		t = txtISO(strings.TrimSuffix(f[0], ":"))
		rest = f[1:]
	} else if len(f) >= 3 && txtMonth(f[0]) > 0 {
		day, err := strconv.Atoi(f[1])
		if err == nil {
			if len(f) >= 4 && len(f[2]) == 4 && txtDigits(f[2]) {
				t = txtClock(f[3], f[0], day, f[2], now)
				rest = f[4:]
			} else {
				t = txtClock(f[2], f[0], day, "", now)
				rest = f[3:]
			}
		}
	}
	host := ""
	if len(rest) > 0 {
		host = strings.TrimSuffix(rest[0], ":")
	}
	return t, host
}

// clockTime builds a UTC time from "hh:mm:ss[.fff][:]", a month name, a day and an optional year.
func txtClock(clock, month string, day int, year string, now time.Time) time.Time {
	clock = strings.TrimSuffix(clock, ":")
	hms, frac, _ := strings.Cut(clock, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return time.Time{}
	}
	var v [3]int
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil {
			return time.Time{}
		}
		v[i] = n
	}
	ns := 0
	if frac != "" && txtDigits(frac) && len(frac) <= 9 {
		ns, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
	}
	m := txtMonth(month)
	if m == 0 || day < 1 || day > 31 || v[0] > 23 || v[1] > 59 || v[2] > 60 {
		return time.Time{}
	}
	if year != "" {
		y, _ := strconv.Atoi(year)
		return time.Date(y, m, day, v[0], v[1], v[2], ns, time.UTC)
	}
	t := time.Date(now.Year(), m, day, v[0], v[1], v[2], ns, time.UTC)
	if t.After(now.Add(48 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t
}

var monthNames = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// monthOf returns the month of an English month name or abbreviation, or 0.
func txtMonth(s string) time.Month {
	if len(s) < 3 {
		return 0
	}
	for i, m := range monthNames {
		if strings.EqualFold(s[:3], m) {
			return time.Month(i + 1)
		}
	}
	return 0
}

// parseISO parses an RFC 3339 / ISO 8601 timestamp, with or without a colon in the offset.
func txtISO(s string) time.Time {
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// epochTime reads seconds, milliseconds, microseconds or nanoseconds since 1970 (decided by
// the number of digits).
func txtEpoch(s string) time.Time {
	if !txtDigits(s) || len(s) < 9 || len(s) > 19 {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	switch {
	case len(s) <= 11:
		return time.Unix(n, 0).UTC()
	case len(s) <= 14:
		return time.UnixMilli(n).UTC()
	case len(s) <= 17:
		return time.UnixMicro(n).UTC()
	default:
		return time.Unix(0, n).UTC()
	}
}

func txtDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// port reads a port number; anything outside 0-65535 is 0.
func txtPort(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 65535 {
		return 0
	}
	return n
}

// protoName returns a lower-case protocol name; IANA numbers of common protocols are named.
func txtProto(s string) string {
	s = strings.TrimSpace(s)
	switch s {
	case "1":
		return "icmp"
	case "2":
		return "igmp"
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "47":
		return "gre"
	case "50":
		return "esp"
	case "51":
		return "ah"
	case "58":
		return "ipv6-icmp"
	case "132":
		return "sctp"
	}
	return strings.ToLower(s)
}

// severityWord maps a textual severity or log level to the normalised 0-4 scale.
func txtSeverity(s string) (int, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "unknown", "info", "informational", "information", "debug", "debugging", "none":
		return 0, true
	case "low", "notice", "notification", "notifications":
		return 1, true
	case "medium", "warning", "warnings", "warn", "moderate":
		return 2, true
	case "high", "error", "errors", "err", "major":
		return 3, true
	case "critical", "very-high", "very high", "veryhigh", "alert", "emergency", "emergencies", "crit", "emerg":
		return 4, true
	}
	return 0, false
}

// isIP reports whether s is an IP address literal.
func txtIsIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// absent reports whether a field value means "no value".
func txtAbsent(v string) bool {
	switch v {
	case "", "-", "N/A", "n/a", "NA", "none", "None", "null", "(null)", "0.0.0.0", "::":
		return true
	}
	return false
}

// trimLine removes trailing CR, LF, spaces and tabs.
func txtTrim(raw []byte) []byte {
	return bytes.TrimRight(raw, " \t\r\n")
}

// addObs appends an observable unless the value is absent.
func txtObs(ev *Event, kind, value, field string) {
	if txtAbsent(value) {
		return
	}
	ev.Observables = append(ev.Observables, Observable{Kind: kind, Value: value, Field: field})
}
