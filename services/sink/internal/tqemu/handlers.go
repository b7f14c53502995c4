package tqemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// --- types and statuses ---

func (s *Server) handleListTypes(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	s.mu.Lock()
	out := []TypeDef{}
	for _, t := range s.st.Types {
		if name == "" || strings.EqualFold(t.Name, name) {
			out = append(out, t)
		}
	}
	s.mu.Unlock()
	writeList(w, http.StatusOK, out, len(out))
}

func (s *Server) handleGetType(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	t, ok := s.st.typeByID(id)
	s.mu.Unlock()
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, "Indicator type not found.")
		return
	}
	writeData(w, http.StatusOK, t)
}

func (s *Server) handleListStatuses(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	s.mu.Lock()
	out := []StatusDef{}
	for _, st := range s.st.Statuses {
		if name == "" || strings.EqualFold(st.Name, name) {
			out = append(out, st)
		}
	}
	s.mu.Unlock()
	writeList(w, http.StatusOK, out, len(out))
}

func (s *Server) handleGetStatus(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	st, ok := s.st.statusByID(id)
	s.mu.Unlock()
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, "Indicator status not found.")
		return
	}
	writeData(w, http.StatusOK, st)
}

// --- create / consume ---

// handleCreate serves POST /api/indicators: 201 {"total":n,"data":[…]}
// with "existing":"N"|"Y" per item [V S6,S8; "Y" is I].
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	s.writeIndicators(w, r, http.StatusCreated, true)
}

// handleConsume serves POST /api/indicators/consume (and /consume/new).
// The response shape {"data":[{"id","value",…}]} is [V S4 behaviour]; the
// 200 status is [I]. Items carry "existing" like the create route, and
// relations only when ?with= asks for them.
func (s *Server) handleConsume(w http.ResponseWriter, r *http.Request) {
	s.writeIndicators(w, r, http.StatusOK, false)
}

// writeIndicators validates every item first and writes none if any is
// invalid (all-or-nothing, Laravel-style validation) [I]. withRelations adds
// type, attributes, sources and tags to every item, as create responses
// carry them [V S6, V-mock S5].
func (s *Server) writeIndicators(w http.ResponseWriter, r *http.Request, code int, withRelations bool) {
	body, err := readBody(r)
	if err != nil {
		writeValidation(w, ValidationErrors{"body": {err.Error()}})
		return
	}
	decoded, fast := decodeIndicators(body)
	var items []json.RawMessage
	isArray := true
	if !fast {
		items, isArray, err = splitItems(body)
		if err != nil {
			writeValidation(w, ValidationErrors{"body": {err.Error()}})
			return
		}
	}
	with := parseWith(r.URL.Query().Get("with"))
	if withRelations {
		for _, k := range []string{"type", "attributes", "sources", "tags"} {
			with[k] = true
		}
	}
	now := s.now()
	s.mu.Lock()
	errs := ValidationErrors{}
	specs := make([]indSpec, 0, len(items)+len(decoded))
	for i := range decoded {
		specs = append(specs, s.st.validateIndicator(&decoded[i], strconv.Itoa(i)+".", errs))
	}
	for i, raw := range items {
		prefix := ""
		if isArray {
			prefix = strconv.Itoa(i) + "."
		}
		specs = append(specs, s.st.parseIndicator(raw, prefix, errs))
	}
	if len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs)
		return
	}
	out := make([]indicatorOut, 0, len(specs))
	for _, sp := range specs {
		rec, existing := s.upsert(sp, now)
		m := s.render(rec, with)
		m.Existing = yn(existing)
		out = append(out, m)
	}
	s.mu.Unlock()
	writeList(w, code, out, len(out)) // render made a snapshot: encode without the lock
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// --- one indicator ---

// lookup finds the indicator named by the {id} path value. Callers hold s.mu.
func (s *Server) lookup(r *http.Request) (*record, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil, false
	}
	rec, ok := s.st.byID[id]
	return rec, ok
}

func writeNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Indicator not found.")
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	writeData(w, http.StatusOK, s.render(rec, parseWith(r.URL.Query().Get("with"))))
}

