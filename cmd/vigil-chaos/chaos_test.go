package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBuildSchedule(t *testing.T) {
	tests := []struct {
		name      string
		p         scheduleParams
		wantErr   error
		wantKills int
	}{
		{"full", scheduleParams{Duration: 6 * time.Minute, Services: services, KillsEach: 3, Outage: time.Minute, Redis: true, Kafka: true, MinSpacing: 3 * time.Second}, nil, 12},
		{"quick", scheduleParams{Duration: 100 * time.Second, Services: services, KillsEach: 1, Outage: 20 * time.Second, Redis: true, Kafka: true}, nil, 4},
		{"no kills", scheduleParams{Duration: time.Minute, Outage: 10 * time.Second}, nil, 0},
		{"outage too long", scheduleParams{Duration: time.Minute, Outage: 50 * time.Second}, ErrBadInput, 0},
		{"kills too close", scheduleParams{Duration: 10 * time.Second, Services: services, KillsEach: 3, MinSpacing: 3 * time.Second}, ErrBadInput, 0},
		{"zero duration", scheduleParams{}, ErrBadInput, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildSchedule(tt.p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			perSvc := map[string]int{}
			var down, up time.Duration
			for i, f := range s {
				if f.At < 0 || f.At > tt.p.Duration {
					t.Errorf("fault %d at %s outside the stream of %s", i, f.At, tt.p.Duration)
				}
				if i > 0 && s[i-1].At > f.At {
					t.Errorf("faults not sorted at %d", i)
				}
				switch f.Kind {
				case faultKill:
					perSvc[f.Target]++
				case faultThreatQDown:
					down = f.At
				case faultThreatQUp:
					up = f.At
				}
			}
			total := 0
			for _, svc := range tt.p.Services {
				if perSvc[svc] != tt.p.KillsEach {
					t.Errorf("%s killed %d times, want %d", svc, perSvc[svc], tt.p.KillsEach)
				}
				total += perSvc[svc]
			}
			if total != tt.wantKills {
				t.Errorf("kills = %d, want %d", total, tt.wantKills)
			}
			if tt.p.Outage > 0 && up-down != tt.p.Outage {
				t.Errorf("outage = %s, want %s", up-down, tt.p.Outage)
			}
		})
	}
}

func TestMakePlan(t *testing.T) {
	c := genConfig{Records: 10000, Indicators: 2000, Malformed: 50, None: 100, Seed: 7}
	p, err := makePlan(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := p.Counts()
	if counts[classMalformed] != 50 || counts[classNone] != 100 || counts[classObservation] != 9850 {
		t.Fatalf("counts = %v", counts)
	}
	bad := p.BadCounts()
	if bad[badMalformed]+bad[badInvalidUTF8] != 50 || bad[badInvalidUTF8] == 0 || bad[badMalformed] == 0 {
		t.Fatalf("bad counts = %v", bad)
	}
	seen := map[string]bool{}
	for _, ip := range p.IPs {
		a := netip.MustParseAddr(ip)
		if seen[ip] || a.IsPrivate() || !a.IsGlobalUnicast() {
			t.Fatalf("address %s repeated or not public", ip)
		}
		seen[ip] = true
	}
	perInd := make([]int, len(p.IPs))
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, cl := range p.Class {
		line := p.render(i, ts)
		switch cl {
		case classObservation:
			perInd[p.Ind[i]]++
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("record %d does not parse: %v: %s", i, err, line)
			}
			if m["dest_ip"] != p.IPs[p.Ind[i]] {
				t.Fatalf("record %d dest_ip = %v, want %s", i, m["dest_ip"], p.IPs[p.Ind[i]])
			}
		case classNone:
			if !json.Valid(line) || !bytes.Contains(line, []byte(`"src_ip":"10.9.`)) {
				t.Fatalf("record %d is not an internal-only flow: %s", i, line)
			}
		case classMalformed:
			if json.Valid(line) && utf8.Valid(line) {
				t.Fatalf("malformed record %d is valid JSON: %s", i, line)
			}
		}
	}
	for k, n := range perInd {
		if n < 1 || n > maxSightings {
			t.Fatalf("indicator %d has %d sightings, want 1..%d", k, n, maxSightings)
		}
	}
}

