package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func mustDefault(t *testing.T) *Policy {
	t.Helper()
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func enr(x events.Exposure) *events.Enrichment {
	if x.AbuseConfidence == 0 {
		x.AbuseConfidence = -1
	}
	return &events.Enrichment{
		Observation: events.Observation{Indicator: events.Indicator{Type: events.TypeIPv4, Value: "203.0.113.5"}, EventTime: now},
		Exposure:    x,
		Results:     []events.ProviderResult{{Provider: "criminalip", Status: events.StatusOK}},
	}
}

func sums(count, assets int64, sev int32) events.SightingSummary {
	return events.SightingSummary{Count: count, Count24h: count, DistinctAssets: assets, MaxSeverity: sev, LastSeen: now}
}

func hasCode(v events.Verdict, code string) bool {
	return slices.ContainsFunc(v.Reasons, func(r events.Reason) bool { return r.Code == code })
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	malicious := events.Exposure{Malicious: true, InboundScore: 5, Tor: true} // scores 9
	eight := events.Exposure{Malicious: true, InboundScore: 5, Scanner: true} // scores 8
	years := func(n int64) events.SightingSummary {                           // a log written 3 years ago
		s := sums(n, 1, 0)
		s.FirstSeen, s.LastSeen = now.AddDate(-3, 0, 0), now.AddDate(-3, 0, 0)
		return s
	}
	tests := []struct {
		name       string
		in         Input
		wantAction string
		wantPrio   int32
		wantCode   string // a reason code that must be present
		noExposure int32  // PriorityWithoutExposure
	}{
		{"no evidence", Input{Enrichment: enr(events.Exposure{}), Summary: sums(1, 1, 0)}, events.VerdictSuppress, 0, "", 0},
		{"critical inbound + malicious + tor blocks", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0)}, events.VerdictBlock, 9, CodeCIPInbound, 0},
		{"weights sum, not last writer", Input{Enrichment: enr(events.Exposure{InboundScore: 4, Scanner: true}), Summary: sums(1, 1, 0)}, events.VerdictAnnotate, 4, CodeScanner, 0},
		{"telemetry alone", Input{Enrichment: enr(events.Exposure{}), Summary: sums(30, 12, 4)}, events.VerdictAlert, 6, CodeAssets, 6},
		{"greynoise benign lowers", Input{Enrichment: enr(events.Exposure{InboundScore: 4, GreyNoiseClass: "benign"}), Summary: sums(1, 1, 0)}, events.VerdictSuppress, 0, CodeGreyNoise, 0},
		{"critical cve on open port", Input{Enrichment: enr(events.Exposure{InboundScore: 4, OpenPorts: []events.Port{{Port: 443, Protocol: "tcp"}}, CVEs: []events.CVE{{ID: "CVE-2024-1", CVSS: 9.8, Ports: []int32{443}}}}), Summary: sums(1, 1, 0)}, events.VerdictAnnotate, 5, CodeCriticalCVE, 0},
		{"cve on closed port ignored", Input{Enrichment: enr(events.Exposure{CVEs: []events.CVE{{ID: "CVE-2024-1", CVSS: 9.8, Ports: []int32{22}}}, OpenPorts: []events.Port{{Port: 80}}}), Summary: sums(1, 1, 0)}, events.VerdictAnnotate, 1, CodeOpenPorts, 0},
		{"abuseipdb threshold", Input{Enrichment: enr(events.Exposure{AbuseConfidence: 90}), Summary: sums(1, 1, 0)}, events.VerdictAnnotate, 2, CodeAbuseIPDB, 0},
		{"abuseipdb below threshold", Input{Enrichment: enr(events.Exposure{AbuseConfidence: 50}), Summary: sums(1, 1, 0)}, events.VerdictSuppress, 0, "", 0},
		{"crown jewel block becomes review", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Asset: &Asset{Name: "dc01", Criticality: "crown_jewel"}}, events.VerdictReview, 10, CodeReview, 2},
		{"partner list block becomes review", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Lists: []events.ListMatch{{List: "partner-proxies"}}}, events.VerdictAnnotate, 5, CodePartner, 0},
		{"partner list uncapped still reviews", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Lists: []events.ListMatch{{List: "my-partners"}}}, events.VerdictAnnotate, 2, CodeWarninglist, 0},
		{"annotate-only evidence never alerts", Input{Enrichment: enr(events.Exposure{InboundScore: 4, Hosting: true, VPN: true, OpenPorts: []events.Port{{Port: 22}}}), Summary: sums(30, 1, 0)}, events.VerdictAnnotate, 5, CodeAnnotateOnly, 2},
		{"warninglist suppress", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Lists: []events.ListMatch{{List: "public-dns-v4"}}}, events.VerdictSuppress, 0, CodeWarninglist, 0},
		{"warninglist default cap", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Lists: []events.ListMatch{{List: "amazon-aws"}}}, events.VerdictAnnotate, 2, CodeWarninglist, 0},
		{"warninglist evidence only", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), Lists: []events.ListMatch{{List: "vpn-ipv4"}}}, events.VerdictBlock, 9, CodeWarninglist, 0},
		// Decay runs from when Vigil last received a sighting (LastObserved), never from the event time.
		{"decay halves after a half-life without sightings", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), LastObserved: now.Add(-72 * time.Hour)}, events.VerdictAnnotate, 5, CodeDecay, 0},
		{"two half-lives without sightings quarter it", Input{Enrichment: enr(eight), Summary: sums(1, 1, 0), LastObserved: now.Add(-144 * time.Hour)}, events.VerdictAnnotate, 2, CodeDecay, 0},
		{"old event received now is fresh", Input{Enrichment: enr(malicious), Summary: years(1), LastObserved: now}, events.VerdictBlock, 9, CodeCIPInbound, 0},
		{"old event without observation time is fresh", Input{Enrichment: enr(malicious), Summary: years(1)}, events.VerdictBlock, 9, CodeCIPInbound, 0},
		{"observed in the future (skew) does not raise", Input{Enrichment: enr(malicious), Summary: sums(1, 1, 0), LastObserved: now.Add(time.Hour)}, events.VerdictBlock, 9, CodeCIPInbound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = now
			v := p.Evaluate(tt.in)
			if v.Action != tt.wantAction || v.Priority != tt.wantPrio {
				t.Fatalf("action/priority = %s/%d, want %s/%d; reasons %+v", v.Action, v.Priority, tt.wantAction, tt.wantPrio, v.Reasons)
			}
			if tt.wantCode != "" && !hasCode(v, tt.wantCode) {
				t.Errorf("missing reason %s in %+v", tt.wantCode, v.Reasons)
			}
			if v.PriorityWithoutExposure != tt.noExposure || v.ExposureChanged != (tt.noExposure != v.Priority) {
				t.Errorf("without exposure = %d changed=%v, want %d", v.PriorityWithoutExposure, v.ExposureChanged, tt.noExposure)
			}
			if v.PolicyVersion != p.Version || v.PreviousPriority != -1 || !v.ValidUntil.After(now) {
				t.Errorf("metadata = %q %d %v", v.PolicyVersion, v.PreviousPriority, v.ValidUntil)
			}
		})
	}
}

