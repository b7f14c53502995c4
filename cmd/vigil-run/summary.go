package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
)

// Summary is what a run found; it is printed and written to run/summary.json.
type Summary struct {
	OK              bool             `json:"ok"`
	Mode            string           `json:"mode"`
	DurationSeconds float64          `json:"duration_seconds"`
	RecordsReplayed int64            `json:"records_replayed"`
	ReplayByTopic   map[string]int64 `json:"replay_by_topic"`
	Ingest          IngestAccounting `json:"ingest"`

	Observations     int64          `json:"observations"`
	Indicators       int            `json:"indicators"`
	IndicatorsByType map[string]int `json:"indicators_by_type"`

	Enrichments        int64                     `json:"enrichments"`
	EnrichedIndicators int                       `json:"enriched_indicators"`
	Malicious          int                       `json:"malicious_indicators"`
	ProviderStatus     map[string]map[string]int `json:"provider_status"`

	Verdicts          int64          `json:"verdicts"`
	VerdictIndicators int            `json:"verdict_indicators"`
	VerdictsByAction  map[string]int `json:"verdicts_by_action"`
	Top               []TopIndicator `json:"top_indicators"`

	DeadLetters      int64       `json:"dead_letters"`
	DeadLetterCounts []DLQCount  `json:"dead_letters_by_stage_reason"`
	ThreatQ          ThreatQInfo `json:"threatq"`
	Stages           []StageLag  `json:"stages"`
	Checks           []Check     `json:"checks"`
	Where            Where       `json:"where"`
}

// IngestAccounting is ingest's own count of what happened to each raw record (/metrics).
type IngestAccounting struct {
	Available    bool             `json:"available"`
	In           int64            `json:"in"`
	Consumed     int64            `json:"consumed"` // stage runtime's vigil_records_in{stage="ingest"}
	Observations int64            `json:"with_observations"`
	None         map[string]int64 `json:"none_by_reason"`
	DeadLettered map[string]int64 `json:"dead_lettered_by_reason"`
}

// TopIndicator is one of the highest-priority verdicts.
type TopIndicator struct {
	Key       string   `json:"key"`
	Priority  int32    `json:"priority"`
	Level     string   `json:"level"`
	Action    string   `json:"action"`
	Sightings int64    `json:"sightings"`
	Reasons   []string `json:"reasons"`
}

// DLQCount counts dead letters of one stage and error class.
type DLQCount struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// ThreatQInfo is what reached ThreatQ.
type ThreatQInfo struct {
	URL        string         `json:"url"`
	Checked    bool           `json:"checked"` // false with a real ThreatQ: no dump to compare with
	Indicators int            `json:"indicators"`
	ByStatus   map[string]int `json:"by_status"`
	Created    int            `json:"created"`
	Updated    int            `json:"updated"`
	Writes     int            `json:"writes"`
	Missing    []string       `json:"missing,omitempty"` // verdict keys not found in ThreatQ
}

// StageLag is a stage's final position.
type StageLag struct {
	Stage    string `json:"stage"`
	Group    string `json:"group"`
	Consumed int64  `json:"consumed"`
	Lag      int64  `json:"lag"`
}

// Check is one accounting rule; the run passes only if all hold.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Where lists where to look next.
type Where struct {
	ThreatQPage string            `json:"threatq_page,omitempty"`
	Metrics     map[string]string `json:"metrics"`
	Logs        string            `json:"logs"`
	Summary     string            `json:"summary"`
	Dump        string            `json:"threatq_dump,omitempty"`
}

// collector folds the records of the pipeline topics into a Summary.
type collector struct {
	serde    *events.Serde
	n        names
	obsKeys  map[string]string // key -> type
	enrKeys  map[string]bool
	malKeys  map[string]bool
	verdicts map[string]events.Verdict // latest per key
	dlq      map[[2]string]int64
	errs     int
	s        *Summary
}

func newCollector(serde *events.Serde, n names, s *Summary) *collector {
	s.IndicatorsByType = map[string]int{}
	s.ProviderStatus = map[string]map[string]int{}
	s.VerdictsByAction = map[string]int{}
	return &collector{serde: serde, n: n, obsKeys: map[string]string{}, enrKeys: map[string]bool{}, malKeys: map[string]bool{},
		verdicts: map[string]events.Verdict{}, dlq: map[[2]string]int64{}, s: s}
}

