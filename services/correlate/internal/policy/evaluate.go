package policy

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// Reason codes. Exposure codes start with criminalip., exposure., abuseipdb.
// or greynoise.; telemetry codes with sightings., asset. or ids.
const (
	CodeCIPInbound       = "criminalip.inbound"
	CodeCIPOutbound      = "criminalip.outbound"
	CodeMalicious        = "exposure.malicious"
	CodeVPN              = "exposure.vpn"
	CodeProxy            = "exposure.proxy"
	CodeTor              = "exposure.tor"
	CodeHosting          = "exposure.hosting"
	CodeCloud            = "exposure.cloud"
	CodeScanner          = "exposure.scanner"
	CodeDarkweb          = "exposure.darkweb"
	CodeOpenPorts        = "exposure.open_ports"
	CodeCriticalCVE      = "exposure.critical_cve"
	CodeAbuseIPDB        = "abuseipdb.confidence"
	CodeGreyNoise        = "greynoise.classification"
	CodeSightings        = "sightings.count_24h"
	CodeAssets           = "sightings.assets"
	CodeAssetCriticality = "asset.criticality"
	CodeIDSSeverity      = "ids.severity"
	CodeAllBlocked       = "sightings.all_blocked"
	CodeWarninglist      = "warninglist"
	CodePartner          = "safeguard.partner_list"
	CodeReview           = "safeguard.review_before_block"
	CodeAnnotateOnly     = "safeguard.annotate_only"
	CodeDecay            = "decay"
	// CodeAnalystAllow records an analyst allow decision in force (added by
	// the correlator; the decision itself matches as a list).
	CodeAnalystAllow = "analyst.allow"
)

var scoreNames = map[int32]string{1: "Safe", 2: "Low", 3: "Moderate", 4: "Dangerous", 5: "Critical"}

// Asset is the internal asset an indicator was seen with.
type Asset struct {
	Name        string
	Criticality string
	Owner       string
}

// Previous is the last published verdict of an indicator.
type Previous struct {
	Priority  int32
	Level     string
	Action    string
	EmittedAt time.Time
	// Sightings and DistinctAssets are the summary's Count and
	// DistinctAssets in that verdict (0 when unknown).
	Sightings      int64
	DistinctAssets int64
}

// Input is everything a verdict is computed from.
type Input struct {
	Enrichment *events.Enrichment
	Summary    events.SightingSummary
	Asset      *Asset             // nil when unknown
	Lists      []events.ListMatch // allow-list and warninglist matches
	Previous   *Previous          // nil when none
	// LastObserved is when Vigil last received a sighting of the indicator
	// (the latest ingest time): decay runs from it. Zero means the sighting
	// being evaluated was just received (no decay). Summary.LastSeen, the
	// latest event time, is reported but never decays the priority.
	LastObserved time.Time
	Now          time.Time
}

