package threatq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDescription is the description length ThreatQ accepts (the SDK cuts there).
const maxDescription = 65500

// withAll is the relation set read back with indicators.
const withAll = "attributes,sources,score,type,status,tags"

type listEnvelope[T any] struct {
	Total int `json:"total"`
	Data  []T `json:"data"`
}

type oneEnvelope[T any] struct {
	Data T `json:"data"`
}

// Resolve loads this instance's indicator type and status ids by name. Call it once at start
// (and again if ThreatQ is reconfigured); the indicator methods fail with ErrUnresolved before it.
func (c *Client) Resolve(ctx context.Context) error {
	types, err := c.listRefs(ctx, "resolve types", "indicator/types")
	if err != nil {
		return err
	}
	stats, err := c.listRefs(ctx, "resolve statuses", "indicator/statuses")
	if err != nil {
		return err
	}
	tIDs, tNames := index(types)
	sIDs, sNames := index(stats)
	c.idsMu.Lock()
	c.typeIDs, c.typeName, c.statIDs, c.statName = tIDs, tNames, sIDs, sNames
	c.idsMu.Unlock()
	c.logger.DebugContext(ctx, "threatq ids resolved", "types", len(types), "statuses", len(stats))
	return nil
}

func (c *Client) listRefs(ctx context.Context, op, path string) ([]wireRef, error) {
	var all []wireRef
	const page = 500
	for offset := 0; ; offset += page {
		var env listEnvelope[wireRef]
		q := url.Values{"limit": {strconv.Itoa(page)}, "offset": {strconv.Itoa(offset)}}
		if err := c.do(ctx, op, http.MethodGet, path, q, nil, &env); err != nil {
			return nil, err
		}
		all = append(all, env.Data...)
		if len(env.Data) < page || (env.Total > 0 && len(all) >= env.Total) {
			return all, nil
		}
	}
}

func index(refs []wireRef) (map[string]int64, map[int64]string) {
	ids := make(map[string]int64, len(refs))
	byID := make(map[int64]string, len(refs))
	for _, r := range refs {
		ids[strings.ToLower(r.Name)] = r.ID
		byID[r.ID] = r.Name
	}
	return ids, byID
}

// TypeID returns the id of an indicator type name.
func (c *Client) TypeID(name string) (int64, error) {
	c.idsMu.RLock()
	defer c.idsMu.RUnlock()
	if id, ok := c.typeIDs[strings.ToLower(name)]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("indicator type %q: %w", name, ErrUnresolved)
}

// StatusID returns the id of an indicator status name.
func (c *Client) StatusID(name string) (int64, error) {
	c.idsMu.RLock()
	defer c.idsMu.RUnlock()
	if id, ok := c.statIDs[strings.ToLower(name)]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("indicator status %q: %w", name, ErrUnresolved)
}

func (c *Client) typeNameOf(id int64) string {
	c.idsMu.RLock()
	defer c.idsMu.RUnlock()
	return c.typeName[id]
}

func (c *Client) statusNameOf(id int64) string {
	c.idsMu.RLock()
	defer c.idsMu.RUnlock()
	return c.statName[id]
}

// Ping makes one cheap authenticated call (a breaker probe).
func (c *Client) Ping(ctx context.Context) error {
	var env listEnvelope[wireRef]
	return c.do(ctx, "ping", http.MethodGet, "indicator/statuses", url.Values{"limit": {"1"}}, nil, &env)
}

func (c *Client) encode(in Indicator) (wireIndicatorIn, error) {
	tid, err := c.TypeID(in.Type)
	if err != nil {
		return wireIndicatorIn{}, err
	}
	w := wireIndicatorIn{Value: in.Value, TypeID: tid, Description: in.Description, Tags: in.Tags}
	if in.Status != "" {
		if w.StatusID, err = c.StatusID(in.Status); err != nil {
			return wireIndicatorIn{}, err
		}
	}
	if !in.PublishedAt.IsZero() {
		w.PublishedAt = in.PublishedAt.UTC().Format(TimeLayout)
	}
	for _, s := range in.Sources {
		w.Sources = append(w.Sources, wireSource{Name: s.Name, TLPID: tlpIDs[strings.ToUpper(s.TLP)]})
	}
	for _, a := range in.Attributes {
		w.Attributes = append(w.Attributes, attrIn(a, w.PublishedAt))
	}
	if len(w.Description) > maxDescription {
		cut := maxDescription
		for cut > 0 && !utf8.RuneStart(w.Description[cut]) {
			cut--
		}
		w.Description = w.Description[:cut]
	}
	return w, nil
}

