package parse

import (
	"bytes"
	"strings"
)

const zeekFormat = "zeek"

// Zeek reads Zeek (Bro) JSON log records. It accepts the spellings found in the wild: plain
// Zeek JSON with dotted keys ("id.orig_h"), JSON streaming logs with "_path"/"_write_ts",
// Kafka-writer records with "@stream" and underscore keys ("id_orig_h"), records wrapped in
// a {"<log>": {...}} object (metron-bro-plugin-kafka), nested "id" objects, and a Splunk
// search-export envelope whose result._raw holds a Zeek record. "ts" may be epoch seconds or
// ISO 8601 text. conn, dns, http, ssl, files, notice, x509, intel, pe, smtp, rdp, software,
// weird, ssh and other logs with a connection id are read; housekeeping logs (stats,
// capture_loss, loaded_scripts, packet_filter, reporter, known_devices) are unsupported.
type Zeek struct{}

var _ Parser = (*Zeek)(nil)

// NewZeek returns the Zeek JSON parser.
func NewZeek() *Zeek { return &Zeek{} }

// Name returns "zeek".
func (*Zeek) Name() string { return zeekFormat }

// Detect reports whether raw looks like a Zeek JSON record: a connection id key
// ("id.orig_h" or "id_orig_h"), or "ts" together with a member only Zeek logs have ("uid",
// "fuid", "_path", "@stream", "note", "software_type", "certificate.serial", ...).
// Records carrying "event_type" (Suricata) or an ECS version are left to those parsers.
func (*Zeek) Detect(raw []byte) bool {
	if !looksLikeJSONObject(raw) || hasJSONKey(raw, "event_type") || isECSDocument(raw) {
		return false
	}
	if hasJSONKey(raw, "id.orig_h") || hasJSONKey(raw, "id_orig_h") {
		return true
	}
	if hasJSONKey(raw, "_raw") && bytes.Contains(raw, []byte(`\"id.orig_h\"`)) {
		return true // Splunk export of a Zeek record
	}
	if !hasJSONKey(raw, "ts") {
		return false
	}
	for _, k := range [...]string{"uid", "fuid", "_path", "@stream", "note", "software_type", "certificate.serial", "seen.indicator", "port_num"} {
		if hasJSONKey(raw, k) {
			return true
		}
	}
	return false
}

// Zeek field groups seen in a record, used to name the log when the record does not.
const (
	zkDNS = 1 << iota
	zkHTTP
	zkNotice
	zkFiles
	zkX509
	zkIntel
	zkConn
	zkSSL
	zkSMTP
	zkSoftware
	zkRDP
	zkPE
	zkSSH
	zkWeird
	zkDPD
)

type zeekState struct {
	rec     jsonRecord
	ev      Event
	obs     observables
	kind    string
	prefix  int // length of the "<log>." wrapper prefix to strip
	members int // top-level members seen
	seen    int
	hasTS   bool
	inner   string // Splunk result._raw

	host, uri       string
	hostPort        int
	src, dst        string
	notePort        int
	tx, rx          string
	indicator       string
	indicatorType   string
	source          string
	name            string
	cookie          string
	dropped         bool
	serverName      string
	identifiedByKey bool
}

// Parse reads one Zeek JSON record.
func (z *Zeek) Parse(raw []byte) (Event, error) { return z.parse(raw, 0) }

