package tqemu

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// decodeItems reads a body that is one object or an array of objects into
// []T; the bool is whether it was an array.
func decodeItems[T any](r *http.Request) ([]T, bool, ValidationErrors) {
	body, err := readBody(r)
	if err != nil {
		return nil, false, ValidationErrors{"body": {err.Error()}}
	}
	raws, isArray, err := splitItems(body)
	if err != nil {
		return nil, false, ValidationErrors{"body": {err.Error()}}
	}
	out := make([]T, 0, len(raws))
	for i, raw := range raws {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, isArray, ValidationErrors{strconv.Itoa(i): {"The item must be a valid JSON object."}}
		}
		out = append(out, v)
	}
	return out, isArray, nil
}

func pathInt(r *http.Request, name string) int {
	n, err := strconv.Atoi(r.PathValue(name))
	if err != nil {
		return -1
	}
	return n
}

// --- attributes [V S4,S5,S6,S8] ---

func (s *Server) handleListAttributes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	out := make([]attrOut, 0, len(rec.Attributes))
	for _, a := range rec.Attributes {
		out = append(out, renderAttr(rec.ID, a))
	}
	writeList(w, http.StatusOK, out, len(out))
}

// handleAddAttributes appends values (POST appends, it does not replace
// [I from S4]); an identical name+value is returned, not duplicated [I].
func (s *Server) handleAddAttributes(w http.ResponseWriter, r *http.Request) {
	items, _, verrs := decodeItems[attributeIn](r)
	if verrs != nil {
		writeValidation(w, verrs)
		return
	}
	errs := ValidationErrors{}
	specs := parseAttributes(items, "attributes", errs)
	if len(items) == 1 {
		// A single object reports errors without the list prefix.
		fixed := ValidationErrors{}
		for k, v := range errs {
			fixed[strings.TrimPrefix(k, "attributes.0.")] = v
		}
		errs = fixed
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
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
	changed := false
	out := make([]attrOut, 0, len(specs))
	for _, sp := range specs {
		a, added := s.addAttribute(rec, sp, now)
		changed = changed || added
		out = append(out, renderAttr(rec.ID, a))
	}
	if changed {
		s.touch(rec, now)
	}
	writeList(w, http.StatusCreated, out, len(out))
}

func (s *Server) handlePutAttribute(w http.ResponseWriter, r *http.Request) {
	items, isArray, verrs := decodeItems[attributeIn](r)
	if verrs == nil && (isArray || len(items) != 1) {
		verrs = ValidationErrors{"body": {"The request body must be a JSON object."}}
	}
	if verrs != nil {
		writeValidation(w, verrs)
		return
	}
	in := items[0]
	value, ok := stringValue(in.Value)
	if !ok || value == "" {
		writeValidation(w, ValidationErrors{"value": {"The value field is required and must be a string."}})
		return
	}
	errs := ValidationErrors{}
	srcs := parseSources(in.Sources, "sources", errs)
	if len(errs) > 0 {
		writeValidation(w, errs)
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
	aid := pathInt(r, "aid")
	for _, a := range rec.Attributes {
		if a.ID != aid {
			continue
		}
		changed := false
		if a.Value != value {
			a.Value = value
			changed = true
		}
		for _, src := range srcs {
			if s.addSource(&a.Sources, src, now) {
				changed = true
			}
		}
		if changed {
			a.UpdatedAt = now
			s.touch(rec, now)
		}
		writeData(w, http.StatusOK, renderAttr(rec.ID, a))
		return
	}
	writeError(w, http.StatusNotFound, "Attribute not found.")
}

func (s *Server) handleDeleteAttribute(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	aid := pathInt(r, "aid")
	for i, a := range rec.Attributes {
		if a.ID == aid {
			rec.Attributes = append(rec.Attributes[:i], rec.Attributes[i+1:]...)
			s.touch(rec, now)
			if s.stats.AttributesDeleted == nil {
				s.stats.AttributesDeleted = map[string]int{}
			}
			s.stats.AttributesDeleted[a.Name]++
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Attribute not found.")
}

// --- tags: body [{"name":…}] [V S4,S8] or {"name":…} [V S7] ---

func (s *Server) handleListTags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	out := renderTags(rec.Tags)
	writeList(w, http.StatusOK, out, len(out))
}

func (s *Server) handleAddTags(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeValidation(w, ValidationErrors{"body": {err.Error()}})
		return
	}
	errs := ValidationErrors{}
	names := parseTags(body, "tags", errs)
	if len(errs) == 0 && len(names) == 0 {
		errs.add("name", "The name field is required.")
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
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
	changed := false
	var tags []*tagRec
	for _, n := range names {
		t, added := s.addTag(rec, n, now)
		changed = changed || added
		tags = append(tags, t)
	}
	if changed {
		s.touch(rec, now)
	}
	out := renderTags(tags)
	writeList(w, http.StatusCreated, out, len(out))
}

func (s *Server) handleDeleteTag(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	tid := pathInt(r, "tid")
	for i, t := range rec.Tags {
		if t.ID == tid {
			rec.Tags = append(rec.Tags[:i], rec.Tags[i+1:]...)
			s.touch(rec, now)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Tag not found.")
}

// --- comments: POST {"value":…} [V S4] ---

func (s *Server) handleListComments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	out := make([]commentOut, 0, len(rec.Comments))
	for _, c := range rec.Comments {
		out = append(out, renderComment(rec.ID, c))
	}
	writeList(w, http.StatusOK, out, len(out))
}

// handleAddComment always appends: comments are a log, unlike the
// de-duplicated comments of consume [I].
func (s *Server) handleAddComment(w http.ResponseWriter, r *http.Request) {
	items, isArray, verrs := decodeItems[struct {
		Value string `json:"value"`
	}](r)
	if verrs == nil && (isArray || len(items) != 1) {
		verrs = ValidationErrors{"body": {"The request body must be a JSON object."}}
	}
	if verrs == nil && strings.TrimSpace(items[0].Value) == "" {
		verrs = ValidationErrors{"value": {"The value field is required."}}
	}
	if verrs != nil {
		writeValidation(w, verrs)
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
	c := &commentRec{ID: s.st.next("comment"), Value: items[0].Value, CreatedAt: now}
	rec.Comments = append(rec.Comments, c)
	s.touch(rec, now)
	writeData(w, http.StatusCreated, renderComment(rec.ID, c))
}

// --- sources: POST {"name":…} [V S5,S6]; DELETE by pivot id ---

func (s *Server) handleListSources(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	out := renderSources(rec.ID, rec.Sources)
	writeList(w, http.StatusOK, out, len(out))
}

func (s *Server) handleAddSources(w http.ResponseWriter, r *http.Request) {
	items, _, verrs := decodeItems[sourceIn](r)
	if verrs != nil {
		writeValidation(w, verrs)
		return
	}
	errs := ValidationErrors{}
	specs := parseSources(items, "sources", errs)
	if len(errs) > 0 {
		writeValidation(w, errs)
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
	changed := false
	var added []*srcRec
	for _, sp := range specs {
		if s.addSource(&rec.Sources, sp, now) {
			changed = true
		}
		for _, have := range rec.Sources {
			if strings.EqualFold(have.Name, sp.name) {
				added = append(added, have)
			}
		}
	}
	if changed {
		s.touch(rec, now)
	}
	out := renderSources(rec.ID, added)
	writeList(w, http.StatusCreated, out, len(out))
}

func (s *Server) handleDeleteSource(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookup(r)
	if !ok {
		writeNotFound(w)
		return
	}
	pid := pathInt(r, "pid")
	for i, src := range rec.Sources {
		if src.PivotID == pid {
			rec.Sources = append(rec.Sources[:i], rec.Sources[i+1:]...)
			s.touch(rec, now)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Source not found.")
}
