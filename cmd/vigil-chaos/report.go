package main

import (
	"fmt"
	"io"
	"strings"
)

// printChaos writes the chaos report for a person.
func printChaos(w io.Writer, r ChaosReport, path string) {
	p := func(f string, a ...any) { fmt.Fprintf(w, f, a...) }
	a := r.Accounting
	p("\nVigil chaos test (%s, %d CPUs)\n", map[bool]string{true: "quick", false: "full"}[r.Quick], r.Machine.CPUs)
	p("  input        %d records (%s), %d indicators\n", r.Input.Records, classText(r.Input.ByClass), r.Input.Indicators)
	if r.Reference != nil {
		p("  reference    no faults: %.0fs total, drained %.1fs after the stream; ThreatQ %d indicators, %d writes\n",
			r.Reference.TotalSeconds, r.Reference.DrainSeconds, r.Reference.ThreatQ.Indicators, r.Reference.ThreatQ.Writes)
	}
	c := r.Chaos
	p("  chaos        streamed %.0fs at %.0f/s; %d faults; drained %.1fs after the last fault/stream end; %.0fs total\n",
		c.StreamSeconds, c.RatePerSecond, len(c.Timeline), c.DrainSeconds, c.TotalSeconds)
	for _, h := range c.Timeline {
		took := ""
		if h.TookSeconds > 0 {
			took = fmt.Sprintf(" (%.1fs)", h.TookSeconds)
		}
		errs := ""
		if h.Err != "" {
			errs = "  ERROR " + h.Err
		}
		p("    %6.1fs  %-14s %s%s%s\n", h.AtSeconds, h.Kind, h.Target, took, errs)
	}
	p("  kills        %v; unexpected exits %v; max lag %v\n", c.Kills, c.UnexpectedExit, c.MaxLag)
	p("  accounting   in %d = %d with observations + %d collapsed + %d none + %d dead-lettered (+%d unaccounted)\n",
		a.RecordsIn, a.WithObservations, a.Collapsed, a.None, a.DeadLettered, a.Unaccounted)
	p("  DLQ          %d records (%d duplicates) by class %v, expected %v; other stages %v\n", a.DLQRecords, a.DLQDuplicates, a.DLQByClass, a.ExpectedDLQByClass, a.DLQOtherStages)
	p("  indicators   expected %d, observed %d, enriched %d, verdicts %d, ThreatQ %d\n",
		a.ExpectedIndicators, a.ObservedIndicators, a.EnrichedIndicators, a.VerdictIndicators, a.ThreatQIndicators)
	p("  ThreatQ      %d writes (%d created, %d updated); duplicate writes %.2f%% (baseline: %s)\n",
		c.ThreatQ.Writes, c.ThreatQ.Created, c.ThreatQ.Updated, r.DuplicateWritesPct, r.DuplicateBaseline)
	if a.ReferenceCompared {
		p("  reference    status/score/level mismatches %d, missing %d, extra %d\n", a.ReferenceMismatch.Count, a.ReferenceMissing.Count, a.ReferenceExtra.Count)
	}
	p("  lost         %d\n", a.Lost)
	for _, f := range r.Failures {
		p("  FAIL         %s\n", f)
	}
	p("  result       %s\n", path)
	if r.OK {
		p("\nRESULT: OK, nothing lost\n")
	} else {
		p("\nRESULT: FAILED\n")
	}
}

func classText(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// printScale writes the scale-out report for a person.
func printScale(w io.Writer, r ScaleReport, path string) {
	p := func(f string, a ...any) { fmt.Fprintf(w, f, a...) }
	p("\nVigil scale-out test (%d CPUs)\n", r.Machine.CPUs)
	for _, s := range r.Passes {
		p("\n  group protocol %s: %d records at %.0f/s, stream %.0fs, drained %.1fs after\n", s.Protocol, s.Records, s.RatePerSecond, s.StreamSeconds, s.DrainSeconds)
		p("    mean committed/s  %v\n", s.MeanRPS)
		for _, svc := range services {
			p("    %-10s %s\n", svc, seriesText(s.Series[svc]))
		}
		for _, e := range s.Events {
			p("    event at %3ds: %s\n", e.AtSeconds, e.What)
		}
		for _, d := range s.Dips {
			p("      %-10s before %7.1f/s, min after %7.1f/s (dip %5.1f%%, %2ds below half), after %7.1f/s  [%s]\n",
				d.Group, d.BeforeRPS, d.MinAfterRPS, d.DipPct, d.SecondsBelowHalf, d.AfterRPS, d.Event)
		}
		for _, rt := range providerRoutes {
			pc := s.ProviderCalls[rt]
			p("    provider %-10s %.4f calls per unique indicator (%d calls, %d unique, %d more than once)\n", rt, pc.Ratio, pc.Calls, pc.Unique, pc.Over1)
		}
		p("    lost %d, accounting balanced %v, ThreatQ %d indicators (%d writes), unexpected exits %v\n",
			s.Accounting.Lost, s.Accounting.Balanced, s.ThreatQ.Indicators, s.ThreatQ.Writes, s.UnexpectedExit)
		for _, f := range s.Failures {
			p("    FAIL %s\n", f)
		}
	}
	p("  result %s\n", path)
	if r.OK {
		p("\nRESULT: OK\n")
	} else {
		p("\nRESULT: FAILED\n")
	}
}

func seriesText(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f", x)
	}
	return b.String()
}
