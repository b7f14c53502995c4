package parse

import (
	"bytes"
	"strings"
)

const suricataFormat = "suricata_eve"

// SuricataEVE reads Suricata EVE JSON records (one JSON object per record, event_type says
// the kind). It reads alert, flow, netflow, drop, dns, http, tls, fileinfo, anomaly, ssh,
// smtp and any other event type that carries a 5-tuple; stats and other records without
// addresses are unsupported.
type SuricataEVE struct{}

var _ Parser = (*SuricataEVE)(nil)

// NewSuricataEVE returns the Suricata EVE JSON parser.
func NewSuricataEVE() *SuricataEVE { return &SuricataEVE{} }

// Name returns "suricata_eve".
func (*SuricataEVE) Name() string { return suricataFormat }

// Detect reports whether raw is an EVE record: a JSON object with "event_type" and
// "timestamp" members that is not an ECS document (Elastic's Suricata module keeps
// suricata.eve.event_type).
func (*SuricataEVE) Detect(raw []byte) bool {
	return looksLikeJSONObject(raw) && hasJSONKey(raw, "event_type") && hasJSONKey(raw, "timestamp") &&
		!isECSDocument(raw)
}

type suricataState struct {
	rec       jsonRecord
	ev        Event
	obs       observables
	eventType string
	sigID     string
	severity  int
	httpHost  string
	httpURL   string
	httpPort  int
	// dns v1 layout (one answer per record) and the current v2 answers element
	rrtype, rdata   string
	ansType, ansVal string
}

