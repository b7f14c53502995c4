package parse

import (
	"bytes"
	"strings"
)

const ecsFormat = "ecs"

// ECS reads Elastic Common Schema documents through the standard ECS fields only, so any
// producer's ECS output reads the same: @timestamp, source/destination (ip, address, port,
// domain), client/server as fallbacks, network.transport, event.dataset/module/kind,
// event.action/type/outcome, dns.question.name and answers, url.full/original/domain,
// *.hash.md5/sha1/sha256 (file, process, dll ...), threat.indicator.* and
// threat.enrichments.indicator.*, host.name, user.name and rule.name. Nested objects and
// dotted member names are both accepted.
type ECS struct{}

var _ Parser = (*ECS)(nil)

// NewECS returns the ECS document parser.
func NewECS() *ECS { return &ECS{} }

// Name returns "ecs".
func (*ECS) Name() string { return ecsFormat }

// Detect reports whether raw is an ECS document: it has an "ecs" (or "ecs.version") member
// and "@timestamp".
func (*ECS) Detect(raw []byte) bool {
	return looksLikeJSONObject(raw) && isECSDocument(raw) && hasJSONKey(raw, "@timestamp")
}

type ecsState struct {
	rec              jsonRecord
	ev               Event
	obs              observables
	known            bool
	dataset, module  string
	kind             string
	action, outcome  string
	eventType        string
	srcAddr, dstAddr string
	clientIP         string
	serverIP         string
	clientPort       int
	serverPort       int
	hostName         string
	sourceUser       string
	ruleID           string
	ianaNumber       string
}

// Parse reads one ECS document.
func (*ECS) Parse(raw []byte) (Event, error) {
	st := ecsState{rec: jsonRecord{format: ecsFormat}}
	if err := walkRecord(ecsFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if !st.known {
		return Event{}, unsupported(ecsFormat, "no ECS field this parser reads")
	}
	ev := st.ev
	ev.Vendor, ev.Product = "Elastic", "ECS"
	for _, k := range [...]string{st.dataset, st.module, st.kind, "event"} {
		if k != "" {
			ev.Kind = k
			break
		}
	}
	if ev.SrcIP == "" {
		ev.SrcIP = firstNonEmpty(st.srcAddr, st.clientIP)
	}
	if ev.DstIP == "" {
		ev.DstIP = firstNonEmpty(st.dstAddr, st.serverIP)
	}
	if ev.SrcPort == 0 {
		ev.SrcPort = st.clientPort
	}
	if ev.DstPort == 0 {
		ev.DstPort = st.serverPort
	}
	if ev.Protocol == "" && st.ianaNumber != "" {
		ev.Protocol = protocolName([]byte(st.ianaNumber))
	}
	if ev.SrcHost == "" && ev.SrcIP == "" {
		// host.name is the observer; it only names an end when the event has no source.
		ev.SrcHost = st.hostName
	}
	if ev.User == "" {
		ev.User = st.sourceUser
	}
	if ev.Rule == "" {
		ev.Rule = st.ruleID
	}
	ev.Action = firstNonEmpty(st.action, st.eventType, st.outcome)
	ev.Observables = st.obs
	return ev, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func (st *ecsState) visit(path []byte, v jsonValue) bool {
	switch v.Kind {
	case jsonObject, jsonArray:
		return true
	case jsonObjectEnd:
		return false
	}
	r := &st.rec
	known := true
	switch string(path) {
	case "@timestamp":
		st.ev.Time = r.time(path, v)
		known = false
	case "event.dataset":
		st.dataset = r.str(path, v)
	case "event.module":
		st.module = r.str(path, v)
	case "event.kind":
		st.kind = r.str(path, v)
	case "event.action":
		st.action = r.str(path, v)
	case "event.outcome":
		st.outcome = r.str(path, v)
	case "event.type":
		switch s := r.str(path, v); s {
		case "allowed", "denied":
			st.eventType = s
		}
	case "source.ip":
		st.ev.SrcIP = r.str(path, v)
	case "source.address":
		st.srcAddr = r.str(path, v)
	case "destination.ip":
		st.ev.DstIP = r.str(path, v)
	case "destination.address":
		st.dstAddr = r.str(path, v)
	case "client.ip":
		st.clientIP = r.str(path, v)
	case "server.ip":
		st.serverIP = r.str(path, v)
	case "source.port":
		st.ev.SrcPort = r.port(path, v)
	case "destination.port":
		st.ev.DstPort = r.port(path, v)
	case "client.port":
		st.clientPort = r.port(path, v)
	case "server.port":
		st.serverPort = r.port(path, v)
	case "source.domain":
		st.ev.SrcHost = r.str(path, v)
	case "destination.domain":
		st.ev.DstHost = r.str(path, v)
	case "network.transport":
		st.ev.Protocol = r.protocol(path, v)
	case "network.iana_number":
		st.ianaNumber = r.str(path, v)
	case "dns.question.name":
		st.obs.addHost(r.str(path, v), "dns.question.name")
	case "dns.answers.data":
		st.obs.addHost(r.str(path, v), "dns.answers.data")
	case "dns.resolved_ip":
		st.obs.add("ip", r.str(path, v), "dns.resolved_ip")
	case "url.full":
		st.obs.add("url", r.str(path, v), "url.full")
	case "url.original":
		if s := r.str(path, v); strings.Contains(s, "://") {
			st.obs.add("url", s, "url.original")
		}
	case "url.domain":
		st.obs.addHost(r.str(path, v), "url.domain")
	case "host.name", "host.hostname":
		if st.hostName == "" {
			st.hostName = r.str(path, v)
		}
	case "user.name":
		st.ev.User = r.str(path, v)
	case "source.user.name":
		st.sourceUser = r.str(path, v)
	case "rule.name":
		st.ev.Rule = r.str(path, v)
	case "rule.id":
		st.ruleID = r.str(path, v)
	default:
		known = st.indicator(path, v)
	}
	if known {
		st.known = true
	}
	return false
}

// indicator reads hashes anywhere (…hash.md5/sha1/sha256) and threat indicator fields.
func (st *ecsState) indicator(path []byte, v jsonValue) bool {
	r := &st.rec
	if i := bytes.LastIndex(path, []byte("hash.")); i >= 0 && (i == 0 || path[i-1] == '.') {
		switch alg := string(path[i+5:]); alg {
		case "md5", "sha1", "sha256":
			st.obs.addHash(alg, r.str(path, v), string(path))
			return true
		}
		return false
	}
	if !bytes.HasPrefix(path, []byte("threat.")) {
		return false
	}
	i := bytes.Index(path, []byte("indicator."))
	if i < 0 {
		return false
	}
	switch string(path[i+len("indicator."):]) {
	case "ip":
		st.obs.add("ip", r.str(path, v), string(path))
	case "domain", "url.domain":
		st.obs.addHost(r.str(path, v), string(path))
	case "url.full", "url.original":
		st.obs.add("url", r.str(path, v), string(path))
	default:
		return false
	}
	return true
}
