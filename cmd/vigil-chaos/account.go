package main

import (
	"slices"
)

// rawPos is a raw record's place on the raw topic.
type rawPos struct {
	P int32
	O int64
}

// verdictLite is what the checks read of a verdict.
type verdictLite struct {
	Action   string `json:"action"`
	Level    string `json:"level"`
	Priority int32  `json:"priority"`
}

// tqLite is what the checks read of a ThreatQ indicator.
type tqLite struct {
	Status string `json:"status"`
	Score  int    `json:"score"`
	Level  string `json:"level"` // the "Vigil Level" attribute
}

// pipelineView is what one run left on the topics and in ThreatQ, keyed by indicator value.
type pipelineView struct {
	Positions    map[rawPos]int         // raw position -> record index (from the produce acks)
	ObsPos       map[rawPos]bool        // raw positions that have an observation of their own
	ObsValues    map[string]bool        // indicator values on the observed topic
	Observations int                    // observation records (with duplicates)
	UnknownObs   int                    // observations whose raw position this run did not produce
	EnrValues    map[string]bool        // indicator values on the enriched topic
	Verdicts     map[string]verdictLite // last verdict per value
	VerdictCount int                    // verdict records (with duplicates)
	DLQ          map[rawPos]string      // ingest dead letters by raw position -> error class
	DLQRecords   int                    // ingest dead-letter records (with duplicates)
	DLQOther     map[string]int         // other stages' dead letters by "stage/class"
	ThreatQ      map[string]tqLite      // ThreatQ indicators by value
}

// sample keeps at most a few items for the report.
type sample struct {
	Count int      `json:"count"`
	Some  []string `json:"some,omitempty"`
}

func (s *sample) add(v string) {
	s.Count++
	if len(s.Some) < 5 {
		s.Some = append(s.Some, v)
	}
}

// Accounting is the exact balance of one run. Records in = with observations + collapsed +
// none + dead-lettered + unaccounted; the run is lossless only when unaccounted is 0, every
// class matches what the generator made, and every indicator made it through every stage.
type Accounting struct {
	RecordsPlanned   int            `json:"records_planned"`
	RecordsIn        int            `json:"records_in"` // acknowledged by Kafka
	WithObservations int            `json:"with_observations"`
	Collapsed        int            `json:"collapsed"` // merged by ingest into an earlier observation of the same indicator in one batch
	None             int            `json:"none"`
	DeadLettered     int            `json:"dead_lettered"`
	Unaccounted      int            `json:"unaccounted"`
	Expected         map[string]int `json:"expected_by_class"`
	Balanced         bool           `json:"balanced"`

	WrongClass           sample         `json:"wrong_class"` // a record whose outcome differs from its class
	DLQByClass           map[string]int `json:"dlq_by_class"`
	ExpectedDLQByClass   map[string]int `json:"expected_dlq_by_class"`
	DLQRecords           int            `json:"dlq_records"`
	DLQDuplicates        int            `json:"dlq_duplicates"`
	DLQOtherStages       map[string]int `json:"dlq_other_stages"`
	DLQOnlyMalformed     bool           `json:"dlq_only_malformed"`
	UnknownObservations  int            `json:"unknown_observations"`
	Observations         int            `json:"observations"`
	VerdictRecords       int            `json:"verdict_records"`
	ExpectedIndicators   int            `json:"expected_indicators"`
	ObservedIndicators   int            `json:"observed_indicators"`
	EnrichedIndicators   int            `json:"enriched_indicators"`
	VerdictIndicators    int            `json:"verdict_indicators"`
	ThreatQIndicators    int            `json:"threatq_indicators"`
	NotObserved          sample         `json:"not_observed"`
	ObservedNotEnriched  sample         `json:"observed_not_enriched"`
	EnrichedNoVerdict    sample         `json:"enriched_no_verdict"`
	VerdictNotInThreatQ  sample         `json:"verdict_not_in_threatq"`
	UnexpectedInThreatQ  sample         `json:"unexpected_in_threatq"`
	StatusNotFromVerdict sample         `json:"status_not_from_last_verdict"`
	Lost                 int            `json:"lost"`
	ReferenceCompared    bool           `json:"reference_compared"`
	ReferenceMismatch    sample         `json:"reference_mismatch"` // status, score or level differs from the no-chaos run
	ReferenceMissing     sample         `json:"reference_missing"`  // in the reference's ThreatQ, not in this run's
	ReferenceExtra       sample         `json:"reference_extra"`    // in this run's ThreatQ, not in the reference's
}

// statusFor maps a verdict action to the ThreatQ status the sink writes for a new indicator
// (the sink's default status map).
func statusFor(action string) string {
	switch action {
	case "review":
		return "Review"
	case "suppress":
		return "Whitelisted"
	default:
		return "Active"
	}
}

