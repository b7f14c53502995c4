package parse

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// CiscoASA reads Cisco ASA (and Firepower Threat Defense) syslog messages:
//
//	[<PRI>][syslog header ]%ASA-<level>-<message id>: <text>
//
// Connection, deny, translation, local-host, VPN and AAA messages are read into addresses,
// ports, protocol, user and action word; any other message id yields an Event whose
// observables are the IP addresses found in the text.
type CiscoASA struct {
	now func() time.Time
}

// NewCiscoASA returns a Cisco ASA parser.
func NewCiscoASA() *CiscoASA { return &CiscoASA{now: time.Now} }

var _ Parser = (*CiscoASA)(nil)

// Name returns "cisco_asa".
func (*CiscoASA) Name() string { return nameCiscoASA }

// Detect reports whether raw holds a "%ASA-<digit>-" (or "%FTD-") tag in its first bytes.
func (*CiscoASA) Detect(raw []byte) bool { return textFormat(raw) == nameCiscoASA }

// asaMarker returns the index of "%ASA-d-" or "%FTD-d-", or -1.
func asaMarker(w []byte) int {
	for _, tag := range [...][]byte{[]byte("%ASA-"), []byte("%FTD-")} {
		if i := bytes.Index(w, tag); i >= 0 && i+7 <= len(w) && w[i+5] >= '0' && w[i+5] <= '7' && w[i+6] == '-' {
			return i
		}
	}
	return -1
}

// Parse reads one ASA message.
func (p *CiscoASA) Parse(raw []byte) (Event, error) {
	line := txtTrim(raw)
	i := asaMarker(line)
	if i < 0 {
		return Event{}, &Error{Format: nameCiscoASA, Reason: ReasonMalformed, Detail: "no %ASA-<level>- tag"}
	}
	rest := string(line[i+7:])
	colon := strings.IndexByte(rest, ':')
	if colon <= 0 || !txtDigits(rest[:colon]) {
		return Event{}, &Error{Format: nameCiscoASA, Reason: ReasonMalformed,
			Detail: fmt.Sprintf("message id %q after %s is not a number", txtTruncate(rest, 12), line[i:i+7])}
	}
	id := rest[:colon]
	msg := strings.TrimSpace(rest[colon+1:])
	ev := Event{
		Vendor:   "Cisco",
		Product:  "ASA",
		Kind:     id,
		Severity: asaSeverity(line[i+5]),
	}
	if line[i+1] == 'F' {
		ev.Product = "FTD"
	}
	var host string
	ev.Time, host = syslogPrefix(line[:i], p.now())
	_ = host
	asaMessage(&ev, id, msg)
	return ev, nil
}

// asaSeverity maps ASA levels (0 emergencies .. 7 debugging) to 0-4.
func asaSeverity(c byte) int {
	switch c {
	case '0', '1', '2':
		return 4
	case '3':
		return 3
	case '4':
		return 2
	case '5':
		return 1
	}
	return 0
}

// asaEnd is one end of a connection as written by the ASA.
type asaEnd struct {
	ip   string
	port int
	user string
}

// asaEndpoint reads "[iface:]ip[/port][(user)]" or "ip:port"; ok is false when no address is
// found.
func asaEndpoint(tok string) (asaEnd, bool) {
	var e asaEnd
	tok = strings.TrimRight(tok, ",;")
	if j := strings.IndexByte(tok, '('); j >= 0 {
		u := strings.TrimSuffix(tok[j+1:], ")")
		if k := strings.IndexByte(u, ')'); k >= 0 {
			u = u[:k]
		}
		if !txtIsIP(strings.SplitN(u, "/", 2)[0]) {
			e.user = u
		}
		tok = tok[:j]
	}
	tok = strings.TrimSuffix(tok, ":")
	if j := strings.LastIndexByte(tok, '/'); j >= 0 {
		e.port = txtPort(tok[j+1:])
		tok = tok[:j]
	}
	switch {
	case txtIsIP(tok):
		e.ip = tok
	default:
		if j := strings.IndexByte(tok, ':'); j >= 0 && txtIsIP(tok[j+1:]) {
			e.ip = tok[j+1:]
		} else if j := strings.LastIndexByte(tok, ':'); j >= 0 && txtIsIP(tok[:j]) {
			e.ip, e.port = tok[:j], txtPort(tok[j+1:])
		}
	}
	return e, e.ip != ""
}

