package tqemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Errors returned by the Go API.
var (
	// ErrNotFound means no stored indicator has the given value.
	ErrNotFound = errors.New("tqemu: indicator not found")
	// ErrAmbiguous means several indicators (of different types) have the value.
	ErrAmbiguous = errors.New("tqemu: value matches several indicators")
	// ErrUnknownStatus means the status name is not one the emulator serves.
	ErrUnknownStatus = errors.New("tqemu: unknown status")
	// ErrBadScore means a manual score outside 0–10.
	ErrBadScore = errors.New("tqemu: score must be within 0-10")
)

// Indicators returns every stored indicator, ordered by id.
func (s *Server) Indicators() []Indicator {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Indicator, 0, len(s.st.Indicators))
	for _, r := range s.st.Indicators {
		out = append(out, s.view(r))
	}
	slices.SortFunc(out, func(a, b Indicator) int { return a.ID - b.ID })
	return out
}

// Lookup returns the indicator of the given type name and value.
func (s *Server) Lookup(typeName, value string) (Indicator, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.st.typeByName(typeName)
	if !ok {
		return Indicator{}, false
	}
	r, ok := s.st.byKey[indKey{t.ID, value}]
	if !ok {
		return Indicator{}, false
	}
	return s.view(r), true
}

// TypeID returns the instance-specific id of an indicator type name.
func (s *Server) TypeID(name string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.st.typeByName(name)
	return t.ID, ok
}

// StatusID returns the instance-specific id of a status name.
func (s *Server) StatusID(name string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.st.statusByName(name)
	return st.ID, ok
}

// byValue finds the one indicator with value. Callers hold s.mu.
func (s *Server) byValue(value string) (*record, error) {
	var found *record
	for _, r := range s.st.Indicators {
		if r.Value == value {
			if found != nil {
				return nil, fmt.Errorf("%q: %w", value, ErrAmbiguous)
			}
			found = r
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%q: %w", value, ErrNotFound)
	}
	return found, nil
}

// AnalystSetStatus changes an indicator's status the way an analyst would in
// the UI (same effect as PUT /api/indicators/{id}): updated_at moves.
func (s *Server) AnalystSetStatus(value, status string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.st.statusByName(status)
	if !ok {
		return fmt.Errorf("%q: %w", status, ErrUnknownStatus)
	}
	r, err := s.byValue(value)
	if err != nil {
		return err
	}
	if r.StatusID != st.ID {
		r.StatusID = st.ID
		s.touch(r, now)
	}
	return nil
}

// AnalystSetScore sets (or with nil clears) an indicator's manual score, as
// PUT /api/indicator/{id}/scores does.
func (s *Server) AnalystSetScore(value string, score *int) error {
	if score != nil && (*score < 0 || *score > 10) {
		return ErrBadScore
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.byValue(value)
	if err != nil {
		return err
	}
	if !sameScore(r.ManualScore, score) {
		if score != nil {
			v := *score
			score = &v
		}
		r.ManualScore = score
		r.ScoreUpdatedAt = now
		s.touch(r, now)
	}
	return nil
}

// Reset drops every indicator, token and fault, zeroes the stats and draws
// new type/status ids from the seeded generator.
func (s *Server) Reset() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = newState(s.rng, now)
	s.tokens = map[string]time.Time{}
	s.refresh = map[string]time.Time{}
	s.faults = Faults{}
	s.stats = Stats{}
	s.countMu.Lock()
	s.calls, s.responses = map[string]int{}, map[int]int{}
	s.countMu.Unlock()
}

// --- snapshot ---

type snapshotFile struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	State   *state    `json:"state"`
}

// SaveSnapshot writes all indicators, types and statuses to path
// atomically (temp file + rename). Tokens are not saved.
func (s *Server) SaveSnapshot(path string) error {
	s.mu.Lock()
	b, err := json.Marshal(snapshotFile{Version: 1, SavedAt: s.now(), State: s.st})
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tqemu-snapshot-*")
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// LoadSnapshot replaces the state with the one saved at path, including
// its type and status ids.
func (s *Server) LoadSnapshot(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("load snapshot %s: %w", path, err)
	}
	if f.Version != 1 || f.State == nil || len(f.State.Types) == 0 || len(f.State.Statuses) == 0 {
		return fmt.Errorf("load snapshot %s: unsupported or empty file", path)
	}
	st := f.State
	for _, m := range []*map[string]int{&st.NextID, &st.AttrIDs, &st.SourceIDs, &st.TagIDs} {
		if *m == nil {
			*m = map[string]int{}
		}
	}
	st.reindex()
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// --- /_emulator routes ---

func (s *Server) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, toFaultsJSON(s.CurrentFaults()))
}

