package parse

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

const ocsfFormat = "ocsf"

// OCSF reads Open Cybersecurity Schema Framework events of any class through the schema's
// standard objects: class_uid, time (epoch ms) or time_dt, src_endpoint / dst_endpoint (ip,
// port, hostname), connection_info.protocol_name/num, disposition / disposition_id and
// action / action_id, severity_id, finding_info.title (finding.title, rule.name), actor.user /
// user, device as host context, query.hostname and answers, http_request.url, tls.sni,
// file hashes / fingerprints [{algorithm_id, value}] wherever they sit, observables[] and
// evidences[].
type OCSF struct{}

var _ Parser = (*OCSF)(nil)

// NewOCSF returns the OCSF event parser.
func NewOCSF() *OCSF { return &OCSF{} }

// Name returns "ocsf".
func (*OCSF) Name() string { return ocsfFormat }

// Detect reports whether raw is an OCSF event: "class_uid" with "metadata", "category_uid"
// or "type_uid", and no ECS version member.
func (*OCSF) Detect(raw []byte) bool {
	return looksLikeJSONObject(raw) && hasJSONKey(raw, "class_uid") &&
		(hasJSONKey(raw, "metadata") || hasJSONKey(raw, "category_uid") || hasJSONKey(raw, "type_uid")) &&
		!isECSDocument(raw)
}

type ocsfState struct {
	rec           jsonRecord
	ev            Event
	obs           observables
	classUID      int
	hasClass      bool
	className     string
	timeDT        time.Time
	protoNum      string
	disposition   string
	dispositionID int
	action        string
	actionID      int
	severity      string
	findingTitle  string
	oldTitle      string
	ruleName      string
	analytic      string
	actorUser     string
	deviceHost    string
	deviceIP      string
	vendor        string
	product       string
	// pending members of the current hashes / observables element
	hashAlg  int
	hashName string
	hashVal  string
	obsType  int
	obsVal   string
}