func isExposure(code string) bool {
	return strings.HasPrefix(code, "criminalip.") || strings.HasPrefix(code, "exposure.") ||
		strings.HasPrefix(code, "abuseipdb.") || strings.HasPrefix(code, "greynoise.")
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// evidence returns the weighted contributions of one input.
func (p *Policy) evidence(in Input) []events.Reason {
	rs := make([]events.Reason, 0, 16)
	add := func(code, text string, w float64) {
		if w != 0 {
			rs = append(rs, events.Reason{Code: code, Text: text, Weight: w})
		}
	}
	ev, x := p.Scoring.Evidence, in.Enrichment.Exposure
	add(CodeCIPInbound, CodeCIPInbound+"="+scoreNames[x.InboundScore], ev.CriminalIPInbound.weight(x.InboundScore))
	add(CodeCIPOutbound, CodeCIPOutbound+"="+scoreNames[x.OutboundScore], ev.CriminalIPOutbound.weight(x.OutboundScore))
	flags := []struct {
		code string
		on   bool
		w    float64
	}{
		{CodeMalicious, x.Malicious, ev.Malicious}, {CodeVPN, x.VPN, ev.VPN}, {CodeProxy, x.Proxy, ev.Proxy},
		{CodeTor, x.Tor, ev.Tor}, {CodeHosting, x.Hosting, ev.Hosting}, {CodeCloud, x.Cloud, ev.Cloud},
		{CodeScanner, x.Scanner, ev.Scanner}, {CodeDarkweb, x.Darkweb, ev.Darkweb},
	}
	for _, f := range flags {
		if f.on {
			add(f.code, f.code+"=Yes", f.w)
		}
	}
	if len(x.OpenPorts) > 0 {
		add(CodeOpenPorts, CodeOpenPorts+"="+strconv.Itoa(len(x.OpenPorts)), ev.OpenPorts)
	}
	if cve, ok := criticalCVE(x, ev.CVSSThreshold); ok {
		add(CodeCriticalCVE, CodeCriticalCVE+"="+cve.ID+"("+strconv.FormatFloat(cve.CVSS, 'f', 1, 64)+")", ev.CriticalCVE)
	}
	if x.AbuseConfidence >= 0 && ev.AbuseIPDB.Weight != 0 && float64(x.AbuseConfidence) >= ev.AbuseIPDB.Min && (x.AbuseConfidence > 0 || ev.AbuseIPDB.Min > 0) {
		add(CodeAbuseIPDB, CodeAbuseIPDB+"="+strconv.FormatInt(int64(x.AbuseConfidence), 10), ev.AbuseIPDB.Weight)
	}
	if c := x.GreyNoiseClass; c != "" {
		add(CodeGreyNoise, CodeGreyNoise+"="+c, ev.GreyNoise[c])
	}
	t, s := p.Scoring.Telemetry, in.Summary
	if w := t.Sightings24h.apply(s.Count24h); w != 0 {
		add(CodeSightings, CodeSightings+"="+strconv.FormatInt(s.Count24h, 10), w)
	}
	if w := t.DistinctAssets.apply(s.DistinctAssets); w != 0 {
		add(CodeAssets, CodeAssets+"="+strconv.FormatInt(s.DistinctAssets, 10), w)
	}
	if in.Asset != nil {
		add(CodeAssetCriticality, CodeAssetCriticality+"="+in.Asset.Criticality, t.AssetCriticality[in.Asset.Criticality])
	}
	if s.MaxSeverity > 0 {
		if w := t.IDSSeverity[s.MaxSeverity]; w != 0 {
			add(CodeIDSSeverity, CodeIDSSeverity+"="+strconv.FormatInt(int64(s.MaxSeverity), 10), w)
		}
	}
	if s.Count > 0 && s.Blocked == s.Count {
		add(CodeAllBlocked, CodeAllBlocked+"=Yes", t.AllBlocked)
	}
	if len(rs) == 0 {
		return nil
	}
	return rs
}

// criticalCVE finds a CVE with CVSS >= threshold on an open port (or with no
// port information).
func criticalCVE(x events.Exposure, threshold float64) (events.CVE, bool) {
	if threshold <= 0 {
		return events.CVE{}, false
	}
	open := func(port int32) bool {
		return slices.ContainsFunc(x.OpenPorts, func(pt events.Port) bool { return pt.Port == port })
	}
	for _, c := range x.CVEs {
		if c.CVSS < threshold {
			continue
		}
		if len(c.Ports) == 0 {
			return c, true
		}
		for _, pt := range c.Ports {
			if open(pt) {
				return c, true
			}
		}
	}
	return events.CVE{}, false
}

func clampRound(score float64) int32 {
	return int32(math.Round(math.Max(0, math.Min(10, score))))
}

// level returns the level whose band holds priority.
func (p *Policy) level(priority int32) Level {
	for _, l := range p.Levels {
		if priority >= l.Min {
			return l
		}
	}
	return p.Levels[len(p.Levels)-1]
}

// topOfBandBelow returns the highest priority whose action is neither alert
// nor block.
func (p *Policy) topNonAlerting() int32 {
	for prio := int32(10); prio >= 0; prio-- {
		if a := p.level(prio).Action; a != events.VerdictAlert && a != events.VerdictBlock {
			return prio
		}
	}
	return 0
}

// decision is the outcome of decide.
type decision struct {
	priority int32
	level    Level
	action   string
	reasons  []events.Reason
}

// decide applies decay, list treatment, levels and safeguards to a score.
// Without explain it leaves out the reasons (the priority is the same), for
// the score without exposure evidence, which only needs the priority.
func (p *Policy) decide(score float64, in Input, withoutAnnotateOnly float64, explain bool) decision {
	d := decision{}
	// Decay since Vigil last received a sighting (not since its event time:
	// an old log replayed now is a new sighting).
	if hl := p.Decay.HalfLife; hl > 0 && !in.LastObserved.IsZero() {
		if age := in.Now.Sub(in.LastObserved); age > 0 && score > 0 {
			f := math.Pow(0.5, float64(age)/float64(hl))
			if f < 0.999 {
				if explain {
					d.reasons = append(d.reasons, events.Reason{Code: CodeDecay, Text: "decay=" + strconv.FormatFloat(f, 'f', 2, 64) + "(age " + age.Round(time.Minute).String() + ")", Weight: score*f - score})
				}
				score *= f
				withoutAnnotateOnly *= f
			}
		}
	}
	d.priority = clampRound(score)
	suppress := false
	partner := false
	for _, m := range in.Lists {
		if slices.Contains(p.Safeguards.PartnerLists, m.List) {
			partner = true
			if explain {
				d.reasons = append(d.reasons, events.Reason{Code: CodePartner, Text: CodePartner + "=" + m.List})
			}
		}
		rule, ok := p.Warninglists.Lists[m.List]
		if !ok {
			rule = p.Warninglists.Default
		}
		switch rule.Mode {
		case ModeIgnore:
			continue
		case ModeSuppress:
			suppress = true
			d.priority = min(d.priority, rule.MaxPriority)
		case ModeCap:
			d.priority = min(d.priority, rule.MaxPriority)
		}
		if explain {
			d.reasons = append(d.reasons, events.Reason{Code: CodeWarninglist, Text: CodeWarninglist + "=" + m.List + " (" + rule.Mode + ")"})
		}
	}
	d.level = p.level(d.priority)
	d.action = d.level.Action
	if suppress {
		d.action = events.VerdictSuppress
	}
	// Annotate-only evidence never raises an alert or a block.
	if (d.action == events.VerdictAlert || d.action == events.VerdictBlock) && len(p.annotateOnly) > 0 {
		if a := p.level(clampRound(withoutAnnotateOnly)).Action; a != events.VerdictAlert && a != events.VerdictBlock {
			d.priority = min(d.priority, p.topNonAlerting())
			d.level = p.level(d.priority)
			d.action = d.level.Action
			if explain {
				d.reasons = append(d.reasons, events.Reason{Code: CodeAnnotateOnly, Text: CodeAnnotateOnly + "=alert needs more than annotate-only evidence"})
			}
		}
	}
	// Never block a crown jewel or a partner without a review first.
	if d.action == events.VerdictBlock {
		critical := in.Asset != nil && slices.Contains(p.Safeguards.ReviewCriticalities, in.Asset.Criticality)
		if critical || partner {
			d.action = events.VerdictReview
			if explain {
				why := "partner list"
				if critical {
					why = "asset " + in.Asset.Name + " is " + in.Asset.Criticality
				}
				d.reasons = append(d.reasons, events.Reason{Code: CodeReview, Text: CodeReview + "=" + why})
			}
		}
	}
	return d
}

// Evaluate computes the verdict for one input, explained (Decide, then
// Explain). It never fails: missing data contributes nothing.
func (p *Policy) Evaluate(in Input) events.Verdict {
	v := p.Decide(in)
	p.Explain(in, &v)
	return v
}

// Decide computes the decision part of the verdict for one input: priority,
// level, action, reasons with their weights, the priority without exposure
// evidence, sightings and times — everything ShouldEmit, ReviewScore and
// NextReview read. It leaves out what only a published verdict needs (tags,
// ThreatQ attributes, description: see Explain), so a correlator that
// publishes few of the verdicts it decides does not build them for all.
func (p *Policy) Decide(in Input) events.Verdict {
	e := in.Enrichment
	rs := p.evidence(in)
	// One pass sums the score with and without exposure evidence, each with
	// and without annotate-only evidence.
	full, noAnnotate, tel, telNoAnnotate := p.Scoring.Base, p.Scoring.Base, p.Scoring.Base, p.Scoring.Base
	for _, r := range rs {
		annotate, exposure := p.annotateOnly[r.Code], isExposure(r.Code)
		full += r.Weight
		if !annotate {
			noAnnotate += r.Weight
		}
		if !exposure {
			tel += r.Weight
			if !annotate {
				telNoAnnotate += r.Weight
			}
		}
	}
	without := p.decide(tel, in, telNoAnnotate, false)
	d := p.decide(full, in, noAnnotate, true)

	v := events.Verdict{
		Indicator:               e.Observation.Indicator,
		Priority:                d.priority,
		Level:                   d.level.Name,
		Action:                  d.action,
		Reasons:                 append(rs, d.reasons...),
		PolicyVersion:           p.Version,
		PreviousPriority:        -1,
		PriorityWithoutExposure: without.priority,
		ExposureChanged:         without.priority != d.priority,
		Sightings:               in.Summary,
		EventTime:               e.Observation.EventTime,
		DecidedAt:               in.Now,
		ValidUntil:              in.Now.Add(p.Decay.ValidFor),
	}
	if in.Previous != nil {
		v.PreviousPriority = in.Previous.Priority
	}
	if p.Emit.SetScoreMinPriority > 0 && d.priority >= p.Emit.SetScoreMinPriority &&
		(d.action == events.VerdictBlock || d.action == events.VerdictAlert) {
		v.SetScore = true
	}
	for _, r := range e.Results {
		if r.Status == events.StatusOK && !slices.Contains(v.Sources, r.Provider) {
			v.Sources = append(v.Sources, r.Provider)
		}
	}
	return v
}

// Explain adds to v, decided by Decide on in, what a published verdict
// carries for ThreatQ and the analyst: tags, attributes and the description.
func (p *Policy) Explain(in Input, v *events.Verdict) {
	v.Tags = []string{"vigil", "vigil:" + v.Action, "vigil-level:" + v.Level}
	v.Attributes = p.attributes(in, v)
	v.Description = "Vigil " + v.Action + " (priority " + strconv.FormatInt(int64(v.Priority), 10) + ", " + v.Level + ") under policy " + v.PolicyVersion + ": " + reasonTexts(v.Reasons, 6)
}

func reasonTexts(rs []events.Reason, n int) string {
	if len(rs) == 0 {
		return "no evidence"
	}
	size := 16 // room for the "+N more" suffix
	for i := range min(n, len(rs)) {
		size += len(rs[i].Text) + 2
	}
	var b strings.Builder
	b.Grow(size)
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == n {
			b.WriteByte('+')
			b.WriteString(strconv.Itoa(len(rs) - n))
			b.WriteString(" more")
			break
		}
		b.WriteString(r.Text)
	}
	return b.String()
}