// add decodes one record. Records of one key arrive in offset order (one partition).
func (c *collector) add(ctx context.Context, r *kgo.Record) {
	switch r.Topic {
	case c.n.Observed:
		o, err := c.serde.DecodeObservation(ctx, r.Value)
		if err != nil {
			c.errs++
			return
		}
		c.s.Observations++
		c.obsKeys[o.Indicator.Key()] = o.Indicator.Type
	case c.n.Enriched:
		e, err := c.serde.DecodeEnrichment(ctx, r.Value)
		if err != nil {
			c.errs++
			return
		}
		c.s.Enrichments++
		k := e.Observation.Indicator.Key()
		c.enrKeys[k] = true
		if e.Exposure.Malicious {
			c.malKeys[k] = true
		}
		for _, pr := range e.Results {
			if c.s.ProviderStatus[pr.Provider] == nil {
				c.s.ProviderStatus[pr.Provider] = map[string]int{}
			}
			c.s.ProviderStatus[pr.Provider][pr.Status]++
		}
	case c.n.Verdicts:
		v, err := c.serde.DecodeVerdict(ctx, r.Value)
		if err != nil {
			c.errs++
			return
		}
		c.s.Verdicts++
		c.verdicts[v.Indicator.Key()] = v
	case c.n.DLQ:
		d, err := c.serde.DecodeDeadLetter(ctx, r.Value)
		if err != nil {
			c.errs++
			return
		}
		c.s.DeadLetters++
		c.dlq[[2]string{d.Stage, d.ErrorClass}]++
	}
}

