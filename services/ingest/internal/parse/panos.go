package parse

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// PANOS reads Palo Alto Networks PAN-OS syslog records in the default CSV format, with or
// without a syslog header. TRAFFIC and THREAT records (THREAT includes the url, virus,
// spyware, vulnerability, wildfire, file ... subtypes) are read; a "URL" type is read with the
// THREAT layout. Other log types (SYSTEM, CONFIG, HIPMATCH, ...) are ReasonUnsupported.
//
// Field positions (0-based, after the syslog header) follow the PAN-OS "Syslog Field
// Descriptions" (Traffic Log Fields and Threat Log Fields, PAN-OS 6.1 to 10.x, which only ever
// append fields):
//
//	0 FUTURE_USE  1 Receive Time  2 Serial Number  3 Type  4 Threat/Content Type (subtype)
//	5 FUTURE_USE  6 Generated Time  7 Source Address  8 Destination Address
//	9 NAT Source IP  10 NAT Destination IP  11 Rule Name  12 Source User  13 Destination User
//	14 Application  15 Virtual System  16 Source Zone  17 Destination Zone  18 Inbound Interface
//	19 Outbound Interface  20 Log Action  21 FUTURE_USE  22 Session ID  23 Repeat Count
//	24 Source Port  25 Destination Port  26 NAT Source Port  27 NAT Destination Port  28 Flags
//	29 Protocol  30 Action
//	TRAFFIC: 31 Bytes ... 37 Category
//	THREAT:  31 URL/Filename  32 Threat ID  33 Category  34 Severity  35 Direction
//	         ... 41 Content Type  42 PCAP_ID  43 File Digest (SHA-256)
const (
	panosType      = 3
	panosSubtype   = 4
	panosGenerated = 6
	panosSrc       = 7
	panosDst       = 8
	panosRule      = 11
	panosSrcUser   = 12
	panosDstUser   = 13
	panosApp       = 14
	panosSport     = 24
	panosDport     = 25
	panosProto     = 29
	panosAction    = 30
	panosMisc      = 31
	panosThreatID  = 32
	panosSeverity  = 34
	panosDigest    = 43

	panosTrafficMin = panosAction + 1   // fields a TRAFFIC record needs
	panosThreatMin  = panosSeverity + 1 // fields a THREAT record needs
)

// panosTypes are the PAN-OS log types; a record is recognised by ",<TYPE>," after a serial
// number and a receive time.
var panosTypes = [...]string{"TRAFFIC", "THREAT", "URL", "SYSTEM", "CONFIG", "HIPMATCH", "GLOBALPROTECT",
	"USERID", "DECRYPTION", "AUTHENTICATION", "TUNNEL", "CORRELATION", "IPTAG", "SCTP", "GTP"}

// PANOS is the PAN-OS CSV parser.
type PANOS struct{}

// NewPANOS returns a PAN-OS CSV parser.
func NewPANOS() *PANOS { return &PANOS{} }

var _ Parser = (*PANOS)(nil)

// Name returns "panos".
func (*PANOS) Name() string { return namePANOS }

// Detect reports whether raw holds "<n>,<yyyy/mm/dd hh:mm:ss>,<serial>,<TYPE>," in its first
// bytes.
func (*PANOS) Detect(raw []byte) bool { return textFormat(raw) == namePANOS }

// panosLocate returns where the CSV record starts and where its type field starts.
func panosLocate(w []byte) (start, typ int, ok bool) {
	for _, t := range panosTypes {
		m := bytes.Index(w, []byte(","+t+","))
		if m < 0 {
			continue
		}
		c1 := bytes.LastIndexByte(w[:m], ',') // before serial
		if c1 < 0 {
			continue
		}
		c2 := bytes.LastIndexByte(w[:c1], ',') // before receive time
		if c2 < 0 || !panosDate(w[c2+1:c1]) {
			continue
		}
		s := bytes.LastIndexByte(w[:c2], ' ') + 1
		return s, m + 1, true
	}
	return 0, 0, false
}

