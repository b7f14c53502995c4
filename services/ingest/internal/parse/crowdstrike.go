package parse

import (
	"bytes"
	"strings"
	"time"
)

const crowdstrikeFormat = "crowdstrike"

// CrowdStrike reads CrowdStrike Falcon JSON: Falcon Data Replicator (FDR) telemetry, one
// event per record named by event_simpleName with string values, and Streaming API / SIEM
// connector events ({"metadata": {"eventType": ...}, "event": {...}}) such as
// DetectionSummaryEvent, EPPDetectionSummaryEvent and audit events. Network connections,
// DNS requests, hashes, IOCs, user, host, severity and the prevention outcome are mapped.
// The sensor's public address (aip) is not an indicator and is not read.
type CrowdStrike struct{}

var _ Parser = (*CrowdStrike)(nil)

// NewCrowdStrike returns the CrowdStrike Falcon JSON parser.
func NewCrowdStrike() *CrowdStrike { return &CrowdStrike{} }

// Name returns "crowdstrike".
func (*CrowdStrike) Name() string { return crowdstrikeFormat }

// Detect reports whether raw is an FDR event ("event_simpleName") or a streaming event
// ("metadata" with "eventType" and an "event" or "customerIDString" member, and no OCSF
// "class_uid").
func (*CrowdStrike) Detect(raw []byte) bool {
	if !vendorJSON(raw) {
		return false
	}
	if hasJSONKey(raw, "event_simpleName") {
		return true
	}
	return hasJSONKey(raw, "metadata") && hasJSONKey(raw, "eventType") &&
		(hasJSONKey(raw, "event") || hasJSONKey(raw, "customerIDString")) && !hasJSONKey(raw, "class_uid")
}

type crowdstrikeState struct {
	rec       jsonRecord
	ev        Event
	obs       observables
	kind      string
	streaming bool
	created   time.Time
	context   time.Time
	cloud     time.Time
	direction string
	severity  int
	sevName   string
	ioaRule   string
	detect    string
	name      string
	tactic    string
	technique string
	desc      string
	blocked   bool
	iocType   string
	iocValue  string
}

