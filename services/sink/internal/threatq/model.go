package threatq

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is ThreatQ's timestamp format (UTC).
const TimeLayout = "2006-01-02 15:04:05"

// TLP ids as ThreatQ numbers them.
var tlpIDs = map[string]int{"RED": 1, "AMBER": 2, "GREEN": 3, "WHITE": 4, "CLEAR": 4}

// Source is an indicator source. TLP is a TLP name (RED, AMBER, GREEN, WHITE) or empty.
type Source struct {
	Name string
	TLP  string
}

// Attribute is one value of a (multi-valued) ThreatQ attribute.
type Attribute struct {
	ID      int64    // attribute value id on the indicator; 0 for a value not yet written
	Name    string   // e.g. "Is VPN"
	Value   string   // booleans are "Yes"/"No"
	Sources []string // source names; for writes, the sources attached to the value
}

// Score is an indicator's score on ThreatQ's 0–10 scale.
type Score struct {
	Generated float64
	Manual    float64 // -1 when no manual score is set
}

// Effective returns the manual score when set, else the generated score.
func (s Score) Effective() float64 {
	if s.Manual >= 0 {
		return s.Manual
	}
	return s.Generated
}

// Indicator is an indicator to write, or one read back from ThreatQ.
type Indicator struct {
	ID          int64  // read back only
	Value       string // canonical value
	Type        string // type name, e.g. "IP Address"
	Status      string // status name, e.g. "Active"; empty on write leaves the server default
	Description string
	Sources     []Source
	Attributes  []Attribute
	Tags        []string
	PublishedAt time.Time // zero: not sent
	CreatedAt   time.Time // read back only
	UpdatedAt   time.Time // read back only
	Score       Score     // read back only (with score); Manual -1 when unknown
}

// HasSource reports whether the indicator carries a source with that name (case-insensitive).
func (in Indicator) HasSource(name string) bool {
	for _, s := range in.Sources {
		if strings.EqualFold(s.Name, name) {
			return true
		}
	}
	return false
}

// Result is ThreatQ's answer for one consumed indicator.
type Result struct {
	Index    int    // position in the Consume input
	ID       int64  // ThreatQ id
	Value    string // as echoed by ThreatQ
	Status   string // current status name when ThreatQ echoed it, else empty
	Existing bool   // ThreatQ already knew the indicator (existing "Y")
	// AttributesKnown is true when the response carried the indicator's attribute values
	// (ConsumeWithAttributes and a server that honours it); Attributes then lists them all.
	AttributesKnown bool
	Attributes      []Attribute
}

// --- wire shapes ---

type wireSource struct {
	Name  string `json:"name"`
	TLPID int    `json:"tlp_id,omitempty"`
}

type wireNamed struct {
	Name string `json:"name"`
}

type wireAttrIn struct {
	Name        string      `json:"name"`
	Value       string      `json:"value"`
	Sources     []wireNamed `json:"sources,omitempty"`
	PublishedAt string      `json:"published_at,omitempty"`
}

type wireIndicatorIn struct {
	Value       string       `json:"value"`
	TypeID      int64        `json:"type_id"`
	StatusID    int64        `json:"status_id,omitempty"`
	Description string       `json:"description,omitempty"`
	Sources     []wireSource `json:"sources,omitempty"`
	Attributes  []wireAttrIn `json:"attributes,omitempty"`
	Tags        []string     `json:"tags,omitempty"`
	PublishedAt string       `json:"published_at,omitempty"`
}

type wireRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type wireAttrOut struct {
	ID      int64           `json:"id"`
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value"`
	Sources []wireNamed     `json:"sources"`
}

type wireIndicatorOut struct {
	ID          int64           `json:"id"`
	Value       string          `json:"value"`
	TypeID      int64           `json:"type_id"`
	StatusID    int64           `json:"status_id"`
	Description string          `json:"description"`
	Existing    json.RawMessage `json:"existing"`
	Type        json.RawMessage `json:"type"`
	Status      json.RawMessage `json:"status"`
	Sources     []wireNamed     `json:"sources"`
	Attributes  []wireAttrOut   `json:"attributes"`
	Tags        json.RawMessage `json:"tags"`
	Score       json.RawMessage `json:"score"`
	CreatedAt   string          `json:"created_at"`
	UpdatedAt   string          `json:"updated_at"`
}

// wireConsumeOut is the part of a consume response item that Consume reads. Consume answers can
// be megabytes (every indicator with its attributes); the decoder skips the other fields without
// building strings for them.
type wireConsumeOut struct {
	ID         int64           `json:"id"`
	Value      string          `json:"value"`
	TypeID     int64           `json:"type_id"`
	StatusID   int64           `json:"status_id"`
	Existing   json.RawMessage `json:"existing"`
	Type       json.RawMessage `json:"type"`
	Status     json.RawMessage `json:"status"`
	Attributes []wireAttrOut   `json:"attributes"`
}

// refName reads a {"id","name"} object or a bare name string.
func refName(raw json.RawMessage) (int64, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, ""
	}
	var r wireRef
	if json.Unmarshal(raw, &r) == nil {
		return r.ID, r.Name
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return 0, s
	}
	return 0, ""
}

// flexString reads a JSON string, number or bool as a string.
func flexString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// flexFloat reads a number or a numeric string; ok is false for null/absent.
func flexFloat(raw json.RawMessage) (float64, bool) {
	s := flexString(raw)
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func yes(raw json.RawMessage) bool {
	switch strings.ToLower(flexString(raw)) {
	case "y", "yes", "true", "1":
		return true
	}
	return false
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.ParseInLocation(TimeLayout, s, time.UTC); err == nil {
		return t
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

func parseScore(raw json.RawMessage) Score {
	sc := Score{Manual: -1}
	if f, ok := flexFloat(raw); ok {
		sc.Generated = f
		return sc
	}
	var obj struct {
		Generated json.RawMessage `json:"generated_score"`
		Manual    json.RawMessage `json:"manual_score"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		if f, ok := flexFloat(obj.Generated); ok {
			sc.Generated = f
		}
		if f, ok := flexFloat(obj.Manual); ok {
			sc.Manual = f
		}
	}
	return sc
}

func parseTags(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var objs []wireNamed
	if json.Unmarshal(raw, &objs) == nil {
		out := make([]string, 0, len(objs))
		for _, o := range objs {
			out = append(out, o.Name)
		}
		return out
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil {
		return strs
	}
	return nil
}

func names(ns []wireNamed) []string {
	if len(ns) == 0 {
		return nil
	}
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}