func TestAttributesAndReasons(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	x := events.Exposure{InboundScore: 5, Malicious: true, OpenPorts: []events.Port{{Port: 22, Protocol: "tcp"}}, ASN: 64500, ASName: "EXAMPLE", Country: "NL"}
	v := p.Evaluate(Input{Enrichment: enr(x), Summary: sums(3, 14, 0), Now: now, Previous: &Previous{Priority: 4}})
	attrs := map[string]string{}
	for _, a := range v.Attributes {
		attrs[a.Name] = a.Value
	}
	want := map[string]string{
		"Criminal IP Inbound Score": "Critical", "Malicious": "Yes", "VPN": "No", "Open Ports": "22/tcp",
		"ASN": "AS64500 EXAMPLE", "Country": "NL", "Distinct Assets": "14", "Vigil Policy Version": p.Version,
	}
	for k, w := range want {
		if attrs[k] != w {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], w)
		}
	}
	// one attribute per fact: what the sink writes from the verdict's fields is not restated
	for _, name := range []string{"Vigil Priority Level", "Vigil Action", "Vigil Reason Codes", "Vigil Priority", "Vigil Level"} {
		if _, ok := attrs[name]; ok {
			t.Errorf("attribute %s restates a verdict field", name)
		}
	}
	texts := map[string]bool{}
	for _, r := range v.Reasons {
		texts[r.Text] = true
	}
	if !texts["criminalip.inbound=Critical"] || !texts["sightings.assets=14"] {
		t.Errorf("reason texts = %v", texts)
	}
	if v.PreviousPriority != 4 || !v.SetScore || len(v.Sources) != 1 {
		t.Errorf("prev=%d setScore=%v sources=%v", v.PreviousPriority, v.SetScore, v.Sources)
	}
}

// TestDecideThenExplain checks the split the correlator relies on: Decide
// alone carries every decision field (what ShouldEmit, ReviewScore and
// NextReview read) and nothing of the publication, and Explain completes it
// to exactly what Evaluate returns.
func TestDecideThenExplain(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name string
		in   Input
	}{
		{"block", Input{Enrichment: enr(events.Exposure{Malicious: true, InboundScore: 5, Tor: true}), Summary: sums(1, 1, 0)}},
		{"review on crown jewel", Input{Enrichment: enr(events.Exposure{Malicious: true, InboundScore: 5}), Summary: sums(4, 2, 3), Asset: &Asset{Name: "dc01", Criticality: "crown_jewel"}}},
		{"warninglist cap with decay", Input{Enrichment: enr(events.Exposure{InboundScore: 4, Hosting: true}), Summary: sums(2, 1, 0), Lists: []events.ListMatch{{List: "amazon-aws"}}, LastObserved: now.Add(-80 * time.Hour)}},
		{"no evidence", Input{Enrichment: enr(events.Exposure{}), Summary: sums(1, 1, 0), Previous: &Previous{Priority: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = now
			want := p.Evaluate(tt.in)
			got := p.Decide(tt.in)
			if got.Tags != nil || got.Attributes != nil || got.Description != "" {
				t.Errorf("Decide built publication fields: tags %v, %d attributes, description %q", got.Tags, len(got.Attributes), got.Description)
			}
			if got.Priority != want.Priority || got.Level != want.Level || got.Action != want.Action ||
				p.ReviewScore(&got) != p.ReviewScore(&want) || !reflect.DeepEqual(got.Reasons, want.Reasons) {
				t.Errorf("Decide = %d/%s/%s %+v, Evaluate = %d/%s/%s %+v", got.Priority, got.Level, got.Action, got.Reasons, want.Priority, want.Level, want.Action, want.Reasons)
			}
			p.Explain(tt.in, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Decide+Explain = %+v\nEvaluate = %+v", got, want)
			}
			if len(got.Attributes) == 0 || !strings.HasPrefix(got.Description, "Vigil "+got.Action) {
				t.Errorf("explained verdict: %d attributes, description %q", len(got.Attributes), got.Description)
			}
		})
	}
}