// putIn is the body of PUT /api/indicators/{id}: status as status_id,
// a name or {"name":…} [V S8/S5/S4]; value/type/description edits [V S5].
type putIn struct {
	Value       json.RawMessage `json:"value"`
	Type        json.RawMessage `json:"type"`
	TypeID      json.RawMessage `json:"type_id"`
	Status      json.RawMessage `json:"status"`
	StatusID    json.RawMessage `json:"status_id"`
	Description *string         `json:"description"`
	PublishedAt *string         `json:"published_at"`
	Sources     []sourceIn      `json:"sources"`
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeValidation(w, ValidationErrors{"body": {err.Error()}})
		return
	}
	var in putIn
	if err := json.Unmarshal(body, &in); err != nil {
		writeValidation(w, ValidationErrors{"body": {"The request body must be a JSON object."}})
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	errs := ValidationErrors{}
	typeID, value := rec.TypeID, rec.Value
	if !isNull(in.Type) || !isNull(in.TypeID) {
		t, msg := s.st.resolveType(in.Type, in.TypeID)
		if msg != "" {
			errs.add("type", msg)
		}
		typeID = t.ID
	}
	if !isNull(in.Value) {
		v, ok := stringValue(in.Value)
		if !ok || v == "" {
			errs.add("value", "The value field must be a non-empty string.")
		}
		value = v
	}
	if t, ok := s.st.typeByID(typeID); ok && len(errs) == 0 {
		if m := validateValue(t.Name, value); m != "" {
			errs.add("value", m)
		}
	}
	if other, ok := s.st.byKey[indKey{typeID, value}]; ok && other != rec {
		errs.add("value", "The value has already been taken.")
	}
	statusDef, statusGiven, msg := s.st.resolveStatus(in.Status, in.StatusID)
	if msg != "" {
		errs.add("status", msg)
	}
	if in.PublishedAt != nil && !validDate(*in.PublishedAt) {
		errs.add("published_at", "The published at does not match the format Y-m-d H:i:s.")
	}
	srcs := parseSources(in.Sources, "sources", errs)
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	changed := false
	if typeID != rec.TypeID || value != rec.Value {
		delete(s.st.byKey, indKey{rec.TypeID, rec.Value})
		rec.TypeID, rec.Value = typeID, value
		s.st.byKey[indKey{typeID, value}] = rec
		changed = true
	}
	if statusGiven && statusDef.ID != rec.StatusID {
		rec.StatusID = statusDef.ID
		changed = true
	}
	if in.Description != nil && *in.Description != rec.Description {
		rec.Description = *in.Description
		changed = true
	}
	if in.PublishedAt != nil && *in.PublishedAt != rec.PublishedAt {
		rec.PublishedAt = *in.PublishedAt
		changed = true
	}
	for _, src := range srcs {
		if s.addSource(&rec.Sources, src, now) {
			changed = true
		}
	}
	if changed {
		s.touch(rec, now)
	}
	writeData(w, http.StatusOK, s.render(rec, parseWith(r.URL.Query().Get("with"))))
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	s.st.remove(rec)
	s.stats.Updated++
	w.WriteHeader(http.StatusNoContent)
}

// handlePutScores serves PUT /api/indicator/{id}/scores (singular
// "indicator" [V S5,S6]) with manual_score in a JSON body or the query
// string; null clears it. The response data is the score object.
func (s *Server) handlePutScores(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeValidation(w, ValidationErrors{"body": {err.Error()}})
		return
	}
	var raw json.RawMessage
	present := false
	if len(bytes.TrimSpace(body)) > 0 {
		var in map[string]json.RawMessage
		if err := json.Unmarshal(body, &in); err != nil {
			writeValidation(w, ValidationErrors{"body": {"The request body must be a JSON object."}})
			return
		}
		raw, present = in["manual_score"]
	}
	if !present && r.URL.Query().Has("manual_score") {
		q := r.URL.Query().Get("manual_score")
		raw, present = json.RawMessage(strconv.Quote(q)), true
		if q == "" || q == "null" {
			raw = json.RawMessage("null")
		}
	}
	if !present {
		writeValidation(w, ValidationErrors{"manual_score": {"The manual score field is required."}})
		return
	}
	var score *int
	if !isNull(raw) {
		n, ok := intFromRaw(raw)
		if !ok || n < 0 || n > 10 {
			writeValidation(w, ValidationErrors{"manual_score": {"The manual score must be an integer between 0 and 10."}})
			return
		}
		score = &n
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	if !sameScore(rec.ManualScore, score) {
		rec.ManualScore = score
		rec.ScoreUpdatedAt = now
		s.touch(rec, now)
	}
	writeData(w, http.StatusOK, s.scoreObject(rec))
}

func sameScore(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
