package parse

import (
	"strconv"
	"strings"
)

const sysmonFormat = "sysmon"

// Sysmon reads Windows event-log records rendered as flat JSON (NXLog, HELK/Logstash,
// Winlogbeat "event_data" and similar shippers): Sysmon events and the other channels found
// next to them (Security, System...). Network connections (Sysmon 3, Security 5156-5159),
// DNS queries (Sysmon 22: QueryName, QueryResults) and file hashes (Sysmon 1, 6, 7, 15:
// Hashes) give indicators; every other event is read as host context (computer, user, rule).
// Member names are matched on their last path segment, so {"EventData": {...}} nesting reads
// the same as flat records.
type Sysmon struct{}

var _ Parser = (*Sysmon)(nil)

// NewSysmon returns the Windows / Sysmon event JSON parser.
func NewSysmon() *Sysmon { return &Sysmon{} }

// Name returns "sysmon".
func (*Sysmon) Name() string { return sysmonFormat }

// Detect reports whether raw is a Windows event record: an "EventID" member together with
// "Channel", "SourceName" or "ProviderName".
func (*Sysmon) Detect(raw []byte) bool {
	return vendorJSON(raw) && (hasJSONKey(raw, "EventID") || hasJSONKey(raw, "EventId")) &&
		(hasJSONKey(raw, "Channel") || hasJSONKey(raw, "SourceName") || hasJSONKey(raw, "ProviderName"))
}

type sysmonState struct {
	rec          jsonRecord
	ev           Event
	obs          observables
	eventID      int
	hasID        bool
	channel      string
	source       string
	computer     string
	user         string
	targetUser   string
	subjectUser  string
	initiated    string
	direction    string
	workstation  string
	utcTime      bool
	queryResults string
}

// Parse reads one Windows event record.
func (*Sysmon) Parse(raw []byte) (Event, error) {
	st := sysmonState{rec: jsonRecord{format: sysmonFormat}}
	if err := walkRecord(sysmonFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if !st.hasID {
		return Event{}, unsupported(sysmonFormat, "no EventID")
	}
	ev := st.ev
	ev.Vendor = "Microsoft"
	isSysmon := strings.Contains(st.channel, "Sysmon") || strings.Contains(st.source, "Sysmon")
	id := strconv.Itoa(st.eventID)
	switch {
	case isSysmon:
		ev.Product, ev.Kind = "Sysmon", "sysmon/"+id
	case st.channel != "":
		ev.Product, ev.Kind = "Windows", strings.ToLower(st.channel)+"/"+id
	default:
		ev.Product, ev.Kind = "Windows", "windows/"+id
	}
	if !isSysmon {
		switch st.eventID {
		case 5156, 5158:
			ev.Action = "allowed"
		case 5152, 5153, 5157, 5159:
			ev.Action = "blocked"
		}
		if st.direction == "%%14592" || strings.EqualFold(st.direction, "Inbound") {
			// The filtering platform names the local end "Source" on inbound traffic.
			ev.SrcIP, ev.DstIP = ev.DstIP, ev.SrcIP
			ev.SrcPort, ev.DstPort = ev.DstPort, ev.SrcPort
		}
	}
	if ev.SrcHost == "" {
		ev.SrcHost = st.workstation
	}
	if st.computer != "" {
		if st.initiated == "false" || st.direction == "%%14592" || strings.EqualFold(st.direction, "Inbound") {
			if ev.DstHost == "" {
				ev.DstHost = st.computer
			}
		} else if ev.SrcHost == "" {
			ev.SrcHost = st.computer
		}
	}
	for _, u := range [...]string{st.user, st.targetUser, st.subjectUser} {
		if u != "" && u != "-" {
			ev.User = u
			break
		}
	}
	if st.queryResults != "" {
		sysmonQueryResults(&st.obs, st.queryResults)
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *sysmonState) visit(path []byte, v jsonValue) bool {
	switch v.Kind {
	case jsonObject:
		return true
	case jsonObjectEnd:
		return false
	}
	// Arrays fall through: a field read as a scalar given as an array is a type error.
	r := &st.rec
	key := lastSegment(path)
	switch string(key) {
	case "EventID", "EventId", "event_id":
		if n, ok := r.integer(path, v); ok {
			st.eventID, st.hasID = n, true
		}
	case "Channel", "channel":
		st.channel = r.str(path, v)
	case "SourceName", "ProviderName", "provider_name":
		st.source = r.str(path, v)
	case "UtcTime":
		if t := r.time(path, v); !t.IsZero() {
			st.ev.Time, st.utcTime = t, true
		}
	case "TimeCreated", "EventTime", "TimeGenerated", "@timestamp":
		if !st.utcTime {
			if t := r.time(path, v); !t.IsZero() {
				st.ev.Time = t
			}
		}
	case "Hostname", "Computer", "computer_name":
		st.computer = r.str(path, v)
	case "SourceIp", "SourceAddress", "IpAddress":
		if s := r.str(path, v); s != "-" {
			st.ev.SrcIP = s
		}
	case "DestinationIp", "DestAddress":
		if s := r.str(path, v); s != "-" {
			st.ev.DstIP = s
		}
	case "SourcePort", "IpPort":
		st.ev.SrcPort = r.port(path, v)
	case "DestinationPort", "DestPort":
		st.ev.DstPort = r.port(path, v)
	case "Protocol":
		st.ev.Protocol = r.protocol(path, v)
	case "SourceHostname":
		if s := r.str(path, v); s != "-" {
			st.ev.SrcHost = s
		}
	case "DestinationHostname":
		if s := r.str(path, v); s != "-" {
			st.ev.DstHost = s
		}
	case "WorkstationName":
		if s := r.str(path, v); s != "-" {
			st.workstation = s
		}
	case "User":
		st.user = r.str(path, v)
	case "TargetUserName":
		st.targetUser = r.str(path, v)
	case "SubjectUserName":
		st.subjectUser = r.str(path, v)
	case "Initiated":
		st.initiated = strings.ToLower(r.str(path, v))
	case "Direction":
		st.direction = r.str(path, v)
	case "QueryName":
		st.obs.addHost(r.str(path, v), "QueryName")
	case "QueryResults":
		st.queryResults = r.str(path, v)
	case "Hashes", "Hash":
		st.obs.addHashList(r.str(path, v), string(key))
	case "RuleName":
		if s := r.str(path, v); s != "-" {
			st.ev.Rule = s
		}
	}
	return false
}

// sysmonQueryResults reads Sysmon's QueryResults: "type:  5 cname.example;::ffff:10.0.0.4;".
func sysmonQueryResults(obs *observables, s string) {
	for s != "" {
		var item string
		item, s, _ = strings.Cut(s, ";")
		item = strings.TrimSpace(item)
		if rest, ok := strings.CutPrefix(item, "type:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				obs.addHost(f[1], "QueryResults")
			}
			continue
		}
		obs.addHost(item, "QueryResults")
	}
}