func attrIn(a Attribute, published string) wireAttrIn {
	wa := wireAttrIn{Name: a.Name, Value: a.Value, PublishedAt: published}
	for _, s := range a.Sources {
		wa.Sources = append(wa.Sources, wireNamed{Name: s})
	}
	return wa
}

func (c *Client) decode(w wireIndicatorOut) Indicator {
	in := Indicator{
		ID: w.ID, Value: w.Value, Description: w.Description,
		CreatedAt: parseTime(w.CreatedAt), UpdatedAt: parseTime(w.UpdatedAt),
		Tags: parseTags(w.Tags), Score: parseScore(w.Score),
	}
	if _, n := refName(w.Type); n != "" {
		in.Type = n
	} else {
		in.Type = c.typeNameOf(w.TypeID)
	}
	if _, n := refName(w.Status); n != "" {
		in.Status = n
	} else {
		in.Status = c.statusNameOf(w.StatusID)
	}
	for _, s := range w.Sources {
		in.Sources = append(in.Sources, Source{Name: s.Name})
	}
	for _, a := range w.Attributes {
		in.Attributes = append(in.Attributes, Attribute{ID: a.ID, Name: a.Name, Value: flexString(a.Value), Sources: names(a.Sources)})
	}
	return in
}

// Consume upserts indicators with POST /api/indicators/consume (one call; callers batch, ≤ 500).
// ThreatQ dedupes on (type, value): a known indicator keeps its id and Result.Existing is true.
// ThreatQ does not change the status of an existing indicator through consume and appends attribute
// values; use SetStatus and ReplaceAttributes for those. Results are in input order.
func (c *Client) Consume(ctx context.Context, ins []Indicator) ([]Result, error) {
	return c.consume(ctx, ins, false)
}

// ConsumeWithAttributes is Consume asking ThreatQ (with=attributes) to return each indicator's
// attribute values, with their ids, as they are after the merge. When the server includes them,
// Result.AttributesKnown is true and Result.Attributes holds them, which saves reading them back
// with Attributes before a ReplaceAttributes.
func (c *Client) ConsumeWithAttributes(ctx context.Context, ins []Indicator) ([]Result, error) {
	return c.consume(ctx, ins, true)
}

func (c *Client) consume(ctx context.Context, ins []Indicator, withAttrs bool) ([]Result, error) {
	if len(ins) == 0 {
		return nil, nil
	}
	body := make([]wireIndicatorIn, len(ins))
	for i, in := range ins {
		w, err := c.encode(in)
		if err != nil {
			return nil, fmt.Errorf("consume %q: %w", in.Value, err)
		}
		body[i] = w
	}
	var q url.Values
	if withAttrs {
		q = url.Values{"with": {"attributes"}}
	}
	var env listEnvelope[wireConsumeOut]
	if err := c.do(ctx, "consume", http.MethodPost, "indicators/consume", q, body, &env); err != nil {
		return nil, err
	}
	return c.matchResults(body, env.Data)
}

// matchResults maps response items back to the inputs by (type id, value), then value, then position.
func (c *Client) matchResults(sent []wireIndicatorIn, got []wireConsumeOut) ([]Result, error) {
	type key struct {
		tid   int64
		value string
	}
	byKey := make(map[key]*wireConsumeOut, len(got))
	byValue := make(map[string]*wireConsumeOut, len(got))
	for i := range got {
		g := &got[i]
		tid := g.TypeID
		if tid == 0 {
			tid, _ = refName(g.Type)
		}
		byKey[key{tid, g.Value}] = g
		byValue[g.Value] = g
	}
	out := make([]Result, len(sent))
	for i, s := range sent {
		g, ok := byKey[key{s.TypeID, s.Value}]
		if !ok {
			g, ok = byValue[s.Value]
		}
		if !ok && len(got) == len(sent) {
			g, ok = &got[i], true
		}
		if !ok || g.ID == 0 {
			return nil, &APIError{Op: "consume", Status: http.StatusOK, Message: fmt.Sprintf("no id returned for %q", s.Value)}
		}
		status := c.statusNameOf(g.StatusID)
		if _, n := refName(g.Status); n != "" {
			status = n
		}
		out[i] = Result{Index: i, ID: g.ID, Value: g.Value, Status: status, Existing: yes(g.Existing)}
		if g.Attributes != nil { // present (possibly empty): the server returned the relation
			out[i].AttributesKnown = true
			out[i].Attributes = attrsOut(g.Attributes)
		}
	}
	return out, nil
}