// attributes are the facts written to ThreatQ.
func (p *Policy) attributes(in Input, v *events.Verdict) []events.Attribute {
	x := in.Enrichment.Exposure
	a := make([]events.Attribute, 0, 26)
	add := func(name, value string) {
		if value != "" {
			a = append(a, events.Attribute{Name: name, Value: value})
		}
	}
	add("Criminal IP Inbound Score", scoreNames[x.InboundScore])
	add("Criminal IP Outbound Score", scoreNames[x.OutboundScore])
	add("Malicious", yesNo(x.Malicious))
	add("VPN", yesNo(x.VPN))
	add("Proxy", yesNo(x.Proxy))
	add("Tor", yesNo(x.Tor))
	add("Hosting", yesNo(x.Hosting))
	add("Cloud", yesNo(x.Cloud))
	add("Scanner", yesNo(x.Scanner))
	var b []byte
	for i, pt := range x.OpenPorts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(pt.Port), 10)
		b = append(b, '/')
		b = append(b, pt.Protocol...)
	}
	add("Open Ports", string(b))
	b = b[:0]
	for i, c := range x.CVEs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, c.ID...)
		b = append(b, " ("...)
		b = strconv.AppendFloat(b, c.CVSS, 'f', 1, 64)
		b = append(b, ')')
	}
	add("CVEs", string(b))
	if x.ASN > 0 {
		add("ASN", strings.TrimSpace("AS"+strconv.FormatInt(x.ASN, 10)+" "+x.ASName))
	}
	add("Country", x.Country)
	if x.AbuseConfidence >= 0 && (x.AbuseConfidence > 0 || slices.ContainsFunc(in.Enrichment.Results, func(r events.ProviderResult) bool { return r.Provider == "abuseipdb" })) {
		add("AbuseIPDB Confidence", strconv.Itoa(int(x.AbuseConfidence)))
	}
	add("GreyNoise Classification", x.GreyNoiseClass)
	s := in.Summary
	add("Sightings", strconv.FormatInt(s.Count, 10))
	add("Sightings 24h", strconv.FormatInt(s.Count24h, 10))
	add("Distinct Assets", strconv.FormatInt(s.DistinctAssets, 10))
	add("Blocked Share", strconv.FormatFloat(s.BlockedShare, 'f', 2, 64))
	// The verdict's priority, level, action and reason codes are not restated here: the sink
	// writes them from the verdict's own fields (Vigil Priority, Vigil Level, Vigil Action, one
	// Vigil Reason per code), one attribute per fact. A copy under a second name would cost
	// ThreatQ a second DELETE whenever the level or the reasons change.
	add("Vigil Policy Version", v.PolicyVersion)
	return a
}

// ShouldEmit reports whether v is published: always without a previous
// verdict, when the level or action changed, when the refresh interval has
// passed since the last publication, or when the sightings grew by the
// emit.sightings_growth factor since then.
func (p *Policy) ShouldEmit(v events.Verdict, prev *Previous) bool {
	if prev == nil {
		return true
	}
	if prev.Level != v.Level || prev.Action != v.Action {
		return true
	}
	if g := p.Emit.SightingsGrowth; g > 0 && (grew(v.Sightings.Count, prev.Sightings, g) || grew(v.Sightings.DistinctAssets, prev.DistinctAssets, g)) {
		return true
	}
	return p.Emit.RefreshInterval > 0 && v.DecidedAt.Sub(prev.EmittedAt) >= p.Emit.RefreshInterval
}

// grew reports whether n reached factor times before (an unknown 0 counts as 1).
func grew(n, before int64, factor float64) bool {
	return n > before && float64(n) >= factor*float64(max(before, 1))
}

// IsAllowStatus reports whether an analyst status becomes an allow-list entry.
func (p *Policy) IsAllowStatus(status string) bool {
	return slices.ContainsFunc(p.Feedback.AllowStatuses, func(s string) bool { return strings.EqualFold(s, status) })
}