// Parse reads one EVE record.
func (*SuricataEVE) Parse(raw []byte) (Event, error) {
	st := suricataState{rec: jsonRecord{format: suricataFormat}}
	if err := walkRecord(suricataFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if st.eventType == "" {
		return Event{}, unsupported(suricataFormat, "no event_type")
	}
	ev := st.ev
	ev.Vendor, ev.Product, ev.Kind = "Suricata", "EVE", st.eventType
	if u := suricataURL(st.httpHost, st.httpPort, st.httpURL); u != "" {
		st.obs.add("url", u, "http.url")
	}
	if st.httpHost != "" {
		st.obs.addHost(st.httpHost, "http.hostname")
		if ev.DstHost == "" && !isIPText(st.httpHost) {
			ev.DstHost = st.httpHost
		}
	}
	if ev.Rule == "" && st.sigID != "" {
		ev.Rule = "sid:" + st.sigID
	}
	ev.Severity = suricataSeverity(st.severity)
	if ev.Action == "" && st.eventType == "drop" {
		ev.Action = "drop"
	}
	if ev.SrcIP == "" && ev.DstIP == "" && len(st.obs) == 0 {
		return Event{}, unsupported(suricataFormat, "event_type "+st.eventType+" carries no addresses")
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *suricataState) visit(path []byte, v jsonValue) bool {
	switch v.Kind {
	case jsonObject, jsonArray:
		switch string(path) {
		case "alert", "dns", "dns.answers", "dns.queries", "dns.grouped", "http", "tls", "fileinfo", "anomaly":
			return true
		}
		if bytes.HasPrefix(path, []byte("dns.grouped.")) {
			return true
		}
		// Not a container this parser reads: the field switch below flags it when a
		// scalar was expected there.
	case jsonObjectEnd:
		switch string(path) {
		case "dns.answers":
			st.dnsAnswer(st.ansType, st.ansVal, "dns.answers.rdata")
			st.ansType, st.ansVal = "", ""
		case "dns":
			st.dnsAnswer(st.rrtype, st.rdata, "dns.rdata")
		}
		return false
	}
	r := &st.rec
	switch string(path) {
	case "timestamp":
		st.ev.Time = r.time(path, v)
	case "event_type":
		st.eventType = suricataEventType(r, path, v)
	case "src_ip":
		st.ev.SrcIP = r.str(path, v)
	case "dest_ip":
		st.ev.DstIP = r.str(path, v)
	case "src_port":
		st.ev.SrcPort = r.port(path, v)
	case "dest_port":
		st.ev.DstPort = r.port(path, v)
	case "proto":
		st.ev.Protocol = r.protocol(path, v)
	case "alert.action":
		st.ev.Action = suricataAction(r, path, v)
	case "alert.signature":
		st.ev.Rule = r.str(path, v)
	case "alert.signature_id":
		st.sigID = r.str(path, v)
	case "alert.severity":
		st.severity, _ = r.integer(path, v)
	case "dns.rrname", "dns.answers.rrname", "dns.queries.rrname":
		st.obs.add("domain", r.str(path, v), "dns.rrname")
	case "dns.rrtype":
		st.rrtype = r.str(path, v)
	case "dns.rdata":
		st.rdata = r.str(path, v)
	case "dns.answers.rrtype":
		st.ansType = r.str(path, v)
	case "dns.answers.rdata":
		st.ansVal = r.str(path, v)
	case "http.hostname":
		st.httpHost = r.str(path, v)
	case "http.url":
		st.httpURL = r.str(path, v)
	case "http.http_port":
		st.httpPort = r.port(path, v)
	case "tls.sni":
		sni := r.str(path, v)
		st.obs.addHost(sni, "tls.sni")
		if st.ev.DstHost == "" {
			st.ev.DstHost = sni
		}
	case "fileinfo.md5":
		st.obs.addHash("md5", r.str(path, v), "fileinfo.md5")
	case "fileinfo.sha1":
		st.obs.addHash("sha1", r.str(path, v), "fileinfo.sha1")
	case "fileinfo.sha256":
		st.obs.addHash("sha256", r.str(path, v), "fileinfo.sha256")
	case "anomaly.event":
		if st.ev.Rule == "" {
			st.ev.Rule = r.str(path, v)
		}
	default:
		if rrtype, ok := bytes.CutPrefix(path, []byte("dns.grouped.")); ok {
			st.dnsAnswer(string(rrtype), r.str(path, v), "dns.grouped")
		}
	}
	return false
}

// dnsAnswer adds one DNS answer: addresses as ip, names as domain, other record data ignored.
func (st *suricataState) dnsAnswer(rrtype, rdata, field string) {
	if rdata == "" {
		return
	}
	switch rrtype {
	case "A", "AAAA":
		st.obs.add("ip", rdata, field)
	case "CNAME", "NS", "PTR", "DNAME":
		st.obs.add("domain", rdata, field)
	case "":
		st.obs.addHost(rdata, field)
	}
}

func suricataEventType(r *jsonRecord, path []byte, v jsonValue) string {
	if v.Kind == jsonString && !v.Esc {
		switch string(v.Raw) {
		case "alert":
			return "alert"
		case "flow":
			return "flow"
		case "dns":
			return "dns"
		case "http":
			return "http"
		case "tls":
			return "tls"
		case "fileinfo":
			return "fileinfo"
		case "anomaly":
			return "anomaly"
		case "netflow":
			return "netflow"
		case "drop":
			return "drop"
		}
	}
	if !v.isScalar() {
		r.typeErr(path, "string")
		return ""
	}
	return v.text()
}

func suricataAction(r *jsonRecord, path []byte, v jsonValue) string {
	if v.Kind == jsonString && !v.Esc {
		switch string(v.Raw) {
		case "allowed":
			return "allowed"
		case "blocked":
			return "blocked"
		}
	}
	return r.str(path, v)
}

// suricataSeverity maps Suricata's priority (1 highest … 3 low, 4+ informational) onto the
// Event scale.
func suricataSeverity(p int) int {
	switch p {
	case 1:
		return 3
	case 2:
		return 2
	case 3:
		return 1
	}
	return 0
}

// suricataURL joins the HTTP host and the request target into a full URL unless the target
// already is one. Without a host a relative target gives "".
func suricataURL(host string, port int, target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target
	}
	if host == "" || target == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(host) + len(target) + 14)
	b.WriteString("http://")
	if strings.IndexByte(host, ':') >= 0 && isIPText(host) {
		b.WriteByte('[')
		b.WriteString(host)
		b.WriteByte(']')
	} else {
		b.WriteString(host)
	}
	if port != 0 && port != 80 {
		b.WriteByte(':')
		b.WriteString(itoa(port))
	}
	if !strings.HasPrefix(target, "/") {
		b.WriteByte('/')
	}
	b.WriteString(target)
	return b.String()
}