// Parse reads one OCSF event.
func (*OCSF) Parse(raw []byte) (Event, error) {
	st := ocsfState{rec: jsonRecord{format: ocsfFormat}}
	if err := walkRecord(ocsfFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if !st.hasClass {
		return Event{}, unsupported(ocsfFormat, "no class_uid")
	}
	ev := st.ev
	ev.Vendor = firstNonEmpty(st.vendor, "OCSF")
	ev.Product = st.product
	ev.Kind = ocsfClassName(st.classUID, st.className)
	if ev.Time.IsZero() {
		ev.Time = st.timeDT
	}
	if ev.Protocol == "" && st.protoNum != "" {
		ev.Protocol = protocolName([]byte(st.protoNum))
	}
	ev.Action = firstNonEmpty(st.disposition, ocsfDisposition(st.dispositionID), st.action, ocsfAction(st.actionID))
	if ev.Severity == 0 {
		ev.Severity = severityWord(st.severity)
	}
	ev.Rule = firstNonEmpty(st.findingTitle, st.oldTitle, st.ruleName, st.analytic)
	if ev.User == "" {
		ev.User = st.actorUser
	}
	if ev.SrcHost == "" && ev.SrcIP == "" {
		// The reporting device is the asset for host findings, not for network traffic
		// (category 4), where it is the sensor.
		ev.SrcHost = st.deviceHost
		if st.classUID/1000 != 4 {
			ev.SrcIP = st.deviceIP
		}
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *ocsfState) visit(path []byte, v jsonValue) bool {
	switch v.Kind {
	case jsonObject, jsonArray:
		return true
	case jsonObjectEnd:
		switch string(lastSegment(path)) {
		case "hashes", "fingerprints":
			st.addHash(path)
		case "observables":
			st.addObservable()
		}
		return false
	}
	r := &st.rec
	switch string(path) {
	case "class_uid":
		st.classUID, st.hasClass = r.integer(path, v)
	case "class_name":
		st.className = r.str(path, v)
	case "time":
		st.ev.Time = r.time(path, v)
	case "time_dt":
		st.timeDT = r.time(path, v)
	case "src_endpoint.ip":
		st.ev.SrcIP = r.str(path, v)
	case "dst_endpoint.ip":
		st.ev.DstIP = r.str(path, v)
	case "src_endpoint.port":
		st.ev.SrcPort = r.port(path, v)
	case "dst_endpoint.port":
		st.ev.DstPort = r.port(path, v)
	case "src_endpoint.hostname":
		st.ev.SrcHost = r.str(path, v)
	case "dst_endpoint.hostname":
		st.ev.DstHost = r.str(path, v)
	case "connection_info.protocol_name":
		st.ev.Protocol = r.protocol(path, v)
	case "connection_info.protocol_num":
		st.protoNum = r.str(path, v)
	case "disposition":
		st.disposition = r.str(path, v)
	case "disposition_id":
		st.dispositionID, _ = r.integer(path, v)
	case "action":
		st.action = r.str(path, v)
	case "action_id":
		st.actionID, _ = r.integer(path, v)
	case "severity_id":
		if n, ok := r.integer(path, v); ok {
			st.ev.Severity = ocsfSeverity(n)
		}
	case "severity":
		st.severity = r.str(path, v)
	case "finding_info.title":
		st.findingTitle = r.str(path, v)
	case "finding.title":
		st.oldTitle = r.str(path, v)
	case "rule.name":
		st.ruleName = r.str(path, v)
	case "analytic.name":
		st.analytic = r.str(path, v)
	case "user.name":
		st.ev.User = r.str(path, v)
	case "actor.user.name":
		st.actorUser = r.str(path, v)
	case "device.hostname":
		st.deviceHost = r.str(path, v)
	case "device.ip":
		st.deviceIP = r.str(path, v)
	case "metadata.product.vendor_name":
		st.vendor = r.str(path, v)
	case "metadata.product.name":
		st.product = r.str(path, v)
	case "query.hostname":
		st.obs.addHost(r.str(path, v), "query.hostname")
	case "answers.rdata":
		st.obs.addHost(r.str(path, v), "answers.rdata")
	case "http_request.url.url_string":
		st.obs.add("url", r.str(path, v), "http_request.url.url_string")
	case "http_request.url.hostname":
		st.obs.addHost(r.str(path, v), "http_request.url.hostname")
	case "tls.sni":
		st.obs.addHost(r.str(path, v), "tls.sni")
	case "observables.type_id":
		st.obsType, _ = r.integer(path, v)
	case "observables.value":
		st.obsVal = r.str(path, v)
	default:
		st.nested(path, v)
	}
	return false
}

// nested reads hash elements and evidences wherever they are nested.
func (st *ocsfState) nested(path []byte, v jsonValue) {
	r := &st.rec
	parent := path
	if i := bytes.LastIndexByte(path, '.'); i >= 0 {
		parent = path[:i]
	}
	switch string(lastSegment(parent)) {
	case "hashes", "fingerprints":
		switch string(lastSegment(path)) {
		case "algorithm_id":
			st.hashAlg, _ = r.integer(path, v)
		case "algorithm":
			st.hashName = r.str(path, v)
		case "value":
			st.hashVal = r.str(path, v)
		}
		return
	}
	if !bytes.HasPrefix(path, []byte("evidences.")) {
		return
	}
	switch {
	case bytes.HasSuffix(path, []byte("_endpoint.ip")):
		st.obs.add("ip", r.str(path, v), string(path))
	case bytes.HasSuffix(path, []byte("query.hostname")), bytes.HasSuffix(path, []byte("url.hostname")):
		st.obs.addHost(r.str(path, v), string(path))
	case bytes.HasSuffix(path, []byte("url.url_string")):
		st.obs.add("url", r.str(path, v), string(path))
	}
}

func (st *ocsfState) addHash(path []byte) {
	kind := ""
	switch st.hashAlg {
	case 1:
		kind = "md5"
	case 2:
		kind = "sha1"
	case 3:
		kind = "sha256"
	case 0:
		switch strings.ToUpper(strings.ReplaceAll(st.hashName, "-", "")) {
		case "MD5":
			kind = "md5"
		case "SHA1":
			kind = "sha1"
		case "SHA256":
			kind = "sha256"
		}
	}
	if kind != "" {
		st.obs.addHash(kind, st.hashVal, string(path))
	}
	st.hashAlg, st.hashName, st.hashVal = 0, "", ""
}

func (st *ocsfState) addObservable() {
	switch st.obsType {
	case 1: // Hostname
		st.obs.addHost(st.obsVal, "observables")
	case 2: // IP Address
		st.obs.add("ip", st.obsVal, "observables")
	case 6: // URL String
		st.obs.add("url", st.obsVal, "observables")
	case 8: // Hash
		st.obs.addHash("hash", st.obsVal, "observables")
	}
	st.obsType, st.obsVal = 0, ""
}

// ocsfSeverity maps severity_id (1 informational … 5 critical, 6 fatal) onto the Event scale.
func ocsfSeverity(id int) int {
	switch id {
	case 2:
		return 1
	case 3:
		return 2
	case 4:
		return 3
	case 5, 6:
		return 4
	}
	return 0
}

func ocsfDisposition(id int) string {
	switch id {
	case 1:
		return "allowed"
	case 2:
		return "blocked"
	case 3:
		return "quarantined"
	case 4:
		return "isolated"
	case 5:
		return "deleted"
	case 6:
		return "dropped"
	case 15:
		return "detected"
	case 17:
		return "logged"
	case 19:
		return "alert"
	}
	return ""
}

func ocsfAction(id int) string {
	switch id {
	case 1:
		return "allowed"
	case 2:
		return "denied"
	}
	return ""
}

// ocsfClassName names the event class by class_uid so producers' spellings of class_name do
// not split one kind into several.
func ocsfClassName(uid int, name string) string {
	switch uid {
	case 1001:
		return "file_activity"
	case 1007:
		return "process_activity"
	case 2001:
		return "security_finding"
	case 2002:
		return "vulnerability_finding"
	case 2003:
		return "compliance_finding"
	case 2004:
		return "detection_finding"
	case 3002:
		return "authentication"
	case 4001:
		return "network_activity"
	case 4002:
		return "http_activity"
	case 4003:
		return "dns_activity"
	case 4004:
		return "dhcp_activity"
	case 4005:
		return "rdp_activity"
	case 4006:
		return "smb_activity"
	case 4007:
		return "ssh_activity"
	case 4008:
		return "ftp_activity"
	case 4009:
		return "email_activity"
	case 6003:
		return "api_activity"
	}
	if name != "" {
		return strings.ReplaceAll(strings.ToLower(name), " ", "_")
	}
	return "class_" + strconv.Itoa(uid)
}