// Get returns the indicator with that value and type name (with attributes, sources, score),
// or an error matching ErrNotFound.
func (c *Client) Get(ctx context.Context, value, typeName string) (Indicator, error) {
	tid, err := c.TypeID(typeName)
	if err != nil {
		return Indicator{}, err
	}
	q := url.Values{"value": {value}, "type_id": {strconv.FormatInt(tid, 10)}, "with": {withAll}}
	var env listEnvelope[wireIndicatorOut]
	if err := c.do(ctx, "get indicator", http.MethodGet, "indicators", q, nil, &env); err != nil {
		return Indicator{}, err
	}
	for _, w := range env.Data {
		in := c.decode(w)
		if w.Value == value && (w.TypeID == tid || strings.EqualFold(in.Type, typeName)) {
			return in, nil
		}
	}
	return Indicator{}, fmt.Errorf("indicator %s %q: %w", typeName, value, ErrNotFound)
}

// GetByID returns one indicator with attributes, sources, score, type and status.
func (c *Client) GetByID(ctx context.Context, id int64) (Indicator, error) {
	var env oneEnvelope[wireIndicatorOut]
	q := url.Values{"with": {withAll}}
	if err := c.do(ctx, "get indicator", http.MethodGet, "indicators/"+strconv.FormatInt(id, 10), q, nil, &env); err != nil {
		return Indicator{}, err
	}
	return c.decode(env.Data), nil
}

// Query runs POST /api/indicators/query with a criteria/filters body, one page.
// It returns the page and ThreatQ's total.
func (c *Client) Query(ctx context.Context, body any, sort string, limit, offset int) ([]Indicator, int, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}, "with": {withAll}}
	if sort != "" {
		q.Set("sort", sort)
	}
	var env listEnvelope[wireIndicatorOut]
	if err := c.do(ctx, "query indicators", http.MethodPost, "indicators/query", q, body, &env); err != nil {
		return nil, 0, err
	}
	out := make([]Indicator, len(env.Data))
	for i, w := range env.Data {
		out[i] = c.decode(w)
	}
	return out, env.Total, nil
}

// QueryUpdatedSince returns one page of indicators updated at or after since, sorted by
// updated_at then id (ascending), with sources, attributes, status and score.
func (c *Client) QueryUpdatedSince(ctx context.Context, since time.Time, limit, offset int) ([]Indicator, int, error) {
	body := map[string]any{
		"criteria": map[string]any{},
		"filters":  map[string]any{"updated_at": map[string]string{"+gte": since.UTC().Format(TimeLayout)}},
	}
	return c.Query(ctx, body, "updated_at", limit, offset)
}

// Attributes lists the attribute values of an indicator.
func (c *Client) Attributes(ctx context.Context, id int64) ([]Attribute, error) {
	var env listEnvelope[wireAttrOut]
	q := url.Values{"with": {"sources"}, "limit": {"10000"}}
	if err := c.do(ctx, "list attributes", http.MethodGet, attrPath(id), q, nil, &env); err != nil {
		return nil, err
	}
	return attrsOut(env.Data), nil
}

func attrsOut(ws []wireAttrOut) []Attribute {
	out := make([]Attribute, len(ws))
	for i, a := range ws {
		out[i] = Attribute{ID: a.ID, Name: a.Name, Value: flexString(a.Value), Sources: names(a.Sources)}
	}
	return out
}

func attrPath(id int64) string { return "indicators/" + strconv.FormatInt(id, 10) + "/attributes" }

// AddAttribute appends one attribute value to an indicator.
func (c *Client) AddAttribute(ctx context.Context, id int64, a Attribute) error {
	return c.do(ctx, "add attribute", http.MethodPost, attrPath(id), nil, attrIn(a, ""), nil)
}