func toFaultsJSON(f Faults) faultsJSON {
	return faultsJSON{Faults: f, DelayMS: f.Delay.Milliseconds(), RetryAfterS: int64(f.RetryAfter / time.Second)}
}

// handleSetFaults replaces the fault configuration with the posted one
// ({} clears everything); "expire_tokens": true also runs ExpireTokens.
func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var in faultsJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeValidation(w, ValidationErrors{"body": {err.Error()}})
		return
	}
	f := in.Faults
	f.Delay = time.Duration(in.DelayMS) * time.Millisecond
	f.RetryAfter = time.Duration(in.RetryAfterS) * time.Second
	errs := ValidationErrors{}
	if f.DownMode != "" && f.DownMode != DownModeUnavailable && f.DownMode != DownModeClose {
		errs.add("down_mode", `down_mode must be "503" or "close".`)
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 || f.RateLimitRate < 0 || f.RateLimitRate > 1 {
		errs.add("rate", "error_rate and rate_limit_rate must be within 0-1.")
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 500 || f.ErrorStatus > 599) {
		errs.add("error_status", "error_status must be a 5xx code.")
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	s.SetFault(f)
	if in.ExpireTokens {
		s.ExpireTokens()
	}
	writeJSON(w, http.StatusOK, toFaultsJSON(f))
}

func (s *Server) handleClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// Dump is the body of GET /_emulator/dump.
type Dump struct {
	Types      []TypeDef   `json:"types"`
	Statuses   []StatusDef `json:"statuses"`
	Indicators []Indicator `json:"indicators"`
}

func (s *Server) handleDump(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	d := Dump{Types: slices.Clone(s.st.Types), Statuses: slices.Clone(s.st.Statuses)}
	s.mu.Unlock()
	d.Indicators = s.Indicators()
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// --- human page ---

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"attrs": func(as []Attribute) string {
		parts := make([]string, 0, len(as))
		for _, a := range as {
			parts = append(parts, a.Name+"="+a.Value)
		}
		return strings.Join(parts, "; ")
	},
	"join": func(xs []string) string { return strings.Join(xs, ", ") },
	"ts":   func(t time.Time) string { return fmtTime(t) },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>ThreatQ emulator</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}th{background:#eee}
.Whitelisted{background:#e6ffe6}.Active{background:#ffe6e6}.Review{background:#fff8e0}</style></head>
<body><h1>ThreatQ emulator</h1>
<p>{{.Total}} indicators{{if gt .Total (len .Rows)}} (showing the {{len .Rows}} most recently updated){{end}}. Refreshes every 3 s.</p>
<table><tr><th>id</th><th>value</th><th>type</th><th>status</th><th>score</th><th>gen</th><th>manual</th>
<th>attributes</th><th>sources</th><th>tags</th><th>updated_at</th></tr>
{{range .Rows}}<tr class="{{.Status}}"><td>{{.ID}}</td><td>{{.Value}}</td><td>{{.Type}}</td><td>{{.Status}}</td>
<td>{{.Score}}</td><td>{{printf "%.2f" .GeneratedScore}}</td><td>{{if .ManualScore}}{{.ManualScore}}{{end}}</td>
<td>{{attrs .Attributes}}</td><td>{{range .Sources}}{{.Name}} {{end}}</td><td>{{join .Tags}}</td><td>{{ts .UpdatedAt}}</td></tr>
{{end}}</table></body></html>`))

const pageRows = 500

func (s *Server) handlePage(w http.ResponseWriter, _ *http.Request) {
	all := s.Indicators()
	slices.SortStableFunc(all, func(a, b Indicator) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	rows := all
	if len(rows) > pageRows {
		rows = rows[:pageRows]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, struct {
		Total int
		Rows  []Indicator
	}{len(all), rows})
}
