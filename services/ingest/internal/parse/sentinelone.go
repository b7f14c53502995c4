package parse

import (
	"strings"
	"time"
)

const sentineloneFormat = "sentinelone"

// SentinelOne reads SentinelOne Management API JSON: cloud-detection (STAR / custom rule)
// alerts with alertInfo, ruleInfo and process info objects, and threats with threatInfo.
// Addresses, DNS requests, threat-intel indicators, process and file hashes, user, agent
// host, rule severity and mitigation status are mapped.
type SentinelOne struct{}

var _ Parser = (*SentinelOne)(nil)

// NewSentinelOne returns the SentinelOne alert and threat parser.
func NewSentinelOne() *SentinelOne { return &SentinelOne{} }

// Name returns "sentinelone".
func (*SentinelOne) Name() string { return sentineloneFormat }

// Detect reports whether raw is a SentinelOne alert ("alertInfo" with "ruleInfo" or
// "agentDetectionInfo") or threat ("threatInfo" with "agentRealtimeInfo" or
// "agentDetectionInfo").
func (*SentinelOne) Detect(raw []byte) bool {
	if !vendorJSON(raw) {
		return false
	}
	agent := hasJSONKey(raw, "agentDetectionInfo") || hasJSONKey(raw, "agentRealtimeInfo")
	return hasJSONKey(raw, "alertInfo") && (agent || hasJSONKey(raw, "ruleInfo")) ||
		hasJSONKey(raw, "threatInfo") && agent
}

type sentineloneState struct {
	rec        jsonRecord
	ev         Event
	obs        observables
	alert      bool
	threat     bool
	created    time.Time
	srcMachine string
	agentIP    string
	agentName  string
	loginUser  string
	tiType     string
	tiValue    string
	confidence string
}

// Parse reads one SentinelOne alert or threat.
func (*SentinelOne) Parse(raw []byte) (Event, error) {
	st := sentineloneState{rec: jsonRecord{format: sentineloneFormat}}
	if err := walkRecord(sentineloneFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if !st.alert && !st.threat {
		return Event{}, unsupported(sentineloneFormat, "no alertInfo or threatInfo")
	}
	ev := st.ev
	ev.Vendor, ev.Product, ev.Time = "SentinelOne", "Singularity", st.created
	if st.threat {
		ev.Kind = "threat"
	} else {
		ev.Kind = "alert"
	}
	if ev.SrcIP == "" {
		ev.SrcIP = st.srcMachine
	}
	if ev.SrcIP == "" {
		ev.SrcIP, _, _ = strings.Cut(st.agentIP, ",")
	}
	if ev.SrcHost == "" {
		ev.SrcHost = st.agentName
	}
	if ev.User == "" {
		ev.User = st.loginUser
	}
	if ev.Severity == 0 {
		switch strings.ToLower(st.confidence) {
		case "malicious":
			ev.Severity = 3
		case "suspicious":
			ev.Severity = 2
		}
	}
	if st.tiValue != "" {
		sentineloneIndicator(&st.obs, st.tiType, st.tiValue)
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *sentineloneState) visit(path []byte, v jsonValue) bool {
	switch v.Kind {
	case jsonObject:
		switch string(path) {
		case "alertInfo":
			st.alert = true
		case "threatInfo":
			st.threat = true
		}
		return true
	case jsonObjectEnd:
		return false
	}
	// Arrays fall through: a field read as a scalar given as an array is a type error.
	r := &st.rec
	switch string(path) {
	case "alertInfo.createdAt", "threatInfo.createdAt", "threatInfo.identifiedAt":
		if st.created.IsZero() {
			st.created = r.time(path, v)
		}
	case "alertInfo.srcIp":
		st.ev.SrcIP = r.str(path, v)
	case "alertInfo.srcMachineIp":
		st.srcMachine = r.str(path, v)
	case "alertInfo.dstIp":
		st.ev.DstIP = r.str(path, v)
	case "alertInfo.srcPort":
		st.ev.SrcPort = r.port(path, v)
	case "alertInfo.dstPort":
		st.ev.DstPort = r.port(path, v)
	case "alertInfo.dnsRequest":
		st.obs.addHost(r.str(path, v), string(path))
	case "alertInfo.tiIndicatorType":
		st.tiType = r.str(path, v)
	case "alertInfo.tiIndicatorValue":
		st.tiValue = r.str(path, v)
	case "alertInfo.loginsUserName":
		st.loginUser = r.str(path, v)
	case "alertInfo.moduleSha1":
		st.obs.addHash("sha1", r.str(path, v), string(path))
	case "ruleInfo.name", "threatInfo.threatName":
		st.ev.Rule = r.str(path, v)
	case "ruleInfo.severity":
		st.ev.Severity = severityWord(r.str(path, v))
	case "threatInfo.confidenceLevel":
		st.confidence = r.str(path, v)
	case "threatInfo.mitigationStatus":
		st.ev.Action = r.str(path, v)
	case "sourceProcessInfo.user", "threatInfo.processUser":
		st.ev.User = r.str(path, v)
	case "agentDetectionInfo.name", "agentRealtimeInfo.name", "agentRealtimeInfo.agentComputerName":
		if st.agentName == "" {
			st.agentName = r.str(path, v)
		}
	case "agentDetectionInfo.agentIpV4":
		st.agentIP = r.str(path, v)
	case "sourceProcessInfo.fileHashMd5", "sourceParentProcessInfo.fileHashMd5", "threatInfo.md5":
		st.obs.addHash("md5", r.str(path, v), string(path))
	case "sourceProcessInfo.fileHashSha1", "sourceParentProcessInfo.fileHashSha1",
		"targetProcessInfo.tgtFileHashSha1", "threatInfo.sha1":
		st.obs.addHash("sha1", r.str(path, v), string(path))
	case "sourceProcessInfo.fileHashSha256", "sourceParentProcessInfo.fileHashSha256",
		"targetProcessInfo.tgtFileHashSha256", "threatInfo.sha256":
		st.obs.addHash("sha256", r.str(path, v), string(path))
	}
	return false
}

// sentineloneIndicator adds a threat-intel indicator named by tiIndicatorType.
func sentineloneIndicator(obs *observables, typ, value string) {
	switch strings.ToUpper(typ) {
	case "IPV4", "IPV6", "IP":
		obs.add("ip", value, "alertInfo.tiIndicatorValue")
	case "DNS", "DOMAIN":
		obs.add("domain", value, "alertInfo.tiIndicatorValue")
	case "URL":
		obs.add("url", value, "alertInfo.tiIndicatorValue")
	case "MD5", "SHA1", "SHA256":
		obs.addHash("hash", value, "alertInfo.tiIndicatorValue")
	}
}