// asaAfter returns the token after the first occurrence of word at or after from, and its index.
func asaAfter(f []string, word string, from int) (string, int) {
	for k := from; k+1 < len(f); k++ {
		if f[k] == word {
			return f[k+1], k + 1
		}
	}
	return "", -1
}

func (e asaEnd) setSrc(ev *Event) {
	ev.SrcIP, ev.SrcPort = e.ip, e.port
	if ev.User == "" && e.user != "" {
		ev.User = e.user
	}
}

func (e asaEnd) setDst(ev *Event) {
	ev.DstIP, ev.DstPort = e.ip, e.port
	if ev.User == "" && e.user != "" {
		ev.User = e.user
	}
}

// asaMessage reads the message text of a known id into ev.
func asaMessage(ev *Event, id, msg string) {
	f := strings.Fields(msg)
	if len(f) == 0 {
		return
	}
	switch id {
	case "302013", "302015", "302017", "302303": // Built {inbound|outbound} PROTO connection ID for A (mapped) to B (mapped)
		ev.Action = "Built"
		asaConn(ev, f)
	case "302014", "302016", "302018", "302304": // Teardown PROTO connection ID for A to B duration ...
		ev.Action = "Teardown"
		asaConn(ev, f)
	case "302020", "302021": // Built {inbound|outbound} ICMP connection for faddr F gaddr G laddr L / Teardown ICMP ...
		ev.Action = f[0]
		ev.Protocol = "icmp"
		fa, _ := asaAfter(f, "faddr", 0)
		la, _ := asaAfter(f, "laddr", 0)
		fe, _ := asaEndpoint(fa)
		le, _ := asaEndpoint(la)
		fe.port, le.port = 0, 0
		if len(f) > 1 && f[1] == "outbound" {
			le.setSrc(ev)
			fe.setDst(ev)
		} else {
			fe.setSrc(ev)
			le.setDst(ev)
		}
		asaTrailingUser(ev, f)
	case "305011", "305012": // Built|Teardown {dynamic|static} PROTO translation from A to MAPPED
		// Only the real address is kept: the mapped one is the firewall's own address.
		ev.Action = f[0]
		if len(f) > 2 {
			ev.Protocol = strings.ToLower(f[2])
		}
		a, _ := asaAfter(f, "from", 0)
		if e, ok := asaEndpoint(a); ok {
			e.setSrc(ev)
		}
	case "609001", "609002": // Built|Teardown local-host IFACE:IP
		ev.Action = f[0]
		if len(f) > 2 {
			if e, ok := asaEndpoint(f[2]); ok {
				txtObs(ev, "ip", e.ip, "local-host")
			}
		}
	case "106100": // access-list ACL {permitted|denied|est-allowed} PROTO IFACE/IP(PORT) -> IFACE/IP(PORT) hit-cnt ...
		if len(f) >= 7 && f[0] == "access-list" {
			ev.Rule = f[1]
			ev.Action = f[2]
			ev.Protocol = strings.ToLower(f[3])
			ev.SrcIP, ev.SrcPort = asaSlashEnd(f[4])
			if f[5] == "->" {
				ev.DstIP, ev.DstPort = asaSlashEnd(f[6])
			}
		}
	case "113019", "713050", "713202", "713219", "713220", "713227", "713259", "713902", "713904",
		"713120", "713128", "713130", "713201", "713257", "713228", "713049", "713119":
		// Group = G, [Username = U,] IP = PEER, ...
		if ip := asaAssign(msg, "IP = "); ip != "" {
			ev.SrcIP = ip
		}
		if u := asaAssign(msg, "Username = "); u != "" && !txtIsIP(u) {
			ev.User = u
		}
	case "113004", "113005", "113008", "113009", "113012", "113015":
		if u := asaAssign(msg, "user = "); u != "" {
			ev.User = u
		}
		if ip := asaAssign(msg, "user IP = "); ip != "" {
			ev.SrcIP = ip
		}
	case "111008", "111009", "111010": // User 'admin' executed ... from IP x
		if len(f) > 1 && f[0] == "User" {
			ev.User = strings.Trim(f[1], "',")
		}
		if a, _ := asaAfter(f, "IP", 0); a != "" {
			if e, ok := asaEndpoint(a); ok {
				ev.SrcIP = e.ip
			}
		}
	default:
		if asaDeny(ev, id, f) {
			return
		}
		for _, tok := range f {
			tok = strings.TrimRight(tok, ",.;")
			if e, ok := asaEndpoint(tok); ok {
				txtObs(ev, "ip", e.ip, "message")
			}
		}
	}
}