// panosDate reports whether b is "yyyy/mm/dd hh:mm:ss".
func panosDate(b []byte) bool {
	if len(b) != 19 {
		return false
	}
	for i, c := range b {
		switch i {
		case 4, 7:
			if c != '/' {
				return false
			}
		case 10:
			if c != ' ' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// Parse reads one PAN-OS record.
func (*PANOS) Parse(raw []byte) (Event, error) {
	line := txtTrim(raw)
	start, _, ok := panosLocate(line)
	if !ok {
		return Event{}, &Error{Format: namePANOS, Reason: ReasonMalformed,
			Detail: "no ',<receive time>,<serial>,<TYPE>,' sequence"}
	}
	f, err := panosSplit(string(line[start:]))
	if err != "" {
		return Event{}, &Error{Format: namePANOS, Reason: ReasonMalformed, Detail: err}
	}
	typ := f[panosType]
	need := 0
	switch typ {
	case "TRAFFIC":
		need = panosTrafficMin
	case "THREAT", "URL":
		need = panosThreatMin
	default:
		return Event{}, &Error{Format: namePANOS, Reason: ReasonUnsupported, Detail: "log type " + typ}
	}
	if len(f) < need {
		return Event{}, &Error{Format: namePANOS, Reason: ReasonMalformed,
			Detail: fmt.Sprintf("%s record has %d fields, need at least %d", typ, len(f), need)}
	}
	ev := Event{
		Vendor:   "Palo Alto Networks",
		Product:  "PAN-OS",
		Kind:     typ,
		SrcIP:    f[panosSrc],
		DstIP:    f[panosDst],
		SrcPort:  txtPort(f[panosSport]),
		DstPort:  txtPort(f[panosDport]),
		Protocol: txtProto(f[panosProto]),
		Action:   f[panosAction],
		User:     f[panosSrcUser],
		Rule:     f[panosRule],
	}
	if ev.User == "" {
		ev.User = f[panosDstUser]
	}
	if sub := f[panosSubtype]; sub != "" {
		ev.Kind = typ + "/" + sub
	}
	if t, err := time.Parse("2006/01/02 15:04:05", f[panosGenerated]); err == nil {
		ev.Time = t
	}
	if typ == "TRAFFIC" {
		return ev, nil
	}
	ev.Rule = f[panosThreatID]
	if sev, ok := txtSeverity(f[panosSeverity]); ok {
		ev.Severity = sev
	}
	sub := f[panosSubtype]
	if misc := f[panosMisc]; typ == "URL" || sub == "url" {
		panosURL(&ev, misc)
	}
	if len(f) > panosDigest {
		txtObs(&ev, "hash", f[panosDigest], "file_digest")
	}
	return ev, nil
}

// panosURL records the URL of a url log ("host/path", no scheme); a bare host is a domain.
func panosURL(ev *Event, misc string) {
	misc = strings.TrimSpace(misc)
	switch {
	case txtAbsent(misc):
	case strings.Contains(misc, "://"):
		txtObs(ev, "url", misc, "url")
	case strings.ContainsAny(misc, "/?"):
		scheme := "http://"
		if ev.DstPort == 443 {
			scheme = "https://"
		}
		txtObs(ev, "url", scheme+misc, "url")
	default:
		txtObs(ev, "domain", misc, "url")
	}
}

// panosSplit splits one CSV line; fields may be double-quoted with "" for a quote. It returns
// a description of the problem for an unterminated quote.
func panosSplit(s string) ([]string, string) {
	f := make([]string, 0, 64)
	for i := 0; ; {
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			j := i + 1
			for {
				k := strings.IndexByte(s[j:], '"')
				if k < 0 {
					return nil, fmt.Sprintf("unterminated quote in field %d", len(f))
				}
				b.WriteString(s[j : j+k])
				j += k + 1
				if j < len(s) && s[j] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				break
			}
			f = append(f, b.String())
			if j < len(s) && s[j] != ',' {
				return nil, fmt.Sprintf("text after closing quote in field %d", len(f)-1)
			}
			if j >= len(s) {
				return f, ""
			}
			i = j + 1
			continue
		}
		k := strings.IndexByte(s[i:], ',')
		if k < 0 {
			return append(f, s[i:]), ""
		}
		f = append(f, s[i:i+k])
		i += k + 1
	}
}
