package tqemu

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Indicator is a read-only view of a stored indicator, with type and status
// resolved to names. It is what Indicators(), the dump and ScorePolicy see.
type Indicator struct {
	ID          int    `json:"id"`
	Value       string `json:"value"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	Description string `json:"description"`
	// Score is the effective score: ManualScore when set, else the floor of
	// GeneratedScore [V S4,S5 code; I].
	Score          int         `json:"score"`
	GeneratedScore float64     `json:"generated_score"`
	ManualScore    *int        `json:"manual_score"`
	Attributes     []Attribute `json:"attributes"`
	Sources        []Source    `json:"sources"`
	Tags           []string    `json:"tags"`
	Comments       []string    `json:"comments"`
	PublishedAt    string      `json:"published_at,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
	TouchedAt      time.Time   `json:"touched_at"`
	// CreatedExact is emulator-only: the creation time at full precision (ThreatQ's timestamps,
	// and CreatedAt, have one-second resolution), for latency measurements.
	CreatedExact time.Time `json:"created_exact,omitzero"`
}

// Attribute is one attribute value; a name may carry several values.
type Attribute struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Value   string   `json:"value"`
	Sources []string `json:"sources"`
}

// Source is a source attached to an indicator.
type Source struct {
	Name string `json:"name"`
	TLP  string `json:"tlp,omitempty"`
}

// Attr returns the values of the named attribute (case-insensitive).
func (i Indicator) Attr(name string) []string {
	var out []string
	for _, a := range i.Attributes {
		if strings.EqualFold(a.Name, name) {
			out = append(out, a.Value)
		}
	}
	return out
}

func effectiveScore(r *record) int {
	if r.ManualScore != nil {
		return *r.ManualScore
	}
	return int(math.Floor(r.GeneratedScore))
}

// view builds the public form of r. Callers hold s.mu.
func (s *Server) view(r *record) Indicator {
	t, _ := s.st.typeByID(r.TypeID)
	st, _ := s.st.statusByID(r.StatusID)
	v := Indicator{
		ID: r.ID, Value: r.Value, Type: t.Name, Status: st.Name, Description: r.Description,
		Score: effectiveScore(r), GeneratedScore: r.GeneratedScore, PublishedAt: r.PublishedAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, TouchedAt: r.TouchedAt, CreatedExact: r.CreatedExact,
		Attributes: []Attribute{}, Sources: []Source{}, Tags: []string{}, Comments: []string{},
	}
	if r.ManualScore != nil {
		m := *r.ManualScore
		v.ManualScore = &m
	}
	for _, a := range r.Attributes {
		av := Attribute{ID: a.ID, Name: a.Name, Value: a.Value, Sources: []string{}}
		for _, s := range a.Sources {
			av.Sources = append(av.Sources, s.Name)
		}
		v.Attributes = append(v.Attributes, av)
	}
	for _, src := range r.Sources {
		v.Sources = append(v.Sources, Source{Name: src.Name, TLP: tlpNames[src.TLPID]})
	}
	for _, tg := range r.Tags {
		v.Tags = append(v.Tags, tg.Name)
	}
	for _, c := range r.Comments {
		v.Comments = append(v.Comments, c.Value)
	}
	return v
}

// upsert creates the indicator sp describes or merges it into the existing
// one with the same (type, value). An existing indicator keeps its status:
// the SDK changes status with a separate PUT after consuming [V S4 code, I].
// Callers hold s.mu.
func (s *Server) upsert(sp indSpec, now time.Time) (*record, bool) {
	if r, ok := s.st.byKey[indKey{sp.typeID, sp.value}]; ok {
		changed := s.merge(r, sp, now)
		if sp.description != nil && *sp.description != r.Description {
			r.Description = *sp.description
			changed = true
		}
		r.TouchedAt = now
		if changed {
			s.touch(r, now)
		}
		return r, true
	}
	status := sp.statusID
	if status == 0 {
		def, _ := s.st.statusByName(s.opts.DefaultStatus)
		status = def.ID
	}
	sum := md5.Sum([]byte(sp.value)) // hash composition is unknown [I]
	r := &record{
		ID: s.st.next("indicator"), Value: sp.value, TypeID: sp.typeID, StatusID: status,
		Hash: hex.EncodeToString(sum[:]), PublishedAt: sp.publishedAt,
		CreatedAt: now, UpdatedAt: now, TouchedAt: now, ScoreUpdatedAt: now, CreatedExact: s.opts.Now().UTC(),
		Attributes: []*attrRec{}, Sources: []*srcRec{}, Tags: []*tagRec{}, Comments: []*commentRec{},
	}
	if sp.description != nil {
		r.Description = *sp.description
	}
	s.merge(r, sp, now)
	s.rescore(r, now)
	s.st.insert(r)
	s.stats.Created++
	return r, false
}

