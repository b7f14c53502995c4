package tqemu

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	segjson "github.com/segmentio/encoding/json"
)

// Request bodies. Unknown fields are ignored, as a Laravel-style API does [I].

type sourceIn struct {
	Name        string          `json:"name"`
	TLPID       json.RawMessage `json:"tlp_id"`
	TLP         json.RawMessage `json:"tlp"`
	PublishedAt *string         `json:"published_at"`
}

type attributeIn struct {
	Name        string          `json:"name"`
	Value       json.RawMessage `json:"value"`
	Sources     []sourceIn      `json:"sources"`
	TLPID       json.RawMessage `json:"tlp_id"`
	PublishedAt *string         `json:"published_at"`
}

type indicatorIn struct {
	Value       json.RawMessage `json:"value"`
	Type        json.RawMessage `json:"type"`
	TypeID      json.RawMessage `json:"type_id"`
	Status      json.RawMessage `json:"status"`
	StatusID    json.RawMessage `json:"status_id"`
	Description *string         `json:"description"`
	Sources     []sourceIn      `json:"sources"`
	Attributes  []attributeIn   `json:"attributes"`
	Tags        json.RawMessage `json:"tags"`
	Comments    []struct {
		Value string `json:"value"`
	} `json:"comments"`
	PublishedAt *string `json:"published_at"`
}

// Validated forms.

type srcSpec struct {
	name        string
	tlpID       int
	publishedAt string
}

type attrSpec struct {
	name, value string
	sources     []srcSpec
	publishedAt string
}

type indSpec struct {
	value       string
	typeID      int
	statusID    int // 0: not given
	description *string
	sources     []srcSpec
	attrs       []attrSpec
	tags        []string
	comments    []string
	publishedAt string
}

// splitItems accepts a JSON array or a single object and returns the items
// and whether the body was an array.
func splitItems(body []byte) ([]json.RawMessage, bool, error) {
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return nil, false, errString("The request body is required.")
	case body[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, true, errString("The request body must be valid JSON.")
		}
		return items, true, nil
	case body[0] == '{':
		return []json.RawMessage{body}, false, nil
	default:
		return nil, false, errString("The request body must be a JSON object or array.")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// intFromRaw reads an integer sent as a JSON number or numeric string.
func intFromRaw(raw json.RawMessage) (int, bool) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] >= '0' && t[0] <= '9' {
		if i, err := strconv.Atoi(string(t)); err == nil {
			return i, true // a plain integer literal: no decoder needed
		}
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, false
	}
	switch x := v.(type) {
	case json.Number:
		n = x
	case string:
		n = json.Number(strings.TrimSpace(x))
	default:
		return 0, false
	}
	i, err := strconv.Atoi(n.String())
	return i, err == nil
}

// refFromRaw reads a type/status reference: a name string, {"name":…} or {"id":…}.
func refFromRaw(raw json.RawMessage) (name string, id int, ok bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, 0, true
	}
	var obj struct {
		Name string          `json:"name"`
		ID   json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return "", 0, false
	}
	if obj.Name != "" {
		return obj.Name, 0, true
	}
	if !isNull(obj.ID) {
		id, ok := intFromRaw(obj.ID)
		return "", id, ok
	}
	return "", 0, false
}