// asaConn reads "Built|Teardown [inbound|outbound] PROTO connection ID for A ... to B ...".
// For outbound connections the "to" side is the initiator.
func asaConn(ev *Event, f []string) {
	k := 1
	outbound := false
	if k < len(f) && (f[k] == "inbound" || f[k] == "outbound") {
		outbound = f[k] == "outbound"
		k++
	}
	if k < len(f) {
		ev.Protocol = strings.ToLower(f[k])
	}
	a, ai := asaAfter(f, "for", k)
	b, _ := asaAfter(f, "to", max(ai, 0))
	ae, _ := asaEndpoint(a)
	be, _ := asaEndpoint(b)
	// "for A (mapped)(user) to B": the user may follow the mapped address of A.
	if ai > 0 && ai+1 < len(f) && ae.user == "" {
		if j := strings.Index(f[ai+1], ")("); j >= 0 {
			ae.user = strings.TrimSuffix(f[ai+1][j+2:], ")")
		}
	}
	if outbound {
		be.setSrc(ev)
		ae.setDst(ev)
	} else {
		ae.setSrc(ev)
		be.setDst(ev)
	}
	asaTrailingUser(ev, f)
}

// asaTrailingUser takes a final "(user)" token as the user when none was found.
func asaTrailingUser(ev *Event, f []string) {
	if ev.User != "" {
		return
	}
	last := f[len(f)-1]
	if len(last) > 2 && last[0] == '(' && last[len(last)-1] == ')' {
		if u := last[1 : len(last)-1]; !strings.ContainsAny(u, "/") && !txtIsIP(u) {
			ev.User = u
		}
	}
}

// asaDeny reads the deny and drop messages that name both ends as "src A dst B" or
// "from A to B". It reports whether the id is one of them.
func asaDeny(ev *Event, id string, f []string) bool {
	switch id {
	case "106001", "106002", "106006", "106007", "106010", "106011", "106012", "106013", "106014",
		"106015", "106016", "106017", "106018", "106020", "106021", "106022", "106023", "106027",
		"710002", "710003", "710005", "710006", "313001", "313004", "313005", "313008",
		"500003", "500004", "500005", "110002", "110003", "419001", "419002":
	default:
		return false
	}
	switch id {
	case "710002":
		ev.Action = "permitted"
	case "710005":
		ev.Action = "discarded"
	case "110002", "110003", "500003", "500004", "500005", "419001", "419002", "313005":
		ev.Action = "dropped"
	default:
		ev.Action = "Deny"
	}
	for k, w := range f {
		switch strings.ToLower(w) {
		case "tcp", "udp", "icmp", "icmp6", "gre", "esp", "sctp":
			if ev.Protocol == "" && k < 4 {
				ev.Protocol = strings.ToLower(w)
			}
		}
	}
	if id == "106010" { // Deny inbound protocol N src ...
		if n, _ := asaAfter(f, "protocol", 0); n != "" {
			ev.Protocol = txtProto(n)
		}
	}
	src, si := asaAfter(f, "src", 0)
	dst, _ := asaAfter(f, "dst", max(si, 0))
	if src == "" {
		src, si = asaAfter(f, "from", 0)
		if src == "laddr" { // 313004: from laddr IP on interface X to IP
			src, si = asaAfter(f, "laddr", si)
		}
		dst, _ = asaAfter(f, "to", max(si, 0))
	}
	if e, ok := asaEndpoint(src); ok {
		e.setSrc(ev)
	}
	if e, ok := asaEndpoint(dst); ok {
		e.setDst(ev)
	}
	if acl, _ := asaAfter(f, "access-group", 0); acl != "" {
		ev.Rule = strings.Trim(acl, `"`)
	}
	return true
}

// asaSlashEnd reads "iface/ip(port)" as used by message 106100.
func asaSlashEnd(tok string) (string, int) {
	if j := strings.IndexByte(tok, '/'); j >= 0 {
		tok = tok[j+1:]
	}
	p := 0
	if j := strings.IndexByte(tok, '('); j >= 0 {
		p = txtPort(strings.TrimSuffix(tok[j+1:], ")"))
		tok = tok[:j]
	}
	if _, err := netip.ParseAddr(tok); err != nil {
		return "", 0
	}
	return tok, p
}

// asaAssign returns the value after "name" up to the next comma or space.
func asaAssign(msg, name string) string {
	i := strings.Index(msg, name)
	if i < 0 {
		return ""
	}
	v := msg[i+len(name):]
	if j := strings.IndexAny(v, ", "); j >= 0 {
		v = v[:j]
	}
	return v
}
