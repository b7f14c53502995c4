// Package policy is correlate's governance policy: a versioned YAML document
// with a scoring model, priority thresholds, safeguards, warninglist
// treatment, decay and re-emit rules. A loaded [Policy] is immutable and
// safe for concurrent use.
//
// # Score merging rule
//
// The priority is the sum of weighted evidence, clamped and rounded:
//
//	priority = round(clamp(base + Σ exposure evidence + Σ telemetry evidence, 0, 10))
//
// Every contributing fact adds its configured weight once (weights may be
// negative, e.g. a GreyNoise "benign" classification). Nothing is
// last-writer-wins: two providers that both report a fact cannot add it twice
// because the enrichment carries one merged exposure view. Exposure evidence
// is what providers said (Criminal IP scores, flags, CVEs, AbuseIPDB,
// GreyNoise); telemetry evidence is what the organisation saw (sightings,
// distinct assets, asset criticality, IDS severity, blocked share).
// PriorityWithoutExposure uses the telemetry alone; ExposureChanged is true
// when the two priorities differ.
//
// After scoring, in this order: decay (halved every decay.half_life since
// Vigil last received a sighting of the indicator, Input.LastObserved),
// warninglist treatment (suppress, cap or evidence per list), the level and
// action from the thresholds, the annotate-only safeguard (a verdict whose
// alert or block depends on annotate-only evidence is lowered to the top of
// the annotate band) and the review safeguard (a block on an indicator tied
// to a crown-jewel asset or matching a partner list becomes review).
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/pkg/events"
)

//go:embed policy.default.yaml
var defaultYAML []byte

// DefaultYAML returns the shipped default policy document.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default parses the shipped default policy.
func Default() (*Policy, error) { return Parse("policy.default.yaml", defaultYAML) }

// ErrInvalidPolicy is wrapped by every validation error.
var ErrInvalidPolicy = errors.New("invalid policy")

// ValidationError names the file, line and field of a policy problem.
type ValidationError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalidPolicy) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidPolicy }

// Warninglist modes.
const (
	ModeSuppress = "suppress" // action suppress, priority capped at max_priority (default 0)
	ModeCap      = "cap"      // priority capped at max_priority
	ModeEvidence = "evidence" // recorded as a reason only
	ModeIgnore   = "ignore"   // not even recorded
)

// StepWeight adds Weight per Step units of a count, up to Max.
type StepWeight struct {
	Step   int64   `yaml:"step"`
	Weight float64 `yaml:"weight"`
	Max    float64 `yaml:"max"`
}

func (s StepWeight) apply(n int64) float64 {
	if s.Step <= 0 || n < s.Step {
		return 0
	}
	w := s.Weight * float64(n/s.Step)
	if s.Max != 0 && w > s.Max {
		w = s.Max
	}
	return w
}

// ScoreWeights weigh a Criminal IP score (2 low … 5 critical).
type ScoreWeights struct {
	Low       float64 `yaml:"low"`
	Moderate  float64 `yaml:"moderate"`
	Dangerous float64 `yaml:"dangerous"`
	Critical  float64 `yaml:"critical"`
}

func (w ScoreWeights) weight(score int32) float64 {
	switch score {
	case 2:
		return w.Low
	case 3:
		return w.Moderate
	case 4:
		return w.Dangerous
	case 5:
		return w.Critical
	}
	return 0
}

// Threshold adds Weight when a value reaches Min.
type Threshold struct {
	Min    float64 `yaml:"min"`
	Weight float64 `yaml:"weight"`
}

// Evidence weighs the providers' merged exposure view.
type Evidence struct {
	CriminalIPInbound  ScoreWeights       `yaml:"criminalip_inbound"`
	CriminalIPOutbound ScoreWeights       `yaml:"criminalip_outbound"`
	Malicious          float64            `yaml:"malicious"`
	VPN                float64            `yaml:"vpn"`
	Proxy              float64            `yaml:"proxy"`
	Tor                float64            `yaml:"tor"`
	Hosting            float64            `yaml:"hosting"`
	Cloud              float64            `yaml:"cloud"`
	Scanner            float64            `yaml:"scanner"`
	Darkweb            float64            `yaml:"darkweb"`
	OpenPorts          float64            `yaml:"open_ports"`
	CriticalCVE        float64            `yaml:"critical_cve"`
	CVSSThreshold      float64            `yaml:"cvss_threshold"`
	AbuseIPDB          Threshold          `yaml:"abuseipdb"`
	GreyNoise          map[string]float64 `yaml:"greynoise"`
}

// Telemetry weighs internal sightings.
type Telemetry struct {
	Sightings24h     StepWeight         `yaml:"sightings_24h"`
	DistinctAssets   StepWeight         `yaml:"distinct_assets"`
	AssetCriticality map[string]float64 `yaml:"asset_criticality"`
	IDSSeverity      map[int32]float64  `yaml:"ids_severity"` // by max severity 1..4
	AllBlocked       float64            `yaml:"all_blocked"`  // when every sighting was blocked
}

