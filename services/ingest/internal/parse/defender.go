package parse

import (
	"bytes"
	"time"
)

const defenderFormat = "ms_defender"

// Defender reads Microsoft Defender for Endpoint alerts as returned by the alerts API (one
// alert object per record, with "evidence" as an object or an array) and Microsoft Graph
// security alerts (alerts_v2). An API page {"value": [...]} holding exactly one alert is
// read as that alert; empty pages and pages of several alerts are unsupported (split them
// upstream).
type Defender struct{}

var _ Parser = (*Defender)(nil)

// NewDefender returns the Microsoft Defender alert parser.
func NewDefender() *Defender { return &Defender{} }

// Name returns "ms_defender".
func (*Defender) Name() string { return defenderFormat }

// Detect reports whether raw is a Defender alert: a "detectionSource" member together with
// "computerDnsName", "alertCreationTime", "createdDateTime" or "evidence".
func (*Defender) Detect(raw []byte) bool {
	return vendorJSON(raw) && hasJSONKey(raw, "detectionSource") &&
		(hasJSONKey(raw, "computerDnsName") || hasJSONKey(raw, "alertCreationTime") ||
			hasJSONKey(raw, "createdDateTime") || hasJSONKey(raw, "evidence"))
}

type defenderState struct {
	rec     jsonRecord
	ev      Event
	obs     observables
	page    bool
	alerts  int
	first   time.Time
	created time.Time
	title   bool
	account string
}

// Parse reads one Defender alert.
func (*Defender) Parse(raw []byte) (Event, error) {
	st := defenderState{rec: jsonRecord{format: defenderFormat}}
	if err := walkRecord(defenderFormat, raw, st.visit); err != nil {
		return Event{}, err
	}
	if st.rec.bad != "" {
		return Event{}, st.rec.malformed()
	}
	if st.page && st.alerts != 1 {
		return Event{}, unsupported(defenderFormat, "API page with "+itoa(st.alerts)+" alerts")
	}
	if !st.title && st.ev.Severity == 0 && len(st.obs) == 0 {
		return Event{}, unsupported(defenderFormat, "no alert fields")
	}
	ev := st.ev
	ev.Vendor, ev.Product, ev.Kind = "Microsoft", "Defender for Endpoint", "alert"
	ev.Time = st.first
	if ev.Time.IsZero() {
		ev.Time = st.created
	}
	if ev.User == "" {
		ev.User = st.account
	}
	ev.Observables = st.obs
	return ev, nil
}

func (st *defenderState) visit(path []byte, v jsonValue) bool {
	if string(path) == "value" {
		switch v.Kind {
		case jsonArray:
			st.page = true
			return true
		case jsonObject:
			st.alerts++
			return st.alerts == 1
		}
	}
	if v.Kind == jsonObjectEnd {
		return false
	}
	if st.page {
		p, ok := bytes.CutPrefix(path, []byte("value."))
		if !ok {
			return false
		}
		path = p
	}
	if v.Kind == jsonObject || v.Kind == jsonArray {
		if string(path) == "relatedUser" || string(path) == "evidence" || bytes.HasPrefix(path, []byte("evidence.")) {
			return true
		}
		// Other containers fall through: a scalar field given as a container is a type error.
	}
	r := &st.rec
	if ev, ok := bytes.CutPrefix(path, []byte("evidence.")); ok {
		switch string(lastSegment(ev)) {
		case "sha1":
			st.obs.addHash("sha1", r.str(path, v), string(path))
		case "sha256":
			st.obs.addHash("sha256", r.str(path, v), string(path))
		case "md5":
			st.obs.addHash("md5", r.str(path, v), string(path))
		case "ipAddress":
			st.obs.addHost(r.str(path, v), string(path))
		case "url":
			st.obs.add("url", r.str(path, v), string(path))
		case "accountName":
			if st.account == "" {
				st.account = r.str(path, v)
			}
		}
		return false
	}
	switch string(path) {
	case "severity":
		st.ev.Severity = severityWord(r.str(path, v))
	case "title":
		st.ev.Rule = r.str(path, v)
		st.title = true
	case "computerDnsName":
		st.ev.SrcHost = r.str(path, v)
	case "relatedUser.userName":
		st.ev.User = r.str(path, v)
	case "firstEventTime", "firstActivityDateTime":
		st.first = r.time(path, v)
	case "alertCreationTime", "createdDateTime":
		st.created = r.time(path, v)
	case "detectionStatus":
		st.ev.Action = r.str(path, v)
	}
	return false
}