func TestShouldEmit(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	v := events.Verdict{Level: "high", Action: events.VerdictAlert, DecidedAt: now, Sightings: events.SightingSummary{Count: 8, DistinctAssets: 3}}
	recent := now.Add(-time.Hour)
	tests := []struct {
		name string
		prev *Previous
		want bool
	}{
		{"first", nil, true},
		{"same level recent", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent, Sightings: 8, DistinctAssets: 3}, false},
		{"level changed", &Previous{Level: "medium", Action: events.VerdictAlert, EmittedAt: now}, true},
		{"action changed", &Previous{Level: "high", Action: events.VerdictReview, EmittedAt: now}, true},
		{"refresh due", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: now.Add(-25 * time.Hour)}, true},
		{"sightings doubled", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent, Sightings: 4, DistinctAssets: 3}, true},
		{"sightings grew less than double", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent, Sightings: 5, DistinctAssets: 3}, false},
		{"distinct assets doubled", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent, Sightings: 7, DistinctAssets: 1}, true},
		{"unknown previous counts as 1", &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent}, true},
	}
	for _, tt := range tests {
		if got := p.ShouldEmit(v, tt.prev); got != tt.want {
			t.Errorf("%s: ShouldEmit = %v, want %v", tt.name, got, tt.want)
		}
	}
	off := *p
	off.Emit.SightingsGrowth = 0
	if off.ShouldEmit(v, &Previous{Level: "high", Action: events.VerdictAlert, EmittedAt: recent, Sightings: 1, DistinctAssets: 1}) {
		t.Error("sightings_growth 0 still re-emits on growth")
	}
}

func TestBadPolicies(t *testing.T) {
	t.Parallel()
	good := string(DefaultYAML())
	tests := []struct {
		name      string
		doc       string
		wantField string
		wantLine  int
	}{
		{"no version", strings.Replace(good, `version: "2026.05.1"`, `version: ""`, 1), "version", 4},
		{"bad action", strings.Replace(good, "{min: 6, name: high, action: alert}", "{min: 6, name: high, action: nuke}", 1), "levels.1.action", 0},
		{"unordered levels", strings.Replace(good, "{min: 3, name: medium", "{min: 7, name: medium", 1), "levels.2.min", 0},
		{"unknown field", strings.Replace(good, "base: 0", "base: 0\n  bogus: 1", 1), "(document)", 0},
		{"bad annotate code", strings.Replace(good, "- exposure.hosting", "- exposure.hostingg", 1), "safeguards.annotate_only.1", 0},
		{"bad list mode", strings.Replace(good, "vpn-ipv4: {mode: evidence}", "vpn-ipv4: {mode: drop}", 1), "warninglists.lists.vpn-ipv4.mode", 0},
		{"bad duration", strings.Replace(good, "half_life: 72h", "half_life: soon", 1), "(document)", 0},
		{"sightings growth 1", strings.Replace(good, "sightings_growth: 2", "sightings_growth: 1", 1), "emit.sightings_growth", 0},
		{"not yaml", "version: [", "(document)", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.doc))
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ValidationError", err)
			}
			if ve.File != "test.yaml" || ve.Field != tt.wantField || ve.Line <= 0 {
				t.Fatalf("err = %+v, want field %s with a line", ve, tt.wantField)
			}
			if tt.wantLine > 0 && ve.Line != tt.wantLine {
				t.Fatalf("line = %d, want %d", ve.Line, tt.wantLine)
			}
			// The reported line must hold the offending field.
			lines := strings.Split(tt.doc, "\n")
			if ve.Field != "(document)" && ve.Line <= len(lines) {
				last := tt.wantField[strings.LastIndex(tt.wantField, ".")+1:]
				if l := lines[ve.Line-1]; !strings.Contains(l, last) && !strings.Contains(l, "-") {
					t.Errorf("line %d %q does not hold %s", ve.Line, l, tt.wantField)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || p.Source() != path || p.Version == "" {
		t.Fatalf("Load = %v, %v", p, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}