// touch records a change to r: updated_at moves and the score is recomputed.
func (s *Server) touch(r *record, now time.Time) {
	r.UpdatedAt, r.TouchedAt = now, now
	s.rescore(r, now)
	s.stats.Updated++
}

func (s *Server) rescore(r *record, now time.Time) {
	var g float64 // the default policy's score
	if !s.constScore {
		g = s.opts.ScorePolicy(s.view(r))
	}
	g = math.Max(0, math.Min(10, g))
	if g != r.GeneratedScore {
		r.GeneratedScore = g
		r.ScoreUpdatedAt = now
	}
}

// merge adds sources, attributes, tags and comments that r lacks. An
// identical attribute (same name and value) is not duplicated [I]; a new
// value for an existing name is appended (attributes are multi-valued).
func (s *Server) merge(r *record, sp indSpec, now time.Time) bool {
	changed := false
	for _, src := range sp.sources {
		if s.addSource(&r.Sources, src, now) {
			changed = true
		}
	}
	for _, a := range sp.attrs {
		if _, added := s.addAttribute(r, a, now); added {
			changed = true
		}
	}
	for _, t := range sp.tags {
		if _, added := s.addTag(r, t, now); added {
			changed = true
		}
	}
	for _, c := range sp.comments {
		dup := false
		for _, have := range r.Comments {
			dup = dup || have.Value == c
		}
		if !dup {
			r.Comments = append(r.Comments, &commentRec{ID: s.st.next("comment"), Value: c, CreatedAt: now})
			changed = true
		}
	}
	return changed
}

// addSource adds src to list unless a source of that name is there; a new
// TLP on a known source replaces the old one. It reports a change.
func (s *Server) addSource(list *[]*srcRec, src srcSpec, now time.Time) bool {
	for _, have := range *list {
		if strings.EqualFold(have.Name, src.name) {
			if src.tlpID != 0 && src.tlpID != have.TLPID {
				have.TLPID = src.tlpID
				return true
			}
			return false
		}
	}
	*list = append(*list, &srcRec{
		PivotID: s.st.next("pivot"), SourceID: s.st.named(s.st.SourceIDs, "source_id", src.name),
		Name: src.name, TLPID: src.tlpID, PublishedAt: src.publishedAt, CreatedAt: now,
	})
	return true
}

func (s *Server) addAttribute(r *record, a attrSpec, now time.Time) (*attrRec, bool) {
	for _, have := range r.Attributes {
		if strings.EqualFold(have.Name, a.name) && have.Value == a.value {
			changed := false
			for _, src := range a.sources {
				if s.addSource(&have.Sources, src, now) {
					changed = true
				}
			}
			if changed {
				have.UpdatedAt = now
			}
			return have, changed
		}
	}
	ar := &attrRec{
		ID: s.st.next("attribute"), AttributeID: s.st.named(s.st.AttrIDs, "attribute_id", a.name),
		Name: a.name, Value: a.value, PublishedAt: a.publishedAt, Sources: []*srcRec{},
		CreatedAt: now, UpdatedAt: now,
	}
	for _, src := range a.sources {
		s.addSource(&ar.Sources, src, now)
	}
	r.Attributes = append(r.Attributes, ar)
	return ar, true
}

func (s *Server) addTag(r *record, name string, now time.Time) (*tagRec, bool) {
	for _, have := range r.Tags {
		if strings.EqualFold(have.Name, name) {
			return have, false
		}
	}
	t := &tagRec{ID: s.st.named(s.st.TagIDs, "tag", name), Name: name, CreatedAt: now}
	r.Tags = append(r.Tags, t)
	return t, true
}

// withSet is the parsed ?with= list.
type withSet map[string]bool