// Scoring is the scoring model.
type Scoring struct {
	Base      float64   `yaml:"base"`
	Evidence  Evidence  `yaml:"evidence"`
	Telemetry Telemetry `yaml:"telemetry"`
}

// Level maps priorities >= Min to a level name and an action.
type Level struct {
	Min    int32  `yaml:"min"`
	Name   string `yaml:"name"`
	Action string `yaml:"action"`
}

// Safeguards are the rules no score can override.
type Safeguards struct {
	// ReviewCriticalAssets turns block into review for indicators tied to
	// these asset criticalities (default [crown_jewel]).
	ReviewCriticalities []string `yaml:"review_criticalities"`
	// PartnerLists turns block into review for indicators on these lists.
	PartnerLists []string `yaml:"partner_lists"`
	// AnnotateOnly evidence codes can never raise an alert or block.
	AnnotateOnly []string `yaml:"annotate_only"`
}

// ListRule is the treatment of one warninglist or local list.
type ListRule struct {
	Mode        string `yaml:"mode"`
	MaxPriority int32  `yaml:"max_priority"`
}

// Warninglists holds the per-list treatment and the default for others.
type Warninglists struct {
	Default ListRule            `yaml:"default"`
	Lists   map[string]ListRule `yaml:"lists"`
}

// Decay lowers the priority of indicators without new sightings: the score
// is multiplied by 0.5^(age/HalfLife), where age runs from the last time
// Vigil received a sighting (its ingest time), not from the event time in
// the raw log, so replayed or late-shipped logs are fresh sightings. ValidFor
// sets the verdict's ValidUntil.
type Decay struct {
	HalfLife time.Duration `yaml:"half_life"`
	ValidFor time.Duration `yaml:"valid_for"`
}

// Emit decides when a verdict is published again.
type Emit struct {
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// SightingsGrowth publishes a verdict again, although its level and
	// action did not change, when the sighting count or the number of
	// distinct assets reached this multiple of the value last published
	// (2: every doubling, so a busy indicator is re-published a logarithmic
	// number of times and ThreatQ's sighting attributes stay close). 0
	// disables; otherwise it must be greater than 1.
	SightingsGrowth float64 `yaml:"sightings_growth"`
	// SetScoreMinPriority asks ThreatQ for a manual score at or above this
	// priority; 0 disables.
	SetScoreMinPriority int32 `yaml:"set_score_min_priority"`
}

// FeedbackRules turn analyst decisions into allow-list entries.
type FeedbackRules struct {
	AllowStatuses []string      `yaml:"allow_statuses"`
	AllowList     string        `yaml:"allow_list"`
	AllowTTL      time.Duration `yaml:"allow_ttl"`
}

// Policy is a validated governance policy.
type Policy struct {
	Version      string        `yaml:"version"`
	Scoring      Scoring       `yaml:"scoring"`
	Levels       []Level       `yaml:"levels"`
	Safeguards   Safeguards    `yaml:"safeguards"`
	Warninglists Warninglists  `yaml:"warninglists"`
	Decay        Decay         `yaml:"decay"`
	Emit         Emit          `yaml:"emit"`
	Feedback     FeedbackRules `yaml:"feedback"`

	source       string
	annotateOnly map[string]bool
}

// Source returns the file the policy was loaded from.
func (p *Policy) Source() string { return p.source }

// Load reads and validates a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a policy document; file names it in errors.
func Parse(file string, data []byte) (*Policy, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ValidationError{File: file, Line: yamlErrLine(err), Field: "(document)", Msg: err.Error()}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ValidationError{File: file, Line: yamlErrLine(err), Field: "(document)", Msg: err.Error()}
	}
	p.source = file
	if err := p.validate(file, &root); err != nil {
		return nil, err
	}
	return &p, nil
}

func yamlErrLine(err error) int {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	var line int
	if i := strings.Index(msg, "line "); i >= 0 {
		_, _ = fmt.Sscanf(msg[i:], "line %d", &line)
	}
	return line
}