// DeleteAttribute removes one attribute value (by its value id) from an indicator.
func (c *Client) DeleteAttribute(ctx context.Context, id, attrID int64) error {
	err := c.do(ctx, "delete attribute", http.MethodDelete, attrPath(id)+"/"+strconv.FormatInt(attrID, 10), nil, nil, nil)
	if err != nil && isNotFound(err) {
		return nil // already gone
	}
	return err
}

// AttributeChanges counts what ReplaceAttributes did.
type AttributeChanges struct {
	Added, Deleted, Kept int
}

// ReplaceAttributes makes the values of the attribute names Vigil owns equal to want, leaving
// every other attribute alone. ThreatQ attributes are multi-valued and POST appends, so for each
// owned name it deletes the values that are not wanted (and duplicates of wanted ones) that were
// written by source (or carry no source information), and adds the wanted values that are missing.
// Values of an owned name written by another source are left in place. Names in want are owned
// implicitly. current, when not nil, is the indicator's attribute list already read (saves a GET).
func (c *Client) ReplaceAttributes(ctx context.Context, id int64, source string, owned []string, want []Attribute, current []Attribute) (AttributeChanges, error) {
	var ch AttributeChanges
	if current == nil {
		var err error
		if current, err = c.Attributes(ctx, id); err != nil {
			return ch, err
		}
	}
	plan := PlanAttributes(source, owned, want, current)
	for _, a := range plan.Delete {
		if err := c.DeleteAttribute(ctx, id, a.ID); err != nil {
			return ch, err
		}
		ch.Deleted++
	}
	for _, a := range plan.Add {
		if len(a.Sources) == 0 && source != "" {
			a.Sources = []string{source}
		}
		if err := c.AddAttribute(ctx, id, a); err != nil {
			return ch, err
		}
		ch.Added++
	}
	ch.Kept = plan.Kept
	return ch, nil
}

// AttributePlan is the diff ReplaceAttributes applies.
type AttributePlan struct {
	Delete []Attribute // existing values to delete (with ID)
	Add    []Attribute // values to add
	Kept   int         // wanted values already present
}

// PlanAttributes computes the attribute diff without side effects (see ReplaceAttributes).
func PlanAttributes(source string, owned []string, want, current []Attribute) AttributePlan {
	own := make(map[string]bool, len(owned)+len(want))
	for _, n := range owned {
		own[strings.ToLower(n)] = true
	}
	type nv struct{ name, value string }
	wanted := make(map[nv]bool, len(want))
	for _, a := range want {
		own[strings.ToLower(a.Name)] = true
		wanted[nv{strings.ToLower(a.Name), a.Value}] = true
	}
	var p AttributePlan
	present := make(map[nv]bool, len(current))
	for _, a := range current {
		k := nv{strings.ToLower(a.Name), a.Value}
		if !own[k.name] {
			continue
		}
		if wanted[k] && !present[k] {
			present[k] = true
			p.Kept++
			continue
		}
		if writtenBy(a, source) {
			p.Delete = append(p.Delete, a)
		}
	}
	added := make(map[nv]bool, len(want))
	for _, a := range want {
		k := nv{strings.ToLower(a.Name), a.Value}
		if present[k] || added[k] {
			continue
		}
		added[k] = true
		p.Add = append(p.Add, a)
	}
	return p
}

func writtenBy(a Attribute, source string) bool {
	if len(a.Sources) == 0 || source == "" {
		return true
	}
	for _, s := range a.Sources {
		if strings.EqualFold(s, source) {
			return true
		}
	}
	return false
}

// SetStatus changes an indicator's status (PUT /api/indicators/{id}).
func (c *Client) SetStatus(ctx context.Context, id int64, status string) error {
	sid, err := c.StatusID(status)
	if err != nil {
		return err
	}
	body := map[string]int64{"status_id": sid}
	return c.do(ctx, "set status", http.MethodPut, "indicators/"+strconv.FormatInt(id, 10), nil, body, nil)
}

// SetScore sets the manual score (0–10) with PUT /api/indicator/{id}/scores; a negative score
// clears it so the generated score applies again.
func (c *Client) SetScore(ctx context.Context, id int64, score float64) error {
	body := map[string]any{"manual_score": nil}
	if score >= 0 {
		body["manual_score"] = score
	}
	return c.do(ctx, "set score", http.MethodPut, "indicator/"+strconv.FormatInt(id, 10)+"/scores", nil, body, nil)
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