func parseWith(q string) withSet {
	w := withSet{}
	for _, p := range strings.Split(q, ",") {
		if p = strings.TrimSpace(strings.ToLower(p)); p != "" {
			w[p] = true
		}
	}
	return w
}

func fmtTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// indicatorOut is the JSON form of one indicator. Relations are pointers so that they appear
// only when ?with= asked for them (an empty list when asked and empty).
type indicatorOut struct {
	ID                  int                `json:"id"`
	Value               string             `json:"value"`
	TypeID              int                `json:"type_id"`
	StatusID            int                `json:"status_id"`
	Class               string             `json:"class"`
	Description         string             `json:"description"`
	Hash                string             `json:"hash"`
	CreatedAt           string             `json:"created_at"`
	UpdatedAt           string             `json:"updated_at"`
	TouchedAt           string             `json:"touched_at"`
	PublishedAt         *string            `json:"published_at"`
	ExpiresAt           *string            `json:"expires_at"`
	ExpiredAt           *string            `json:"expired_at"`
	ExpiresCalculatedAt *string            `json:"expires_calculated_at"`
	ExpiresNeedsCalc    string             `json:"expires_needs_calc"`
	LastDetectedAt      *string            `json:"last_detected_at"`
	Score               any                `json:"score"` // number, or the score object with=score
	Existing            string             `json:"existing,omitempty"`
	Type                *TypeDef           `json:"type,omitempty"`
	Status              *StatusDef         `json:"status,omitempty"`
	Attributes          *[]attrOut         `json:"attributes,omitempty"`
	Sources             *[]sourceOut       `json:"sources,omitempty"`
	Tags                *[]tagOut          `json:"tags,omitempty"`
	Comments            *[]commentOut      `json:"comments,omitempty"`
	Adversaries         *[]json.RawMessage `json:"adversaries,omitempty"`
	Events              *[]json.RawMessage `json:"events,omitempty"`
	Indicators          *[]json.RawMessage `json:"indicators,omitempty"`
}