// stringValue reads an attribute or indicator value: a string, or a number
// kept as its literal. Booleans are refused: the SDK sends "Yes"/"No" [V S4].
func stringValue(raw json.RawMessage) (string, bool) {
	if t := bytes.TrimSpace(raw); len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' &&
		bytes.IndexByte(t[1:len(t)-1], '\\') < 0 && bytes.IndexByte(t[1:len(t)-1], '"') < 0 {
		return strings.TrimSpace(string(t[1 : len(t)-1])), true // no escapes: the bytes are the string
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// resolveType returns the type id named by ref/idRaw, or an error message.
func (st *state) resolveType(ref, idRaw json.RawMessage) (TypeDef, string) {
	if !isNull(idRaw) {
		id, ok := intFromRaw(idRaw)
		if t, found := st.typeByID(id); ok && found {
			return t, ""
		}
		return TypeDef{}, "The selected type id is invalid."
	}
	if isNull(ref) {
		return TypeDef{}, "The type field is required."
	}
	name, id, ok := refFromRaw(ref)
	if !ok {
		return TypeDef{}, "The type field is invalid."
	}
	if name != "" {
		if t, found := st.typeByName(name); found {
			return t, ""
		}
		return TypeDef{}, "The selected type is invalid."
	}
	if t, found := st.typeByID(id); found {
		return t, ""
	}
	return TypeDef{}, "The selected type id is invalid."
}

// resolveStatus is resolveType for statuses; ok=false with msg=="" means
// no status was given.
func (st *state) resolveStatus(ref, idRaw json.RawMessage) (StatusDef, bool, string) {
	if !isNull(idRaw) {
		id, ok := intFromRaw(idRaw)
		if s, found := st.statusByID(id); ok && found {
			return s, true, ""
		}
		return StatusDef{}, false, "The selected status id is invalid."
	}
	if isNull(ref) {
		return StatusDef{}, false, ""
	}
	name, id, ok := refFromRaw(ref)
	if !ok {
		return StatusDef{}, false, "The status field is invalid."
	}
	if name != "" {
		if s, found := st.statusByName(name); found {
			return s, true, ""
		}
		return StatusDef{}, false, "The selected status is invalid."
	}
	if s, found := st.statusByID(id); found {
		return s, true, ""
	}
	return StatusDef{}, false, "The selected status id is invalid."
}

func parseSources(in []sourceIn, field string, errs ValidationErrors) []srcSpec {
	var out []srcSpec
	for i, s := range in {
		f := field + "." + strconv.Itoa(i)
		name := strings.TrimSpace(s.Name)
		if name == "" {
			errs.add(f+".name", "The source name field is required.")
			continue
		}
		sp := srcSpec{name: name}
		if !isNull(s.TLPID) {
			id, ok := intFromRaw(s.TLPID)
			if _, known := tlpNames[id]; !ok || !known {
				errs.add(f+".tlp_id", "The selected tlp id is invalid.")
			}
			sp.tlpID = id
		} else if !isNull(s.TLP) {
			tname, _, ok := refFromRaw(s.TLP)
			id, known := tlpIDByName(tname)
			if !ok || !known {
				errs.add(f+".tlp", "The selected tlp is invalid.")
			}
			sp.tlpID = id
		}
		if s.PublishedAt != nil {
			if !validDate(*s.PublishedAt) {
				errs.add(f+".published_at", "The published at does not match the format Y-m-d H:i:s.")
			}
			sp.publishedAt = *s.PublishedAt
		}
		out = append(out, sp)
	}
	return out
}

func parseAttributes(in []attributeIn, field string, errs ValidationErrors) []attrSpec {
	var out []attrSpec
	for i, a := range in {
		f := field + "." + strconv.Itoa(i)
		name := strings.TrimSpace(a.Name)
		if name == "" {
			errs.add(f+".name", "The attribute name field is required.")
		}
		value, ok := stringValue(a.Value)
		if !ok || value == "" {
			errs.add(f+".value", "The attribute value field is required and must be a string.")
		}
		sp := attrSpec{name: name, value: value, sources: parseSources(a.Sources, f+".sources", errs)}
		if a.PublishedAt != nil {
			if !validDate(*a.PublishedAt) {
				errs.add(f+".published_at", "The published at does not match the format Y-m-d H:i:s.")
			}
			sp.publishedAt = *a.PublishedAt
		}
		out = append(out, sp)
	}
	return out
}

// parseTags accepts ["a","b"] or [{"name":"a"}] or a single {"name":"a"}.
func parseTags(raw json.RawMessage, field string, errs ValidationErrors) []string {
	if isNull(raw) {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	if raw[0] == '{' {
		raw = append(append([]byte{'['}, raw...), ']')
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		errs.add(field, "The tags field must be an array.")
		return nil
	}
	var out []string
	for i, it := range items {
		name, _, ok := refFromRaw(it)
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			errs.add(field+"."+strconv.Itoa(i)+".name", "The tag name field is required.")
			continue
		}
		out = append(out, name)
	}
	return out
}

// parseIndicator validates one indicator body. prefix is "" for a single
// object or "N." for item N of an array (Laravel-style keys) [I].
func (st *state) parseIndicator(raw json.RawMessage, prefix string, errs ValidationErrors) indSpec {
	var in indicatorIn
	if err := json.Unmarshal(raw, &in); err != nil {
		errs.add(strings.TrimSuffix(prefix, ".")+"body", "The indicator must be a valid JSON object.")
		return indSpec{}
	}
	return st.validateIndicator(&in, prefix, errs)
}

// decodeIndicators decodes a JSON array of indicator objects in one pass (the common, valid
// case). ok is false when the body is not such an array; callers then fall back to splitItems
// and parseIndicator, which name the offending item.
func decodeIndicators(body []byte) ([]indicatorIn, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, false
	}
	var ins []indicatorIn
	if segjson.Unmarshal(body, &ins) != nil { // segmentio: the hot path of consume
		return nil, false
	}
	return ins, true
}

// validateIndicator validates one decoded indicator body (see parseIndicator).
func (st *state) validateIndicator(in *indicatorIn, prefix string, errs ValidationErrors) indSpec {
	var sp indSpec
	value, ok := stringValue(in.Value)
	if isNull(in.Value) || !ok || value == "" {
		errs.add(prefix+"value", "The value field is required.")
	}
	sp.value = value
	t, msg := st.resolveType(in.Type, in.TypeID)
	if msg != "" {
		field := "type"
		if !isNull(in.TypeID) {
			field = "type_id"
		}
		errs.add(prefix+field, msg)
	} else if value != "" {
		if m := validateValue(t.Name, value); m != "" {
			errs.add(prefix+"value", m)
		}
	}
	sp.typeID = t.ID
	s, given, msg := st.resolveStatus(in.Status, in.StatusID)
	switch {
	case msg != "":
		field := "status"
		if !isNull(in.StatusID) {
			field = "status_id"
		}
		errs.add(prefix+field, msg)
	case given:
		sp.statusID = s.ID
	}
	sp.description = in.Description
	if sp.description != nil && len(*sp.description) > 65535 {
		errs.add(prefix+"description", "The description may not be greater than 65535 characters.")
	}
	sp.sources = parseSources(in.Sources, prefix+"sources", errs)
	sp.attrs = parseAttributes(in.Attributes, prefix+"attributes", errs)
	sp.tags = parseTags(in.Tags, prefix+"tags", errs)
	for i, c := range in.Comments {
		if strings.TrimSpace(c.Value) == "" {
			errs.add(prefix+"comments."+strconv.Itoa(i)+".value", "The comment value field is required.")
			continue
		}
		sp.comments = append(sp.comments, c.Value)
	}
	if in.PublishedAt != nil {
		if !validDate(*in.PublishedAt) {
			errs.add(prefix+"published_at", "The published at does not match the format Y-m-d H:i:s.")
		}
		sp.publishedAt = *in.PublishedAt
	}
	return sp
}