// nodeLine finds the line of a dotted path ("levels.1.action") in the
// document, falling back to the deepest existing parent.
func nodeLine(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for part := range strings.SplitSeq(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		case yaml.SequenceNode:
			var idx int
			if _, err := fmt.Sscanf(part, "%d", &idx); err == nil && idx >= 0 && idx < len(n.Content) {
				next = n.Content[idx]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

var validActions = []string{events.VerdictBlock, events.VerdictAlert, events.VerdictAnnotate, events.VerdictReview, events.VerdictSuppress}

// evidence codes that may be listed as annotate-only.
var knownCodes = []string{
	CodeCIPInbound, CodeCIPOutbound, CodeMalicious, CodeVPN, CodeProxy, CodeTor, CodeHosting, CodeCloud,
	CodeScanner, CodeDarkweb, CodeOpenPorts, CodeCriticalCVE, CodeAbuseIPDB, CodeGreyNoise,
	CodeSightings, CodeAssets, CodeAssetCriticality, CodeIDSSeverity, CodeAllBlocked,
}

func (p *Policy) validate(file string, root *yaml.Node) error {
	fail := func(field, msg string, args ...any) error {
		return &ValidationError{File: file, Line: nodeLine(root, field), Field: field, Msg: fmt.Sprintf(msg, args...)}
	}
	if strings.TrimSpace(p.Version) == "" {
		return fail("version", "required")
	}
	if len(p.Levels) == 0 {
		return fail("levels", "at least one level required")
	}
	for i, l := range p.Levels {
		f := fmt.Sprintf("levels.%d", i)
		if l.Name == "" {
			return fail(f+".name", "required")
		}
		if !slices.Contains(validActions, l.Action) {
			return fail(f+".action", "%q is not one of %v", l.Action, validActions)
		}
		if l.Min < 0 || l.Min > 10 {
			return fail(f+".min", "%d outside 0..10", l.Min)
		}
		if i > 0 && l.Min >= p.Levels[i-1].Min {
			return fail(f+".min", "levels must be ordered by decreasing min (%d >= %d)", l.Min, p.Levels[i-1].Min)
		}
	}
	if last := p.Levels[len(p.Levels)-1]; last.Min != 0 {
		return fail(fmt.Sprintf("levels.%d.min", len(p.Levels)-1), "the last level must start at 0")
	}
	e := p.Scoring.Evidence
	if e.CVSSThreshold < 0 || e.CVSSThreshold > 10 {
		return fail("scoring.evidence.cvss_threshold", "%v outside 0..10", e.CVSSThreshold)
	}
	if e.AbuseIPDB.Min < 0 || e.AbuseIPDB.Min > 100 {
		return fail("scoring.evidence.abuseipdb.min", "%v outside 0..100", e.AbuseIPDB.Min)
	}
	for k := range e.GreyNoise {
		if k != "benign" && k != "malicious" && k != "unknown" {
			return fail("scoring.evidence.greynoise."+k, "classification must be benign, malicious or unknown")
		}
	}
	t := p.Scoring.Telemetry
	for name, s := range map[string]StepWeight{"sightings_24h": t.Sightings24h, "distinct_assets": t.DistinctAssets} {
		if s.Step < 0 || (s.Weight != 0 && s.Step == 0) {
			return fail("scoring.telemetry."+name+".step", "must be > 0 when a weight is set")
		}
	}
	for sev := range t.IDSSeverity {
		if sev < 1 || sev > 4 {
			return fail(fmt.Sprintf("scoring.telemetry.ids_severity.%d", sev), "severity must be 1..4")
		}
	}
	p.annotateOnly = map[string]bool{}
	for i, c := range p.Safeguards.AnnotateOnly {
		if !slices.Contains(knownCodes, c) {
			return fail(fmt.Sprintf("safeguards.annotate_only.%d", i), "unknown evidence code %q (known: %s)", c, strings.Join(knownCodes, ", "))
		}
		p.annotateOnly[c] = true
	}
	if len(p.Safeguards.ReviewCriticalities) == 0 {
		p.Safeguards.ReviewCriticalities = []string{"crown_jewel"}
	}
	checkRule := func(field string, r ListRule) error {
		switch r.Mode {
		case ModeSuppress, ModeCap, ModeEvidence, ModeIgnore:
		default:
			return fail(field+".mode", "%q is not one of suppress, cap, evidence, ignore", r.Mode)
		}
		if r.MaxPriority < 0 || r.MaxPriority > 10 {
			return fail(field+".max_priority", "%d outside 0..10", r.MaxPriority)
		}
		return nil
	}
	if p.Warninglists.Default.Mode == "" {
		p.Warninglists.Default = ListRule{Mode: ModeCap, MaxPriority: 3}
	}
	if err := checkRule("warninglists.default", p.Warninglists.Default); err != nil {
		return err
	}
	for name, r := range p.Warninglists.Lists {
		if err := checkRule("warninglists.lists."+name, r); err != nil {
			return err
		}
	}
	if p.Decay.HalfLife < 0 {
		return fail("decay.half_life", "must not be negative")
	}
	if p.Decay.ValidFor <= 0 {
		p.Decay.ValidFor = 7 * 24 * time.Hour
	}
	if p.Emit.RefreshInterval < 0 {
		return fail("emit.refresh_interval", "must not be negative")
	}
	if g := p.Emit.SightingsGrowth; g != 0 && g <= 1 {
		return fail("emit.sightings_growth", "%v must be 0 (off) or greater than 1", g)
	}
	if p.Emit.SetScoreMinPriority < 0 || p.Emit.SetScoreMinPriority > 10 {
		return fail("emit.set_score_min_priority", "%d outside 0..10", p.Emit.SetScoreMinPriority)
	}
	if p.Feedback.AllowList == "" {
		p.Feedback.AllowList = "analyst-feedback"
	}
	if len(p.Feedback.AllowStatuses) == 0 {
		p.Feedback.AllowStatuses = []string{"Whitelisted"}
	}
	if p.Feedback.AllowTTL < 0 {
		return fail("feedback.allow_ttl", "must not be negative")
	}
	if p.Feedback.AllowTTL == 0 {
		p.Feedback.AllowTTL = 90 * 24 * time.Hour
	}
	return nil
}