func (z *Zeek) parse(raw []byte, nesting int) (Event, error) {
	st := zeekState{rec: jsonRecord{format: zeekFormat}}
	if err := walkRecord(zeekFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if st.inner != "" && !st.hasTS {
		if nesting > 0 {
			return Event{}, unsupported(zeekFormat, "nested envelope")
		}
		return z.parse([]byte(st.inner), nesting+1)
	}
	kind := st.kind
	if kind == "" {
		kind = zeekInferKind(st.seen)
	}
	switch kind {
	case "stats", "capture_loss", "loaded_scripts", "packet_filter", "reporter", "known_devices", "print":
		return Event{}, unsupported(zeekFormat, "log "+kind+" is not read")
	}
	if !st.hasTS {
		return Event{}, unsupported(zeekFormat, "no ts member")
	}
	ev := st.ev
	ev.Vendor, ev.Product, ev.Kind = "Zeek", "Zeek", kind
	if ev.SrcIP == "" {
		ev.SrcIP = st.src
	}
	if ev.DstIP == "" {
		ev.DstIP = st.dst
	}
	if ev.DstPort == 0 {
		ev.DstPort = st.notePort
	}
	if ev.SrcIP == "" {
		ev.SrcIP = st.tx
	}
	if ev.DstIP == "" {
		ev.DstIP = st.rx
	}
	switch kind {
	case "software", "known_hosts", "known_services", "known_certs":
		if ev.SrcIP == "" {
			ev.SrcIP = st.host
			ev.SrcPort = st.hostPort
		}
	case "rdp":
		if ev.User == "" {
			ev.User = st.cookie
		}
	case "weird", "dpd":
		if ev.Rule == "" {
			ev.Rule = st.name
		}
	default:
		if st.host != "" {
			st.obs.addHost(st.host, "host")
			if !isIPText(st.host) {
				ev.DstHost = st.host
			}
			if u := zeekURL(st.host, st.uri); u != "" {
				st.obs.add("url", u, "host+uri")
			}
		}
	}
	if st.serverName != "" {
		st.obs.addHost(st.serverName, "server_name")
		if ev.DstHost == "" {
			ev.DstHost = st.serverName
		}
	}
	if st.indicator != "" {
		zeekIndicator(&st.obs, st.indicatorType, st.indicator)
		if ev.Rule == "" {
			ev.Rule = st.source
		}
	}
	if ev.Protocol == "" && ev.SrcIP != "" {
		switch kind {
		case "http", "ssl", "smtp", "ssh", "rdp", "ftp", "rfb", "mysql", "smb_files", "smb_mapping", "ntlm", "kerberos":
			ev.Protocol = "tcp" // these logs only exist for TCP connections and carry no proto
		}
	}
	if st.dropped && ev.Action == "" {
		ev.Action = "drop"
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *zeekState) visit(path []byte, v jsonValue) bool {
	top := bytes.IndexByte(path, '.') < 0
	if top && v.Kind != jsonObjectEnd {
		st.members++
	}
	switch v.Kind {
	case jsonObject:
		if top && st.members == 1 && string(path) != "id" && string(path) != "result" {
			// {"conn": {...}} wrapper: the key names the log.
			st.kind = string(path)
			st.prefix = len(path) + 1
		}
		return true
	case jsonArray:
		switch string(st.strip(path)) {
		case "answers", "tx_hosts", "rx_hosts", "san.dns", "san.ip", "sources", "actions":
			return true
		}
		// Other arrays fall through: a scalar field given as an array is a type error.
	case jsonObjectEnd:
		return false
	}
	p := st.strip(path)
	r := &st.rec
	switch string(p) {
	case "_path", "@stream":
		if st.kind == "" {
			st.kind = r.str(path, v)
		}
	case "ts":
		st.ev.Time = r.time(path, v)
		st.hasTS = v.Kind != jsonNull
	case "id.orig_h", "id_orig_h":
		st.ev.SrcIP = r.str(path, v)
	case "id.resp_h", "id_resp_h":
		st.ev.DstIP = r.str(path, v)
	case "id.orig_p", "id_orig_p":
		st.ev.SrcPort = r.port(path, v)
	case "id.resp_p", "id_resp_p":
		st.ev.DstPort = r.port(path, v)
	case "proto":
		st.ev.Protocol = r.protocol(path, v)
	case "query":
		st.seen |= zkDNS
		st.obs.addHost(r.str(path, v), "query")
	case "answers":
		st.obs.addHost(r.str(path, v), "answers")
	case "method", "uri", "status_code", "user_agent":
		st.seen |= zkHTTP
		if string(p) == "uri" {
			st.uri = r.str(path, v)
		}
	case "host":
		st.host = r.str(path, v)
	case "host_p", "port_num":
		st.hostPort = r.port(path, v)
	case "username", "user":
		st.ev.User = r.str(path, v)
	case "cookie":
		st.seen |= zkRDP
		st.cookie = r.str(path, v)
	case "security_protocol":
		st.seen |= zkRDP
	case "md5":
		st.seen |= zkFiles
		st.obs.addHash("md5", r.str(path, v), "md5")
	case "sha1":
		st.seen |= zkFiles
		st.obs.addHash("sha1", r.str(path, v), "sha1")
	case "sha256":
		st.seen |= zkFiles
		st.obs.addHash("sha256", r.str(path, v), "sha256")
	case "fuid", "mime_type":
		st.seen |= zkFiles
	case "tx_hosts":
		if st.tx == "" {
			st.tx = r.str(path, v)
		}
	case "rx_hosts":
		if st.rx == "" {
			st.rx = r.str(path, v)
		}
	case "note":
		st.seen |= zkNotice
		st.ev.Rule = r.str(path, v)
	case "src":
		st.src = r.str(path, v)
	case "dst":
		st.dst = r.str(path, v)
	case "p":
		st.notePort = r.port(path, v)
	case "actions":
		if strings.HasSuffix(r.str(path, v), "ACTION_DROP") {
			st.dropped = true
		}
	case "dropped":
		st.dropped = v.Kind == jsonBool && string(v.Raw) == "true"
	case "seen.indicator":
		st.seen |= zkIntel
		st.indicator = r.str(path, v)
	case "seen.indicator_type":
		st.indicatorType = r.str(path, v)
	case "sources":
		if st.source == "" {
			st.source = r.str(path, v)
		}
	case "server_name":
		st.seen |= zkSSL
		st.serverName = r.str(path, v)
	case "cipher", "ja3", "ssl_history", "validation_status":
		st.seen |= zkSSL
	case "fingerprint", "certificate.serial", "certificate.subject":
		st.seen |= zkX509
	case "san.dns":
		st.obs.addHost(r.str(path, v), "san.dns")
	case "san.ip":
		st.obs.add("ip", r.str(path, v), "san.ip")
	case "conn_state", "history", "orig_bytes":
		st.seen |= zkConn
	case "helo", "mailfrom", "rcptto":
		st.seen |= zkSMTP
	case "x_originating_ip":
		st.obs.add("ip", r.str(path, v), "x_originating_ip")
	case "software_type", "unparsed_version":
		st.seen |= zkSoftware
	case "compile_ts", "machine", "section_names":
		st.seen |= zkPE
	case "auth_success", "auth_attempts":
		st.seen |= zkSSH
	case "name":
		st.name = r.str(path, v)
	case "notice", "peer":
		st.seen |= zkWeird
	case "failure_reason", "analyzer":
		st.seen |= zkDPD
	case "result._raw":
		st.inner = r.str(path, v)
	}
	return false
}

// strip removes the "<log>." wrapper prefix from a path.
func (st *zeekState) strip(path []byte) []byte {
	if st.prefix > 0 && len(path) > st.prefix {
		return path[st.prefix:]
	}
	return path
}

// zeekInferKind names the log from the fields a record had when it does not say itself.
func zeekInferKind(seen int) string {
	switch {
	case seen&zkIntel != 0:
		return "intel"
	case seen&zkNotice != 0:
		return "notice"
	case seen&zkDNS != 0:
		return "dns"
	case seen&zkHTTP != 0:
		return "http"
	case seen&zkX509 != 0:
		return "x509"
	case seen&zkSSL != 0:
		return "ssl"
	case seen&zkPE != 0:
		return "pe"
	case seen&zkFiles != 0:
		return "files"
	case seen&zkSMTP != 0:
		return "smtp"
	case seen&zkSoftware != 0:
		return "software"
	case seen&zkRDP != 0:
		return "rdp"
	case seen&zkSSH != 0:
		return "ssh"
	case seen&zkConn != 0:
		return "conn"
	case seen&zkDPD != 0:
		return "dpd"
	case seen&zkWeird != 0:
		return "weird"
	}
	return "unknown"
}

// zeekIndicator adds an intel.log indicator according to its Intel::TYPE.
func zeekIndicator(obs *observables, typ, value string) {
	switch typ {
	case "Intel::ADDR", "Intel::SUBNET":
		obs.add("ip", value, "seen.indicator")
	case "Intel::DOMAIN":
		obs.add("domain", value, "seen.indicator")
	case "Intel::URL":
		if !strings.Contains(value, "://") {
			value = "http://" + value
		}
		obs.add("url", value, "seen.indicator")
	case "Intel::FILE_HASH", "Intel::CERT_HASH":
		obs.addHash("hash", value, "seen.indicator")
	}
}

// zeekURL joins an HTTP Host header and a request target into a URL.
func zeekURL(host, uri string) string {
	if uri == "" || uri == "-" {
		return ""
	}
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		return uri
	}
	if !strings.HasPrefix(uri, "/") {
		return "" // CONNECT targets and the like
	}
	if strings.IndexByte(host, ':') >= 0 && isIPText(host) {
		host = "[" + host + "]"
	}
	return "http://" + host + uri
}