// account balances a run. ref is the no-chaos run's ThreatQ state (nil: not compared).
func account(p plan, v pipelineView, ref map[string]tqLite) Accounting {
	a := Accounting{RecordsPlanned: len(p.Class), Expected: map[string]int{}, DLQByClass: map[string]int{},
		ExpectedDLQByClass: p.BadCounts(), DLQRecords: v.DLQRecords, DLQOtherStages: map[string]int{},
		UnknownObservations: v.UnknownObs, Observations: v.Observations, VerdictRecords: v.VerdictCount,
		ExpectedIndicators: len(p.IPs), ObservedIndicators: len(v.ObsValues), EnrichedIndicators: len(v.EnrValues),
		VerdictIndicators: len(v.Verdicts), ThreatQIndicators: len(v.ThreatQ)}
	for c, n := range p.Counts() {
		a.Expected[c.String()] = n
	}
	for k, n := range v.DLQOther {
		a.DLQOtherStages[k] = n
	}
	a.DLQDuplicates = v.DLQRecords - len(v.DLQ)
	positions := make([]rawPos, 0, len(v.Positions))
	for pos := range v.Positions {
		positions = append(positions, pos)
	}
	slices.SortFunc(positions, func(x, y rawPos) int { return v.Positions[x] - v.Positions[y] })
	for _, pos := range positions {
		i := v.Positions[pos]
		if i < 0 || i >= len(p.Class) {
			continue
		}
		a.RecordsIn++
		cl := p.Class[i]
		cls, dead := v.DLQ[pos]
		var got recClass
		switch {
		case v.ObsPos[pos]:
			a.WithObservations++
			got = classObservation
		case dead:
			a.DeadLettered++
			a.DLQByClass[cls]++
			got = classMalformed
			if cl == classMalformed && cls != p.Bad[i] {
				a.WrongClass.add(pos.String() + ": dead letter class " + cls + ", want " + p.Bad[i])
			}
		case cl == classObservation && v.ObsValues[p.IPs[p.Ind[i]]]:
			a.Collapsed++
			got = classObservation
		case cl == classNone:
			a.None++
			got = classNone
		default:
			a.Unaccounted++
			continue
		}
		if got != cl {
			a.WrongClass.add(pos.String() + ": " + cl.String() + " record ended as " + got.String())
		}
	}
	a.Balanced = a.RecordsIn == a.RecordsPlanned && a.Unaccounted == 0 && a.WrongClass.Count == 0 &&
		a.RecordsIn == a.WithObservations+a.Collapsed+a.None+a.DeadLettered
	a.DLQOnlyMalformed = len(v.DLQOther) == 0 && a.DeadLettered == a.Expected[classMalformed.String()] &&
		mapsEqual(a.DLQByClass, a.ExpectedDLQByClass) && len(v.DLQ) == a.DeadLettered

	for _, ip := range p.IPs {
		if !v.ObsValues[ip] {
			a.NotObserved.add(ip)
		}
	}
	for _, ip := range sortedKeys(v.ObsValues) {
		if !v.EnrValues[ip] {
			a.ObservedNotEnriched.add(ip)
		}
	}
	for _, ip := range sortedKeys(v.EnrValues) {
		if _, ok := v.Verdicts[ip]; !ok {
			a.EnrichedNoVerdict.add(ip)
		}
	}
	for _, ip := range sortedKeys(v.Verdicts) {
		tq, ok := v.ThreatQ[ip]
		if !ok {
			a.VerdictNotInThreatQ.add(ip)
			continue
		}
		if want := statusFor(v.Verdicts[ip].Action); tq.Status != want {
			a.StatusNotFromVerdict.add(ip + ": " + tq.Status + ", last verdict " + v.Verdicts[ip].Action + " wants " + want)
		}
	}
	planned := make(map[string]bool, len(p.IPs))
	for _, ip := range p.IPs {
		planned[ip] = true
	}
	missingTQ := 0
	for _, ip := range p.IPs {
		if _, ok := v.ThreatQ[ip]; !ok {
			missingTQ++
		}
	}
	for _, ip := range sortedKeys(v.ThreatQ) {
		if !planned[ip] {
			a.UnexpectedInThreatQ.add(ip)
		}
	}
	if ref != nil {
		a.ReferenceCompared = true
		for _, ip := range sortedKeys(ref) {
			got, ok := v.ThreatQ[ip]
			switch {
			case !ok:
				a.ReferenceMissing.add(ip)
			case got != ref[ip]:
				a.ReferenceMismatch.add(ip + ": " + got.String() + ", reference " + ref[ip].String())
			}
		}
		for _, ip := range sortedKeys(v.ThreatQ) {
			if _, ok := ref[ip]; !ok {
				a.ReferenceExtra.add(ip)
			}
		}
	}
	a.Lost = a.Unaccounted + missingTQ + (a.Expected[classMalformed.String()] - a.DeadLettered)
	if a.Lost < 0 {
		a.Lost = 0
	}
	return a
}

// OK reports whether every check of the accounting holds.
func (a Accounting) OK() bool {
	return a.Lost == 0 && a.Balanced && a.DLQOnlyMalformed && a.UnknownObservations == 0 &&
		a.NotObserved.Count == 0 && a.ObservedNotEnriched.Count == 0 && a.EnrichedNoVerdict.Count == 0 &&
		a.VerdictNotInThreatQ.Count == 0 && a.UnexpectedInThreatQ.Count == 0 && a.StatusNotFromVerdict.Count == 0 &&
		a.ReferenceMismatch.Count == 0 && a.ReferenceMissing.Count == 0 && a.ReferenceExtra.Count == 0
}

// dupPct is the share of writes beyond the baseline, in percent (0 when baseline is 0).
func dupPct(writes, baseline int) float64 {
	if baseline <= 0 || writes <= baseline {
		return 0
	}
	return round2(float64(writes-baseline) * 100 / float64(baseline))
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func (p rawPos) String() string { return itoa(int64(p.P)) + "@" + itoa(p.O) }

func (t tqLite) String() string { return t.Status + "/score " + itoa(int64(t.Score)) + "/" + t.Level }

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
