package tqemu

import (
	"math/rand/v2"
	"strings"
	"time"
)

// TimeLayout is the date format ThreatQ uses in every request and response.
const TimeLayout = "2006-01-02 15:04:05"

// TypeDef is one indicator type as served by /api/indicator/types.
type TypeDef struct {
	ID               int    `json:"id"`
	Name             string `json:"name"`
	Class            string `json:"class"`
	Score            *int   `json:"score"`
	WildcardMatching string `json:"wildcard_matching"`
	CreatedAt        string `json:"created_at"`
	UpdatedAt        string `json:"updated_at"`
}

// StatusDef is one indicator status as served by /api/indicator/statuses.
type StatusDef struct {
	ID              int    `json:"id"`
	Name            string `json:"name"`
	Description     string `json:"description"`
	UserEditable    string `json:"user_editable"`
	Visible         string `json:"visible"`
	IncludeInExport string `json:"include_in_export"`
	Protected       string `json:"protected"`
	CreatedAt       string `json:"created_at"`
	UpdatedAt       string `json:"updated_at"`
}

// Type names from the SDK's tq_mappings.py ("manually taken from /api/objects").
// The class of each is [I] except IP Address, FQDN-like network types and
// hashes, which the spec's mocks show.
var defaultTypes = []struct{ name, class string }{
	{"ASN", "network"},
	{"Binary String", "host"},
	{"CIDR Block", "network"},
	{"CVE", "host"},
	{"Email Address", "network"},
	{"Email Attachment", "host"},
	{"Email Subject", "network"},
	{"File Mapping", "host"},
	{"File Path", "host"},
	{"Filename", "host"},
	{"FQDN", "network"},
	{"Fuzzy Hash", "host"},
	{"GOST Hash", "host"},
	{"Hash ION", "host"},
	{"IP Address", "network"},
	{"IPv6 Address", "network"},
	{"MAC Address", "host"},
	{"MD5", "host"},
	{"Mutex", "host"},
	{"Password", "host"},
	{"Registry Key", "host"},
	{"Service Name", "host"},
	{"SHA-1", "host"},
	{"SHA-256", "host"},
	{"SHA-384", "host"},
	{"SHA-512", "host"},
	{"String", "host"},
	{"x509 Serial", "network"},
	{"x509 Subject", "network"},
	{"URL", "network"},
	{"URL Path", "network"},
	{"User-agent", "network"},
	{"Username", "host"},
	{"X-Mailer", "network"},
}

// Default statuses. Names and the Review/Whitelisted/Active descriptions are
// [V]; the other descriptions and the flags are [I].
var defaultStatuses = []StatusDef{
	{Name: "Active", Description: "Poses a threat and is being exported to detection tools.", IncludeInExport: "Y"},
	{Name: "Expired", Description: "No longer poses a serious threat.", IncludeInExport: "N"},
	{Name: "Indirect", Description: "Associated to an active threat but is not directly malicious.", IncludeInExport: "N"},
	{Name: "Review", Description: "Requires further analysis.", IncludeInExport: "N"},
	{Name: "Whitelisted", Description: "Poses NO risk and should never be deployed.", IncludeInExport: "N"},
}

// tlpNames maps TLP ids to names (SDK tlp_map: red=1, amber=2, green=3, white=4).
var tlpNames = map[int]string{1: "RED", 2: "AMBER", 3: "GREEN", 4: "WHITE"}

func tlpIDByName(name string) (int, bool) {
	for id, n := range tlpNames {
		if strings.EqualFold(n, name) {
			return id, true
		}
	}
	return 0, false
}