// Parse reads one CrowdStrike record.
func (*CrowdStrike) Parse(raw []byte) (Event, error) {
	st := crowdstrikeState{rec: jsonRecord{format: crowdstrikeFormat}}
	if err := walkRecord(crowdstrikeFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if st.kind == "" {
		return Event{}, unsupported(crowdstrikeFormat, "no event_simpleName or metadata.eventType")
	}
	ev := st.ev
	ev.Vendor, ev.Kind = "CrowdStrike", st.kind
	if st.streaming {
		ev.Product = "Falcon"
	} else {
		ev.Product = "Falcon Data Replicator"
	}
	for _, t := range [...]time.Time{st.created, st.context, st.cloud} {
		if !t.IsZero() {
			ev.Time = t
			break
		}
	}
	if st.direction == "1" || strings.Contains(st.kind, "ReceiveAccept") {
		ev.SrcIP, ev.DstIP = ev.DstIP, ev.SrcIP
		ev.SrcPort, ev.DstPort = ev.DstPort, ev.SrcPort
	}
	switch {
	case st.severity > 5:
		ev.Severity = crowdstrikeSeverity(st.severity)
	case st.severity > 0:
		ev.Severity = st.severity - 1 // DetectionSummaryEvent: 1 informational … 5 critical
	default:
		ev.Severity = severityWord(st.sevName)
	}
	switch {
	case st.ioaRule != "":
		ev.Rule = st.ioaRule
	case st.detect != "":
		ev.Rule = st.detect
	case st.tactic != "" && st.technique != "":
		ev.Rule = st.tactic + " / " + st.technique
	default:
		ev.Rule = st.name
	}
	switch {
	case st.blocked || strings.HasPrefix(st.desc, "Prevention"):
		ev.Action = "blocked"
	case st.desc != "":
		ev.Action = "detected"
	}
	if st.iocValue != "" {
		crowdstrikeIOC(&st.obs, st.iocType, st.iocValue)
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *crowdstrikeState) visit(path []byte, v jsonValue) bool {
	if v.Kind == jsonObjectEnd {
		return false
	}
	r := &st.rec
	if p, ok := bytes.CutPrefix(path, []byte("event.")); ok {
		path = p
	}
	if v.Kind == jsonObject || v.Kind == jsonArray {
		switch string(path) {
		case "metadata", "event", "PatternDispositionFlags", "NetworkAccesses", "DnsRequests", "ExecutablesWritten":
			return true
		}
		// Other containers fall through: a scalar field given as a container is a type error.
	}
	switch string(path) {
	case "event_simpleName":
		st.kind = r.str(path, v)
	case "metadata.eventType":
		st.kind = r.str(path, v)
		st.streaming = true
	case "metadata.eventCreationTime":
		st.created = r.time(path, v)
	case "ContextTimeStamp":
		st.context = r.time(path, v)
	case "timestamp":
		st.cloud = r.time(path, v)
	case "LocalAddressIP4", "LocalAddressIP6", "LocalIP", "UserIp":
		if s := r.str(path, v); s != "" && st.ev.SrcIP == "" {
			st.ev.SrcIP = s
		}
	case "RemoteAddressIP4", "RemoteAddressIP6":
		st.ev.DstIP = r.str(path, v)
	case "LocalPort":
		st.ev.SrcPort = r.port(path, v)
	case "RemotePort":
		st.ev.DstPort = r.port(path, v)
	case "Protocol":
		st.ev.Protocol = r.protocol(path, v)
	case "ConnectionDirection":
		st.direction = r.str(path, v)
	case "DomainName", "DnsRequests.DomainName":
		st.obs.addHost(r.str(path, v), "DomainName")
	case "IP4Records", "IP6Records":
		st.obs.addList("ip", r.str(path, v), ';', string(path))
	case "CNAMERecords":
		st.obs.addList("domain", r.str(path, v), ';', string(path))
	case "RespondingDnsServer":
		if st.ev.DstIP == "" {
			st.ev.DstIP = r.str(path, v)
		}
	case "FirstIP4Record", "NetworkAccesses.RemoteAddress":
		st.obs.addHost(r.str(path, v), string(path))
	case "SHA256HashData", "TargetSHA256HashData", "SHA256String", "ExecutablesWritten.SHA256HashData":
		st.obs.addHash("sha256", r.str(path, v), string(path))
	case "SHA1HashData", "SHA1String":
		st.obs.addHash("sha1", r.str(path, v), string(path))
	case "MD5HashData", "MD5String":
		st.obs.addHash("md5", r.str(path, v), string(path))
	case "IOCType":
		st.iocType = r.str(path, v)
	case "IOCValue":
		st.iocValue = r.str(path, v)
	case "UserName", "UserId":
		if s := r.str(path, v); s != "" && st.ev.User == "" {
			st.ev.User = s
		}
	case "ComputerName", "Hostname":
		st.ev.SrcHost = r.str(path, v)
	case "Severity":
		st.severity, _ = r.integer(path, v)
	case "SeverityName":
		st.sevName = r.str(path, v)
	case "IOARuleName":
		st.ioaRule = r.str(path, v)
	case "DetectName":
		st.detect = r.str(path, v)
	case "Name":
		st.name = r.str(path, v)
	case "Tactic":
		st.tactic = r.str(path, v)
	case "Technique":
		st.technique = r.str(path, v)
	case "PatternDispositionDescription":
		st.desc = r.str(path, v)
	default:
		if flag, ok := bytes.CutPrefix(path, []byte("PatternDispositionFlags.")); ok &&
			v.Kind == jsonBool && string(v.Raw) == "true" {
			switch string(flag) {
			case "ProcessBlocked", "OperationBlocked", "RegistryOperationBlocked", "FsOperationBlocked",
				"KillProcess", "KillParent", "KillSubProcess", "QuarantineFile", "QuarantineMachine":
				st.blocked = true
			}
		}
	}
	return false
}

// crowdstrikeSeverity maps Falcon's 0–100 severity (10 informational, 30 low, 50 medium,
// 70 high, 90 critical) onto the Event scale.
func crowdstrikeSeverity(s int) int {
	switch {
	case s < 20:
		return 0
	case s < 40:
		return 1
	case s < 60:
		return 2
	case s < 80:
		return 3
	}
	return 4
}

// crowdstrikeIOC adds the IOC a detection names (IOCType hash_sha256, domain, ipv4 ...).
func crowdstrikeIOC(obs *observables, typ, value string) {
	switch typ {
	case "hash_sha256":
		obs.addHash("sha256", value, "IOCValue")
	case "hash_md5":
		obs.addHash("md5", value, "IOCValue")
	case "hash_sha1":
		obs.addHash("sha1", value, "IOCValue")
	case "domain":
		obs.add("domain", value, "IOCValue")
	case "ipv4", "ipv6":
		obs.add("ip", value, "IOCValue")
	case "url":
		obs.add("url", value, "IOCValue")
	}
}
