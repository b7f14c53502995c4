package tqemu

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// pred is a compiled filter over stored indicators. It runs under s.mu.
type pred func(*record) bool

func all(ps []pred) pred {
	return func(r *record) bool {
		for _, p := range ps {
			if !p(r) {
				return false
			}
		}
		return true
	}
}

// page holds parsed limit/offset/sort parameters [V S5,S6,S8].
type page struct {
	limit, offset int
	sortField     string
	desc          bool
}

var sortFields = map[string]bool{"id": true, "created_at": true, "updated_at": true, "touched_at": true, "value": true, "score": true}

func (s *Server) parsePage(q url.Values, errs ValidationErrors) page {
	p := page{limit: s.opts.DefaultLimit, sortField: "id"}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs.add("limit", "The limit must be a non-negative integer.")
		}
		if n > 0 {
			p.limit = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs.add("offset", "The offset must be a non-negative integer.")
		}
		p.offset = n
	}
	if v := q.Get("sort"); v != "" {
		f, desc := strings.CutPrefix(v, "-")
		f = strings.TrimPrefix(f, "+")
		if !sortFields[f] {
			errs.add("sort", "The sort field "+f+" is not supported.")
		}
		p.sortField, p.desc = f, desc
	}
	return p
}

// selectPage filters candidates, sorts (ties broken by id ascending) and pages.
// Callers hold s.mu.
func (s *Server) selectPage(p pred, pg page, candidates ...*record) ([]*record, int) {
	var hits []*record
	for _, r := range candidates {
		if p(r) {
			hits = append(hits, r)
		}
	}
	slices.SortStableFunc(hits, func(a, b *record) int {
		var c int
		switch pg.sortField {
		case "created_at":
			c = a.CreatedAt.Compare(b.CreatedAt)
		case "updated_at":
			c = a.UpdatedAt.Compare(b.UpdatedAt)
		case "touched_at":
			c = a.TouchedAt.Compare(b.TouchedAt)
		case "value":
			c = strings.Compare(a.Value, b.Value)
		case "score":
			c = cmp.Compare(effectiveScore(a), effectiveScore(b))
		}
		if pg.desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
			if pg.desc && pg.sortField == "id" {
				c = -c
			}
		}
		return c
	})
	total := len(hits)
	if pg.offset >= total {
		return nil, total
	}
	hits = hits[pg.offset:]
	if len(hits) > pg.limit {
		hits = hits[:pg.limit]
	}
	return hits, total
}

// writePage renders recs and writes the page. Callers hold s.mu; it releases it once the page is
// rendered (a snapshot), so the encoding does not hold up other requests.
func (s *Server) writePage(w http.ResponseWriter, recs []*record, total int, pg page, with withSet) {
	data := make([]indicatorOut, 0, len(recs))
	for _, r := range recs {
		data = append(data, s.render(r, with))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, envelope{Total: &total, Limit: &pg.limit, Offset: &pg.offset, Data: data})
}

// handleList serves GET /api/indicators?value=&type_id=&status_id=&with=
// &limit=&offset=&sort= [V S4,S6]. "%" in value is a wildcard [V S4].
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	errs := ValidationErrors{}
	pg := s.parsePage(q, errs)
	var ps []pred
	if q.Has("value") {
		v := q.Get("value")
		if strings.Contains(v, "%") {
			ps = append(ps, func(r *record) bool { return likeMatch(r.Value, v) })
		} else {
			ps = append(ps, func(r *record) bool { return r.Value == v })
		}
	}
	for _, k := range []string{"type_id", "status_id", "id"} {
		if !q.Has(k) {
			continue
		}
		n, err := strconv.Atoi(q.Get(k))
		if err != nil {
			errs.add(k, "The "+k+" must be an integer.")
			continue
		}
		ps = append(ps, intField(k, n))
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	s.mu.Lock() // released by writePage
	var recs []*record
	var total int
	if v := q.Get("value"); q.Has("value") && !strings.Contains(v, "%") {
		// An exact value names at most one indicator per type: use the index, not a scan.
		recs, total = s.selectPage(all(ps), pg, s.byValueIndex(v)...)
	} else {
		recs, total = s.selectPage(all(ps), pg, s.st.Indicators...)
	}
	s.writePage(w, recs, total, pg, parseWith(q.Get("with")))
}