// record is one stored indicator. Fields are exported for the snapshot file.
type record struct {
	ID             int           `json:"id"`
	Value          string        `json:"value"`
	TypeID         int           `json:"type_id"`
	StatusID       int           `json:"status_id"`
	Description    string        `json:"description"`
	Hash           string        `json:"hash"`
	PublishedAt    string        `json:"published_at,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	TouchedAt      time.Time     `json:"touched_at"`
	GeneratedScore float64       `json:"generated_score"`
	ManualScore    *int          `json:"manual_score"`
	ScoreUpdatedAt time.Time     `json:"score_updated_at"`
	CreatedExact   time.Time     `json:"created_exact,omitzero"` // full precision, for latency measurements
	Attributes     []*attrRec    `json:"attributes"`
	Sources        []*srcRec     `json:"sources"`
	Tags           []*tagRec     `json:"tags"`
	Comments       []*commentRec `json:"comments"`
}

type attrRec struct {
	ID          int       `json:"id"`
	AttributeID int       `json:"attribute_id"`
	Name        string    `json:"name"`
	Value       string    `json:"value"`
	PublishedAt string    `json:"published_at,omitempty"`
	Sources     []*srcRec `json:"sources"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type srcRec struct {
	PivotID     int       `json:"pivot_id"`
	SourceID    int       `json:"source_id"`
	Name        string    `json:"name"`
	TLPID       int       `json:"tlp_id,omitempty"`
	PublishedAt string    `json:"published_at,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

type tagRec struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

type commentRec struct {
	ID        int       `json:"id"`
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at"`
}

type indKey struct {
	typeID int
	value  string
}

// state is everything the emulator stores; it is what a snapshot holds.
type state struct {
	Types      []TypeDef      `json:"types"`
	Statuses   []StatusDef    `json:"statuses"`
	Indicators []*record      `json:"indicators"`
	NextID     map[string]int `json:"next_id"`
	AttrIDs    map[string]int `json:"attribute_ids"`
	SourceIDs  map[string]int `json:"source_ids"`
	TagIDs     map[string]int `json:"tag_ids"`

	byID  map[int]*record
	byKey map[indKey]*record
}

// newState builds an empty store whose type and status ids are a random
// permutation drawn from rng, so clients cannot hard-code them ([V] ids
// differ per instance).
func newState(rng *rand.Rand, now time.Time) *state {
	ts := now.UTC().Format(TimeLayout)
	st := &state{
		NextID:    map[string]int{},
		AttrIDs:   map[string]int{},
		SourceIDs: map[string]int{},
		TagIDs:    map[string]int{},
	}
	typeIDs := rng.Perm(200)
	for i, d := range defaultTypes {
		st.Types = append(st.Types, TypeDef{
			ID: typeIDs[i] + 1, Name: d.name, Class: d.class, WildcardMatching: "Y",
			CreatedAt: ts, UpdatedAt: ts,
		})
	}
	statusIDs := rng.Perm(60)
	for i, d := range defaultStatuses {
		d.ID = statusIDs[i] + 1
		d.UserEditable, d.Visible, d.Protected = "N", "Y", "Y"
		d.CreatedAt, d.UpdatedAt = ts, ts
		st.Statuses = append(st.Statuses, d)
	}
	// Indicator and sub-object ids start at random offsets too.
	for _, k := range []string{"indicator", "attribute", "pivot", "tag", "comment", "attribute_id", "source_id"} {
		st.NextID[k] = 1 + rng.IntN(5000)
	}
	st.reindex()
	return st
}

func (st *state) reindex() {
	st.byID = make(map[int]*record, len(st.Indicators))
	st.byKey = make(map[indKey]*record, len(st.Indicators))
	for _, r := range st.Indicators {
		st.byID[r.ID] = r
		st.byKey[indKey{r.TypeID, r.Value}] = r
	}
}

func (st *state) next(kind string) int {
	id := st.NextID[kind]
	st.NextID[kind] = id + 1
	return id
}

func (st *state) typeByID(id int) (TypeDef, bool) {
	for _, t := range st.Types {
		if t.ID == id {
			return t, true
		}
	}
	return TypeDef{}, false
}

// typeByName matches case-insensitively [I].
func (st *state) typeByName(name string) (TypeDef, bool) {
	for _, t := range st.Types {
		if strings.EqualFold(t.Name, strings.TrimSpace(name)) {
			return t, true
		}
	}
	return TypeDef{}, false
}

func (st *state) statusByID(id int) (StatusDef, bool) {
	for _, s := range st.Statuses {
		if s.ID == id {
			return s, true
		}
	}
	return StatusDef{}, false
}

func (st *state) statusByName(name string) (StatusDef, bool) {
	for _, s := range st.Statuses {
		if strings.EqualFold(s.Name, strings.TrimSpace(name)) {
			return s, true
		}
	}
	return StatusDef{}, false
}

// named returns the id registered for name in reg, allocating one on first use.
func (st *state) named(reg map[string]int, kind, name string) int {
	key := strings.ToLower(name)
	if id, ok := reg[key]; ok {
		return id
	}
	id := st.next(kind)
	reg[key] = id
	return id
}

func (st *state) insert(r *record) {
	st.Indicators = append(st.Indicators, r)
	st.byID[r.ID] = r
	st.byKey[indKey{r.TypeID, r.Value}] = r
}

func (st *state) remove(r *record) {
	delete(st.byID, r.ID)
	delete(st.byKey, indKey{r.TypeID, r.Value})
	for i, x := range st.Indicators {
		if x == r {
			st.Indicators = append(st.Indicators[:i], st.Indicators[i+1:]...)
			break
		}
	}
}