func TestMakePlanSkipsAndRejects(t *testing.T) {
	p, err := makePlan(genConfig{Records: 100, Indicators: 50, Seed: 1}, func(a netip.Addr) bool { return a.As4()[0] == 5 })
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range p.IPs {
		if strings.HasPrefix(ip, "5.") {
			t.Fatalf("skipped address %s used", ip)
		}
	}
	bad := []genConfig{
		{Records: 10, Indicators: 20},              // fewer records than indicators
		{Records: 1000, Indicators: 10},            // 100 sightings each
		{Records: 10, Indicators: 0},               // no indicator
		{Records: 10, Indicators: 5, Malformed: 8}, // malformed leave too few
		{Records: 10, Indicators: 2, None: -1},     // negative
	}
	for _, c := range bad {
		if _, err := makePlan(c, nil); !errors.Is(err, ErrBadInput) {
			t.Errorf("makePlan(%+v) err = %v, want ErrBadInput", c, err)
		}
	}
}

// fixture is a 6-record plan: 4 observations over 2 indicators, 1 none, 1 malformed.
func fixture() (plan, pipelineView) {
	p := plan{Class: []recClass{classObservation, classObservation, classNone, classObservation, classMalformed, classObservation},
		Ind: []int32{0, 1, -1, 0, -1, 1}, Bad: []string{"", "", "", "", badMalformed, ""}, IPs: []string{"5.1.1.1", "5.2.2.2"}}
	v := pipelineView{Positions: map[rawPos]int{}, ObsPos: map[rawPos]bool{}, DLQ: map[rawPos]string{}, DLQOther: map[string]int{},
		ObsValues: map[string]bool{"5.1.1.1": true, "5.2.2.2": true}, EnrValues: map[string]bool{"5.1.1.1": true, "5.2.2.2": true},
		Verdicts: map[string]verdictLite{"5.1.1.1": {Action: "alert"}, "5.2.2.2": {Action: "suppress"}},
		ThreatQ:  map[string]tqLite{"5.1.1.1": {Status: "Active"}, "5.2.2.2": {Status: "Whitelisted"}}, DLQRecords: 1}
	for i := range p.Class {
		v.Positions[rawPos{0, int64(i)}] = i
	}
	for _, i := range []int{0, 1, 5} { // record 3 was collapsed into record 0
		v.ObsPos[rawPos{0, int64(i)}] = true
	}
	v.DLQ[rawPos{0, 4}] = badMalformed
	return p, v
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*pipelineView)
		ref      map[string]tqLite
		wantOK   bool
		wantLost int
		check    func(t *testing.T, a Accounting)
	}{
		{"balanced", func(*pipelineView) {}, nil, true, 0, func(t *testing.T, a Accounting) {
			if a.WithObservations != 3 || a.Collapsed != 1 || a.None != 1 || a.DeadLettered != 1 || a.RecordsIn != 6 {
				t.Errorf("split = %+v", a)
			}
		}},
		{"record never acknowledged", func(v *pipelineView) { delete(v.Positions, rawPos{0, 2}) }, nil, false, 0, func(t *testing.T, a Accounting) {
			if a.Balanced || a.RecordsIn != 5 {
				t.Errorf("balanced = %v, in = %d", a.Balanced, a.RecordsIn)
			}
		}},
		{"malformed not dead-lettered", func(v *pipelineView) { delete(v.DLQ, rawPos{0, 4}) }, nil, false, 2, func(t *testing.T, a Accounting) {
			if a.Unaccounted != 1 || a.DLQOnlyMalformed {
				t.Errorf("unaccounted = %d, dlq only malformed = %v", a.Unaccounted, a.DLQOnlyMalformed)
			}
		}},
		{"good record dead-lettered", func(v *pipelineView) { delete(v.ObsPos, rawPos{0, 5}); v.DLQ[rawPos{0, 5}] = "malformed" }, nil, false, 0, func(t *testing.T, a Accounting) {
			if a.WrongClass.Count != 1 || a.DLQOnlyMalformed {
				t.Errorf("wrong class = %d, dlq only malformed = %v", a.WrongClass.Count, a.DLQOnlyMalformed)
			}
		}},
		{"indicator missing from ThreatQ", func(v *pipelineView) { delete(v.ThreatQ, "5.2.2.2") }, nil, false, 1, func(t *testing.T, a Accounting) {
			if a.VerdictNotInThreatQ.Count != 1 {
				t.Errorf("verdict not in ThreatQ = %d", a.VerdictNotInThreatQ.Count)
			}
		}},
		{"status not from last verdict", func(v *pipelineView) { v.ThreatQ["5.1.1.1"] = tqLite{Status: "Review"} }, nil, false, 0, func(t *testing.T, a Accounting) {
			if a.StatusNotFromVerdict.Count != 1 {
				t.Errorf("status mismatches = %d", a.StatusNotFromVerdict.Count)
			}
		}},
		{"observed, never enriched", func(v *pipelineView) { delete(v.EnrValues, "5.1.1.1") }, nil, false, 0, func(t *testing.T, a Accounting) {
			if a.ObservedNotEnriched.Count != 1 {
				t.Errorf("not enriched = %d", a.ObservedNotEnriched.Count)
			}
		}},
		{"differs from reference", func(*pipelineView) {}, map[string]tqLite{"5.1.1.1": {Status: "Active", Score: 3}, "5.2.2.2": {Status: "Whitelisted"}}, false, 0, func(t *testing.T, a Accounting) {
			if !a.ReferenceCompared || a.ReferenceMismatch.Count != 1 {
				t.Errorf("reference mismatch = %d", a.ReferenceMismatch.Count)
			}
		}},
		{"matches reference", func(*pipelineView) {}, map[string]tqLite{"5.1.1.1": {Status: "Active"}, "5.2.2.2": {Status: "Whitelisted"}}, true, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, v := fixture()
			tt.mutate(&v)
			a := account(p, v, tt.ref)
			if a.OK() != tt.wantOK {
				t.Errorf("OK = %v, want %v (%+v)", a.OK(), tt.wantOK, a)
			}
			if a.Lost != tt.wantLost {
				t.Errorf("lost = %d, want %d", a.Lost, tt.wantLost)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

func TestDips(t *testing.T) {
	flat := func(n int, v float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	stall := append(append(flat(5, 100), 0, 0, 0, 0, 0), flat(15, 100)...)
	tests := []struct {
		name      string
		s         []float64
		wantMin   float64
		wantDip   float64
		wantBelow int
	}{
		{"no dip", flat(25, 100), 100, 0, 0},
		{"five seconds stalled", stall, 0, 100, 3},
		{"bursty batches average out", []float64{0, 500, 0, 0, 0, 0, 500, 0, 0, 0, 0, 500, 0, 0, 0, 0, 500, 0, 0, 0, 0, 500, 0, 0, 0}, 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dips(map[string][]float64{"enrich": tt.s}, []scaleEvent{{AtSeconds: 5, What: "add", Groups: []string{"enrich", "missing"}}})
			if len(d) != 1 {
				t.Fatalf("dips = %+v, want one (unknown groups skipped)", d)
			}
			if d[0].BeforeRPS != 100 || d[0].MinAfterRPS != tt.wantMin || d[0].DipPct != tt.wantDip || d[0].SecondsBelowHalf != tt.wantBelow {
				t.Errorf("dip = %+v", d[0])
			}
		})
	}
}

func TestDupPctAndRatios(t *testing.T) {
	if got := dupPct(110, 100); got != 10 {
		t.Errorf("dupPct(110, 100) = %v", got)
	}
	if got := dupPct(90, 100); got != 0 {
		t.Errorf("dupPct(90, 100) = %v", got)
	}
	var st providerStats
	if err := json.Unmarshal([]byte(`{"routes":{"criminalip":{"calls":3,"by_indicator":{"a":1,"b":2}}}}`), &st); err != nil {
		t.Fatal(err)
	}
	r := providerRatios(st, []string{"a", "b", "c"})
	if c := r["criminalip"]; c.Ratio != 1 || c.Over1 != 1 || c.NotCalled != 1 {
		t.Errorf("criminalip = %+v", c)
	}
	if g := r["greynoise"]; g.Calls != 0 || g.NotCalled != 3 {
		t.Errorf("greynoise = %+v", g)
	}
}

func TestReportShape(t *testing.T) {
	p, v := fixture()
	rep := ChaosReport{Kind: "chaos", Accounting: account(p, v, nil), Schedule: []fault{{At: time.Second, Kind: faultKill, Target: "sink"}}}
	rep.Chaos.Kills = map[string]int{"sink": 0}
	rep.Failures = chaosFailures(rep)
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0], "sink killed 0 times") {
		t.Fatalf("failures = %q", rep.Failures)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kind", "ok", "input", "schedule", "chaos", "accounting", "duplicate_writes_pct"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	acc := m["accounting"].(map[string]any)
	for _, k := range []string{"records_in", "with_observations", "collapsed", "none", "dead_lettered", "lost", "balanced", "dlq_by_class"} {
		if _, ok := acc[k]; !ok {
			t.Errorf("accounting lacks %q", k)
		}
	}
	var buf bytes.Buffer
	printChaos(&buf, rep, "x.json")
	if !strings.Contains(buf.String(), "RESULT: FAILED") {
		t.Errorf("printed report does not say FAILED:\n%s", buf.String())
	}
}