// byValueIndex returns the indicators with exactly that value (one per type at most), from the
// (type, value) index. Callers hold s.mu.
func (s *Server) byValueIndex(v string) []*record {
	var out []*record
	for _, t := range s.st.Types {
		if r, ok := s.st.byKey[indKey{t.ID, v}]; ok {
			out = append(out, r)
		}
	}
	return out
}

func intField(field string, want int) pred {
	return func(r *record) bool {
		switch field {
		case "type_id":
			return r.TypeID == want
		case "status_id":
			return r.StatusID == want
		default:
			return r.ID == want
		}
	}
}

// handleQuery serves POST /api/indicators/query?limit=&offset=&sort=&with=
// with body {"criteria":{…},"filters":{…}} [V S5,S7,S8]. Items include the
// type and status objects, as the S5 mock shows.
//
// Supported condition keys (in criteria and filters alike): value,
// type_name, type_id, status_name, status_id, class, score (effective), id,
// created_at, updated_at, plus "+and"/"+or" lists. A field takes a plain
// value (equality) or an operator object: +equals, +not, +contains, +in,
// +gt, +gte, +lt, +lte. Comparisons on dates and the operators beyond
// +contains/+gte are [I], by analogy with the S8 test. Unknown keys are a
// 400 so clients notice an unsupported filter rather than get everything.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	errs := ValidationErrors{}
	pg := s.parsePage(q, errs)
	body, err := readBody(r)
	if err != nil {
		errs.add("body", err.Error())
	}
	var in struct {
		Criteria json.RawMessage `json:"criteria"`
		Filters  json.RawMessage `json:"filters"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			errs.add("body", "The request body must be a JSON object.")
		}
	}
	s.mu.Lock()
	var ps []pred
	for _, part := range []struct {
		name string
		raw  json.RawMessage
	}{{"criteria", in.Criteria}, {"filters", in.Filters}} {
		if isNull(part.raw) {
			continue
		}
		p, err := s.compile(part.raw)
		if err != nil {
			errs.add(part.name, err.Error())
			continue
		}
		ps = append(ps, p)
	}
	if len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs)
		return
	}
	with := parseWith(q.Get("with"))
	with["type"], with["status"] = true, true
	recs, total := s.selectPage(all(ps), pg, s.st.Indicators...)
	s.writePage(w, recs, total, pg, with)
}

// compile turns a condition (object: AND of its keys; array: AND of its
// items) into a predicate. Callers hold s.mu.
func (s *Server) compile(raw json.RawMessage) (pred, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("invalid condition list")
		}
		ps := make([]pred, 0, len(items))
		for _, it := range items {
			p, err := s.compile(it)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		return all(ps), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("a condition must be an object or an array")
	}
	var ps []pred
	for k, v := range obj {
		switch k {
		case "+and":
			p, err := s.compile(v)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		case "+or":
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, fmt.Errorf("+or takes a list of conditions")
			}
			alts := make([]pred, 0, len(items))
			for _, it := range items {
				p, err := s.compile(it)
				if err != nil {
					return nil, err
				}
				alts = append(alts, p)
			}
			ps = append(ps, func(r *record) bool {
				for _, p := range alts {
					if p(r) {
						return true
					}
				}
				return false
			})
		default:
			p, err := s.fieldPred(k, v)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
	}
	return all(ps), nil
}

// fieldKind says how a field's values compare.
type fieldKind int

const (
	kindString fieldKind = iota // case-sensitive (value)
	kindName                    // case-insensitive names
	kindNumber
	kindDate // "YYYY-MM-DD HH:MM:SS", compared as text
)

func (s *Server) fieldGetter(field string) (func(*record) string, fieldKind, bool) {
	switch field {
	case "value":
		return func(r *record) string { return r.Value }, kindString, true
	case "type_name":
		return func(r *record) string { t, _ := s.st.typeByID(r.TypeID); return t.Name }, kindName, true
	case "status_name":
		return func(r *record) string { st, _ := s.st.statusByID(r.StatusID); return st.Name }, kindName, true
	case "class":
		return func(r *record) string { t, _ := s.st.typeByID(r.TypeID); return t.Class }, kindName, true
	case "type_id":
		return func(r *record) string { return strconv.Itoa(r.TypeID) }, kindNumber, true
	case "status_id":
		return func(r *record) string { return strconv.Itoa(r.StatusID) }, kindNumber, true
	case "id":
		return func(r *record) string { return strconv.Itoa(r.ID) }, kindNumber, true
	case "score":
		return func(r *record) string { return strconv.Itoa(effectiveScore(r)) }, kindNumber, true
	case "created_at":
		return func(r *record) string { return fmtTime(r.CreatedAt) }, kindDate, true
	case "updated_at":
		return func(r *record) string { return fmtTime(r.UpdatedAt) }, kindDate, true
	case "touched_at":
		return func(r *record) string { return fmtTime(r.TouchedAt) }, kindDate, true
	}
	return nil, 0, false
}

func (s *Server) fieldPred(field string, raw json.RawMessage) (pred, error) {
	get, kind, ok := s.fieldGetter(field)
	if !ok {
		return nil, fmt.Errorf("unsupported field %q", field)
	}
	raw = bytes.TrimSpace(raw)
	ops := map[string]json.RawMessage{}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &ops); err != nil {
			return nil, fmt.Errorf("invalid operator object for %s", field)
		}
	} else {
		ops["+equals"] = raw
	}
	var ps []pred
	for op, arg := range ops {
		p, err := opPred(field, op, arg, get, kind)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return all(ps), nil
}

func scalar(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func opPred(field, op string, arg json.RawMessage, get func(*record) string, kind fieldKind) (pred, error) {
	if op == "+in" {
		var items []json.RawMessage
		if err := json.Unmarshal(arg, &items); err != nil {
			return nil, fmt.Errorf("+in on %s takes a list", field)
		}
		var ps []pred
		for _, it := range items {
			p, err := opPred(field, "+equals", it, get, kind)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		return func(r *record) bool {
			for _, p := range ps {
				if p(r) {
					return true
				}
			}
			return false
		}, nil
	}
	want, ok := scalar(arg)
	if !ok {
		return nil, fmt.Errorf("%s %s takes a string or number", field, op)
	}
	if kind == kindDate && !validDate(want) {
		return nil, fmt.Errorf("%s must use the format Y-m-d H:i:s", field)
	}
	var wantN float64
	if kind == kindNumber {
		n, err := strconv.ParseFloat(want, 64)
		if err != nil {
			return nil, fmt.Errorf("%s takes a number", field)
		}
		wantN = n
	}
	compare := func(have string) int {
		switch kind {
		case kindNumber:
			h, _ := strconv.ParseFloat(have, 64)
			return cmp.Compare(h, wantN)
		case kindName:
			return strings.Compare(strings.ToLower(have), strings.ToLower(want))
		default:
			return strings.Compare(have, want)
		}
	}
	switch op {
	case "+equals":
		return func(r *record) bool { return compare(get(r)) == 0 }, nil
	case "+not":
		return func(r *record) bool { return compare(get(r)) != 0 }, nil
	case "+contains":
		lw := strings.ToLower(want)
		return func(r *record) bool { return strings.Contains(strings.ToLower(get(r)), lw) }, nil
	case "+gt":
		return func(r *record) bool { return compare(get(r)) > 0 }, nil
	case "+gte":
		return func(r *record) bool { return compare(get(r)) >= 0 }, nil
	case "+lt":
		return func(r *record) bool { return compare(get(r)) < 0 }, nil
	case "+lte":
		return func(r *record) bool { return compare(get(r)) <= 0 }, nil
	}
	return nil, fmt.Errorf("unsupported operator %q on %s", op, field)
}

// likeMatch matches v against a pattern where "%" is any run of characters,
// case-insensitively (SQL LIKE) [I].
func likeMatch(v, pattern string) bool {
	v, pattern = strings.ToLower(v), strings.ToLower(pattern)
	parts := strings.Split(pattern, "%")
	if !strings.HasPrefix(v, parts[0]) {
		return false
	}
	v = v[len(parts[0]):]
	last := len(parts) - 1
	for i := 1; i < last; i++ {
		idx := strings.Index(v, parts[i])
		if idx < 0 {
			return false
		}
		v = v[idx+len(parts[i]):]
	}
	return strings.HasSuffix(v, parts[last])
}