type scoreOut struct {
	IndicatorID     int     `json:"indicator_id"`
	GeneratedScore  string  `json:"generated_score"`
	ManualScore     *string `json:"manual_score"`
	ScoreConfigHash string  `json:"score_config_hash"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
}

type attrOut struct {
	ID          int         `json:"id"`
	AttributeID int         `json:"attribute_id"`
	IndicatorID int         `json:"indicator_id"`
	Name        string      `json:"name"`
	Value       string      `json:"value"`
	PublishedAt *string     `json:"published_at"`
	CreatedAt   string      `json:"created_at"`
	UpdatedAt   string      `json:"updated_at"`
	TouchedAt   string      `json:"touched_at"`
	Sources     []sourceOut `json:"sources"`
}

type tlpOut struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type pivotOut struct {
	ID          int     `json:"id"`
	IndicatorID int     `json:"indicator_id"`
	SourceID    int     `json:"source_id"`
	TLPID       *int    `json:"tlp_id"`
	PublishedAt *string `json:"published_at"`
	CreatedAt   string  `json:"created_at"`
}

type sourceOut struct {
	ID          int      `json:"id"`
	SourceID    int      `json:"source_id"`
	Name        string   `json:"name"`
	SourceType  string   `json:"source_type"`
	TLPID       *int     `json:"tlp_id"`
	TLP         *tlpOut  `json:"tlp"`
	PublishedAt *string  `json:"published_at"`
	CreatedAt   string   `json:"created_at"`
	Pivot       pivotOut `json:"pivot"`
}

type tagOut struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type commentOut struct {
	ID          int               `json:"id"`
	IndicatorID int               `json:"indicator_id"`
	Value       string            `json:"value"`
	Sources     []json.RawMessage `json:"sources"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

// render builds the JSON form of r: a snapshot that shares nothing mutable with the store, so it
// may be encoded after s.mu is released. Without with=score, "score" is the effective number;
// with it, the score object [V S6, S9]. Callers hold s.mu.
func (s *Server) render(r *record, with withSet) indicatorOut {
	t, _ := s.st.typeByID(r.TypeID)
	m := indicatorOut{
		ID: r.ID, Value: r.Value, TypeID: r.TypeID, StatusID: r.StatusID,
		Class: t.Class, Description: r.Description, Hash: r.Hash,
		CreatedAt: fmtTime(r.CreatedAt), UpdatedAt: fmtTime(r.UpdatedAt), TouchedAt: fmtTime(r.TouchedAt),
		PublishedAt: nullable(r.PublishedAt), ExpiresNeedsCalc: "Y",
		Score: effectiveScore(r),
	}
	if with["score"] {
		m.Score = s.scoreObject(r)
	}
	if with["type"] {
		m.Type = &t
	}
	if with["status"] {
		st, _ := s.st.statusByID(r.StatusID)
		m.Status = &st
	}
	if with["attributes"] {
		attrs := make([]attrOut, 0, len(r.Attributes))
		for _, a := range r.Attributes {
			attrs = append(attrs, renderAttr(r.ID, a))
		}
		m.Attributes = &attrs
	}
	if with["sources"] {
		srcs := renderSources(r.ID, r.Sources)
		m.Sources = &srcs
	}
	if with["tags"] {
		tags := renderTags(r.Tags)
		m.Tags = &tags
	}
	if with["comments"] {
		cs := make([]commentOut, 0, len(r.Comments))
		for _, c := range r.Comments {
			cs = append(cs, renderComment(r.ID, c))
		}
		m.Comments = &cs
	}
	empty := func() *[]json.RawMessage { e := []json.RawMessage{}; return &e }
	if with["adversaries"] {
		m.Adversaries = empty()
	}
	if with["events"] {
		m.Events = empty()
	}
	if with["indicators"] {
		m.Indicators = empty()
	}
	return m
}

// scoreObject is the score form from S6: scores as strings.
func (s *Server) scoreObject(r *record) scoreOut {
	var manual *string
	if r.ManualScore != nil {
		v := strconv.Itoa(*r.ManualScore)
		manual = &v
	}
	return scoreOut{
		IndicatorID:     r.ID,
		GeneratedScore:  strconv.FormatFloat(r.GeneratedScore, 'f', 2, 64),
		ManualScore:     manual,
		ScoreConfigHash: s.scoreCfgHash,
		CreatedAt:       fmtTime(r.CreatedAt),
		UpdatedAt:       fmtTime(r.ScoreUpdatedAt),
	}
}

func renderAttr(indicatorID int, a *attrRec) attrOut {
	upd := fmtTime(a.UpdatedAt)
	return attrOut{
		ID: a.ID, AttributeID: a.AttributeID, IndicatorID: indicatorID,
		Name: a.Name, Value: a.Value, PublishedAt: nullable(a.PublishedAt),
		CreatedAt: fmtTime(a.CreatedAt), UpdatedAt: upd, TouchedAt: upd,
		Sources: renderSources(indicatorID, a.Sources),
	}
}

// renderSources follows the shapes clients read: "id"/"source_id", "name",
// "tlp_id" and "pivot.id" (the id DELETE …/sources/{id} takes) [V S5].
func renderSources(indicatorID int, list []*srcRec) []sourceOut {
	out := make([]sourceOut, 0, len(list))
	for _, src := range list {
		var tlpID *int
		var tlp *tlpOut
		if src.TLPID != 0 {
			id := src.TLPID
			tlpID = &id
			tlp = &tlpOut{ID: id, Name: tlpNames[id]}
		}
		created, published := fmtTime(src.CreatedAt), nullable(src.PublishedAt)
		out = append(out, sourceOut{
			ID: src.SourceID, SourceID: src.SourceID, Name: src.Name, SourceType: "other_sources",
			TLPID: tlpID, TLP: tlp, PublishedAt: published, CreatedAt: created,
			Pivot: pivotOut{
				ID: src.PivotID, IndicatorID: indicatorID, SourceID: src.SourceID, TLPID: tlpID,
				PublishedAt: published, CreatedAt: created,
			},
		})
	}
	return out
}

func renderTags(list []*tagRec) []tagOut {
	out := make([]tagOut, 0, len(list))
	for _, t := range list {
		out = append(out, tagOut{ID: t.ID, Name: t.Name, CreatedAt: fmtTime(t.CreatedAt)})
	}
	return out
}

func renderComment(indicatorID int, c *commentRec) commentOut {
	created := fmtTime(c.CreatedAt)
	return commentOut{
		ID: c.ID, IndicatorID: indicatorID, Value: c.Value, Sources: []json.RawMessage{},
		CreatedAt: created, UpdatedAt: created,
	}
}