// finish computes the distinct counts and the top list.
func (c *collector) finish(top int) {
	c.s.Indicators = len(c.obsKeys)
	for _, t := range c.obsKeys {
		c.s.IndicatorsByType[t]++
	}
	c.s.EnrichedIndicators = len(c.enrKeys)
	c.s.Malicious = len(c.malKeys)
	c.s.VerdictIndicators = len(c.verdicts)
	vs := make([]events.Verdict, 0, len(c.verdicts))
	for _, v := range c.verdicts {
		c.s.VerdictsByAction[v.Action]++
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b events.Verdict) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(b.Sightings.Count, a.Sightings.Count),
			strings.Compare(a.Indicator.Key(), b.Indicator.Key()))
	})
	for _, v := range vs[:min(top, len(vs))] {
		t := TopIndicator{Key: v.Indicator.Key(), Priority: v.Priority, Level: v.Level, Action: v.Action, Sightings: v.Sightings.Count}
		for _, r := range v.Reasons {
			t.Reasons = append(t.Reasons, cmp.Or(r.Text, r.Code))
		}
		c.s.Top = append(c.s.Top, t)
	}
	for k, n := range c.dlq {
		c.s.DeadLetterCounts = append(c.s.DeadLetterCounts, DLQCount{Stage: k[0], Reason: k[1], Count: n})
	}
	slices.SortFunc(c.s.DeadLetterCounts, func(a, b DLQCount) int {
		return cmp.Or(strings.Compare(a.Stage, b.Stage), cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
}

// verdictValues returns the indicator value of every verdict key, for the ThreatQ comparison.
func (c *collector) verdictValues() map[string]string {
	out := make(map[string]string, len(c.verdicts))
	for k, v := range c.verdicts {
		out[k] = v.Indicator.Value
	}
	return out
}

// dlqByStage returns the dead letters of one stage.
func (s *Summary) dlqByStage(stage string) int64 {
	var n int64
	for _, d := range s.DeadLetterCounts {
		if d.Stage == stage {
			n += d.Count
		}
	}
	return n
}

// evaluate runs the accounting checks and sets OK.
func (s *Summary) evaluate(verdictValues map[string]string, tqValues map[string]bool) {
	add := func(name string, ok bool, format string, args ...any) {
		s.Checks = append(s.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	var replayTotal int64
	for _, n := range s.ReplayByTopic {
		replayTotal += n
	}
	add("replay acknowledged", replayTotal == s.RecordsReplayed && replayTotal > 0,
		"%d of %d records acknowledged by Kafka", s.RecordsReplayed, replayTotal)
	ia := s.Ingest
	if !ia.Available {
		add("ingest accounting", false, "ingest /metrics not readable: vigil_ingest_records_total missing")
	} else {
		var none, dead int64
		for _, v := range ia.None {
			none += v
		}
		for _, v := range ia.DeadLettered {
			dead += v
		}
		add("ingest saw every record", ia.In == s.RecordsReplayed,
			"ingest accounted %d records, %d replayed", ia.In, s.RecordsReplayed)
		add("ingest accounting balances", ia.In == ia.Observations+none+dead && ia.Consumed == ia.In,
			"in %d (consumed %d) = %d with observations + %d none + %d dead-lettered", ia.In, ia.Consumed, ia.Observations, none, dead)
		add("ingest dead letters on the DLQ", s.dlqByStage("ingest") == dead,
			"%d on %s from ingest, %d counted by ingest", s.dlqByStage("ingest"), "the DLQ topic", dead)
	}
	var lagging []string
	for _, st := range s.Stages {
		if st.Lag != 0 {
			lagging = append(lagging, fmt.Sprintf("%s lag %d", st.Stage, st.Lag))
		}
	}
	add("every stage drained", len(lagging) == 0, "%s", cmp.Or(strings.Join(lagging, ", "), "lag 0 on every input topic"))
	if !s.ThreatQ.Checked {
		add("every verdict reached ThreatQ", true, "not checked: no emulator dump with a real ThreatQ")
	} else {
		s.ThreatQ.Missing = nil
		for k, v := range verdictValues {
			if !tqValues[v] {
				s.ThreatQ.Missing = append(s.ThreatQ.Missing, k)
			}
		}
		sort.Strings(s.ThreatQ.Missing)
		detail := fmt.Sprintf("%d verdict indicators, %d in ThreatQ", len(verdictValues), s.ThreatQ.Indicators)
		if n := len(s.ThreatQ.Missing); n > 0 {
			detail += fmt.Sprintf("; missing %d: %s", n, strings.Join(s.ThreatQ.Missing[:min(5, n)], ", "))
		}
		add("every verdict reached ThreatQ", len(s.ThreatQ.Missing) == 0, "%s", detail)
	}
	s.OK = true
	for _, c := range s.Checks {
		s.OK = s.OK && c.OK
	}
}

// render writes the summary for a person.
func (s *Summary) render(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\nVigil run summary (%s, %.1fs)\n", s.Mode, s.DurationSeconds)
	p("  records in          %d replayed onto %d raw topics\n", s.RecordsReplayed, len(s.ReplayByTopic))
	if s.Ingest.Available {
		var none, dead int64
		for _, v := range s.Ingest.None {
			none += v
		}
		for _, v := range s.Ingest.DeadLettered {
			dead += v
		}
		p("    ingest            %d with indicators, %d without (%s), %d dead-lettered\n",
			s.Ingest.Observations, none, kv(s.Ingest.None), dead)
	}
	p("  indicators found    %d distinct (%s) from %d observations\n", s.Indicators, kvInt(s.IndicatorsByType), s.Observations)
	p("  enriched            %d indicators (%d enrichments), %d malicious by provider data\n", s.EnrichedIndicators, s.Enrichments, s.Malicious)
	for _, prov := range sortedKeys(s.ProviderStatus) {
		p("    %-17s %s\n", prov, kvInt(s.ProviderStatus[prov]))
	}
	p("  verdicts            %d indicators (%d verdicts): %s\n", s.VerdictIndicators, s.Verdicts, actions(s.VerdictsByAction))
	if len(s.Top) > 0 {
		p("\n  Top %d indicators\n", len(s.Top))
		p("    %-44s %4s  %-9s %-8s %s\n", "indicator", "prio", "action", "seen", "reasons")
		for _, t := range s.Top {
			p("    %-44s %4d  %-9s %-8d %s\n", trunc(t.Key, 44), t.Priority, t.Action, t.Sightings, trunc(strings.Join(t.Reasons, "; "), 90))
		}
	}
	p("\n  dead letters        %d\n", s.DeadLetters)
	for _, d := range s.DeadLetterCounts {
		p("    %-10s %-24s %d\n", d.Stage, d.Reason, d.Count)
	}
	if s.ThreatQ.Checked {
		p("  ThreatQ             %d indicators (%s); %d created, %d updated, %d writes\n",
			s.ThreatQ.Indicators, kvInt(s.ThreatQ.ByStatus), s.ThreatQ.Created, s.ThreatQ.Updated, s.ThreatQ.Writes)
	} else {
		p("  ThreatQ             %s (real instance: see sink's /metrics)\n", s.ThreatQ.URL)
	}
	p("\n  Checks\n")
	for _, c := range s.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		p("    [%s] %-32s %s\n", mark, c.Name, c.Detail)
	}
	p("\n  Where to look\n")
	if s.Where.ThreatQPage != "" {
		p("    ThreatQ emulator    %s\n", s.Where.ThreatQPage)
	}
	for _, st := range stages {
		if u, ok := s.Where.Metrics[st.Name]; ok {
			p("    %-19s %s\n", st.Name+" metrics", u)
		}
	}
	p("    logs                %s\n", s.Where.Logs)
	p("    summary             %s\n", s.Where.Summary)
	if s.Where.Dump != "" {
		p("    ThreatQ dump        %s\n", s.Where.Dump)
	}
	if s.OK {
		p("\nRESULT: OK, nothing lost\n")
	} else {
		p("\nRESULT: FAILED, see the checks above\n")
	}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func kv(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", cmp.Or(k, "-"), m[k]))
	}
	return cmp.Or(strings.Join(parts, ", "), "none")
}

func kvInt(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", cmp.Or(k, "-"), m[k]))
	}
	return cmp.Or(strings.Join(parts, ", "), "none")
}

// actions lists verdict actions from the most to the least severe.
func actions(m map[string]int) string {
	order := []string{events.VerdictBlock, events.VerdictAlert, events.VerdictReview, events.VerdictAnnotate, events.VerdictSuppress}
	var parts []string
	seen := map[string]bool{}
	for _, a := range order {
		seen[a] = true
		if m[a] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", a, m[a]))
		}
	}
	for _, a := range sortedKeys(m) {
		if !seen[a] {
			parts = append(parts, fmt.Sprintf("%s %d", a, m[a]))
		}
	}
	return cmp.Or(strings.Join(parts, ", "), "none")
}
