package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/indicator"
)

// happened is one fault as carried out.
type happened struct {
	AtSeconds   float64 `json:"at_s"`
	Kind        string  `json:"kind"`
	Target      string  `json:"target,omitempty"`
	TookSeconds float64 `json:"took_s,omitempty"`
	Err         string  `json:"err,omitempty"`
}

// passResult is one pipeline run over the plan.
type passResult struct {
	Name           string           `json:"name"`
	Protocol       string           `json:"group_protocol"`
	RatePerSecond  float64          `json:"rate_per_s"` // 0: as fast as the producer goes
	StreamSeconds  float64          `json:"stream_s"`
	DrainSeconds   float64          `json:"drain_s"` // from the later of stream end and last fault to drained
	TotalSeconds   float64          `json:"total_s"`
	MaxLag         map[string]int64 `json:"max_lag"`
	ThreatQ        tqStats          `json:"threatq"`
	Kills          map[string]int   `json:"kills"`
	UnexpectedExit map[string]int   `json:"unexpected_exits"`
	Timeline       []happened       `json:"timeline,omitempty"`

	view pipelineView
	tq   map[string]tqLite
}

// skipper says which addresses the generator must not use: internal networks and anything on
// a shipped allow-list (those would be suppressed or skipped, not enriched).
func skipper() (matcher, error) {
	set, err := allowlist.Load(allowlist.Config{Warninglists: []string{allowlist.All}})
	if err != nil {
		return nil, fmt.Errorf("allow-lists: %w", err)
	}
	nets := indicator.DefaultNets()
	return func(a netip.Addr) bool {
		if nets.Contains(a) || !a.IsGlobalUnicast() {
			return true
		}
		_, hit := set.Match(events.Indicator{Type: events.TypeIPv4, Value: a.String()})
		return hit
	}, nil
}

// runPass starts a pipeline, streams the plan while carrying out the schedule, waits for the
// drain and reads everything back.
func (h *harness) runPass(ctx context.Context, name, suffix string, redisDB int, protocol string, pl plan, rate float64, sched []fault) (passResult, error) {
	res := passResult{Name: name, Protocol: protocol, RatePerSecond: round2(rate), MaxLag: map[string]int64{}}
	began := time.Now()
	p, err := h.startPipeline(ctx, name, suffix, redisDB, protocol)
	if err != nil {
		return res, err
	}
	defer p.stop()
	pr, err := h.newProducer()
	if err != nil {
		return res, err
	}
	defer pr.cl.Close()
	h.log.Info("streaming", "pass", name, "records", len(pl.Class), "rate", round2(rate), "faults", len(sched))

	start := time.Now()
	streamErr := make(chan error, 1)
	go func() { streamErr <- pr.stream(ctx, p.t.Raw, pl, rate) }()
	streaming := true
	var streamEnd time.Time

	type infraDone struct {
		i   int
		err error
	}
	infra := make(chan infraDone, 1)
	infraBusy := false
	next := 0
	var lastFault time.Time
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastPosAt time.Time
	stableTicks, lastWrites := 0, -1
	var drainDeadline time.Time
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-streamErr:
			if err != nil {
				return res, fmt.Errorf("stream: %w", err)
			}
			streaming, streamEnd = false, time.Now()
			res.StreamSeconds = round2(streamEnd.Sub(start).Seconds())
			h.log.Info("stream done", "pass", name, "records", pr.acked.Load(), "seconds", res.StreamSeconds)
		case d := <-infra:
			infraBusy = false
			lastFault = time.Now()
			res.Timeline[d.i].TookSeconds = round2(time.Since(start).Seconds() - res.Timeline[d.i].AtSeconds)
			if d.err != nil {
				res.Timeline[d.i].Err = d.err.Error()
				h.log.Error("fault", "kind", res.Timeline[d.i].Kind, "err", d.err)
			}
			h.log.Info("fault done", "kind", res.Timeline[d.i].Kind, "took_s", res.Timeline[d.i].TookSeconds)
		case <-tick.C:
		}
		el := time.Since(start)
		for next < len(sched) && sched[next].At <= el && !infraBusy {
			f := sched[next]
			next++
			hp := happened{AtSeconds: round2(el.Seconds()), Kind: string(f.Kind), Target: f.Target}
			res.Timeline = append(res.Timeline, hp)
			idx := len(res.Timeline) - 1
			h.log.Info("fault", "at", el.Round(time.Second), "kind", f.Kind, "target", f.Target)
			var ferr error
			switch f.Kind {
			case faultKill:
				ferr = p.kill(f.Target)
				lastFault = time.Now()
			case faultThreatQDown, faultThreatQUp:
				ferr = p.threatQDown(ctx, f.Kind == faultThreatQDown)
				lastFault = time.Now()
			case faultRedisRestart, faultKafkaRestart:
				script := "scripts/redis.sh"
				if f.Kind == faultKafkaRestart {
					script = "scripts/kafka/kafka.sh"
				}
				infraBusy = true
				go func() { infra <- infraDone{idx, h.script(ctx, script, "restart")} }()
			}
			if ferr != nil {
				res.Timeline[idx].Err = ferr.Error()
				h.log.Error("fault", "kind", f.Kind, "err", ferr)
			}
		}
		p.reviveExited()
		if time.Since(lastPosAt) < time.Second && !(!streaming && next == len(sched) && !infraBusy) {
			continue
		}
		lastPosAt = time.Now()
		pos, err := p.positions(ctx)
		if err != nil {
			continue // the broker may be restarting
		}
		for svc, gp := range pos {
			res.MaxLag[svc] = max(res.MaxLag[svc], gp.Lag())
		}
		if streaming || next < len(sched) || infraBusy {
			continue
		}
		settled := streamEnd
		if lastFault.After(settled) {
			settled = lastFault
		}
		if drainDeadline.IsZero() {
			drainDeadline = settled.Add(h.o.DrainTimeout)
		}
		st, err := p.threatQStats(ctx)
		if err != nil {
			return res, err
		}
		if drained(pos, int64(len(pl.Class))) && st.Writes == lastWrites {
			stableTicks++
		} else {
			stableTicks = 0
		}
		lastWrites = st.Writes
		if stableTicks >= 8 { // ~2 s with every lag 0 and no ThreatQ write
			res.DrainSeconds = round2(time.Since(settled).Seconds() - 1.6)
			break
		}
		if time.Now().After(drainDeadline) {
			return res, fmt.Errorf("%w after %s: %v", ErrNotDrained, h.o.DrainTimeout, lagText(pos))
		}
	}
	res.TotalSeconds = round2(time.Since(began).Seconds())
	res.Kills, res.UnexpectedExit = p.kills, p.exits
	if res.ThreatQ, err = p.threatQStats(ctx); err != nil {
		return res, err
	}
	if res.tq, err = p.threatQState(ctx); err != nil {
		return res, err
	}
	res.view.Positions = pr.positions()
	res.view.ThreatQ = res.tq
	if err := collect(ctx, h.kopts, h.adm, h.serde, p.t, &res.view); err != nil {
		return res, err
	}
	h.log.Info("pass done", "pass", name, "drain_s", res.DrainSeconds, "threatq", res.ThreatQ.Indicators, "writes", res.ThreatQ.Writes)
	return res, nil
}

func lagText(pos map[string]groupPosition) string {
	var parts []string
	for _, svc := range services {
		parts = append(parts, fmt.Sprintf("%s lag %d", svc, pos[svc].Lag()))
	}
	return strings.Join(parts, ", ")
}

// ChaosReport is bench/results/chaos-<date>.json.
type ChaosReport struct {
	Kind     string      `json:"kind"`
	Date     string      `json:"date"`
	Quick    bool        `json:"quick"`
	OK       bool        `json:"ok"`
	Failures []string    `json:"failures,omitempty"`
	Machine  machineInfo `json:"machine"`
	Input    struct {
		Records    int            `json:"records"`
		Indicators int            `json:"indicators"`
		ByClass    map[string]int `json:"by_class"`
		BadClasses map[string]int `json:"malformed_by_expected_class"`
		Seed       uint32         `json:"seed"`
	} `json:"input"`
	Schedule           []fault     `json:"schedule"`
	Reference          *passResult `json:"reference,omitempty"`
	Chaos              passResult  `json:"chaos"`
	DuplicateWritesPct float64     `json:"duplicate_writes_pct"` // ThreatQ writes beyond the reference (or beyond one per indicator)
	DuplicateBaseline  string      `json:"duplicate_baseline"`
	Accounting         Accounting  `json:"accounting"`
	ReferenceAccount   *Accounting `json:"reference_accounting,omitempty"`
	Notes              []string    `json:"notes,omitempty"`
}

type machineInfo struct {
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
	OS   string `json:"os"`
}

func machine() machineInfo {
	return machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
}

// chaos is `vigil-chaos chaos`.
func (h *harness) chaos(ctx context.Context) error {
	o := h.o
	skip, err := skipper()
	if err != nil {
		return err
	}
	pl, err := makePlan(genConfig{Records: o.Records, Indicators: o.Indicators, Malformed: o.Malformed, None: o.None, Seed: o.Seed}, skip)
	if err != nil {
		return err
	}
	sched, err := buildSchedule(scheduleParams{Duration: o.Duration, Services: services, KillsEach: o.KillsEach,
		Outage: o.Outage, Redis: true, Kafka: true, MinSpacing: 3 * time.Second})
	if err != nil {
		return err
	}
	rep := ChaosReport{Kind: "chaos", Date: time.Now().UTC().Format(time.RFC3339), Quick: o.Quick, Machine: machine(), Schedule: sched}
	rep.Input.Records, rep.Input.Indicators, rep.Input.Seed = o.Records, len(pl.IPs), o.Seed
	rep.Input.ByClass, rep.Input.BadClasses = map[string]int{}, pl.BadCounts()
	for c, n := range pl.Counts() {
		rep.Input.ByClass[c.String()] = n
	}
	stamp := fmt.Sprintf("%x", time.Now().Unix())
	var ref map[string]tqLite
	if o.Reference {
		r, err := h.runPass(ctx, "reference", "chaosref-"+stamp, 11, "classic", pl, 0, nil)
		if err != nil {
			return fmt.Errorf("reference run: %w", err)
		}
		ra := account(pl, r.view, nil)
		rep.Reference, rep.ReferenceAccount, ref = &r, &ra, r.tq
		if !ra.OK() {
			rep.Failures = append(rep.Failures, "the no-chaos reference run itself did not balance")
		}
	}
	rate := float64(o.Records) / o.Duration.Seconds()
	c, err := h.runPass(ctx, "chaos", "chaos-"+stamp, 12, "classic", pl, rate, sched)
	if err != nil {
		return fmt.Errorf("chaos run: %w", err)
	}
	rep.Chaos = c
	rep.Accounting = account(pl, c.view, ref)
	if rep.Reference != nil {
		rep.DuplicateWritesPct, rep.DuplicateBaseline = dupPct(c.ThreatQ.Writes, rep.Reference.ThreatQ.Writes),
			fmt.Sprintf("reference run: %d writes", rep.Reference.ThreatQ.Writes)
	} else {
		rep.DuplicateWritesPct, rep.DuplicateBaseline = dupPct(c.ThreatQ.Writes, len(pl.IPs)), "one write per indicator"
	}
	rep.Failures = append(rep.Failures, chaosFailures(rep)...)
	rep.OK = len(rep.Failures) == 0
	rep.Notes = append(rep.Notes,
		"records are Suricata EVE alert/flow lines with one public IPv4 each; per indicator the event type, action, severity and asset are fixed and sightings stay below 10, so its verdict does not depend on how much correlation state survived the Redis restart",
		"collapsed = records ingest merged into another observation of the same indicator, asset and action in one batch (Sighting.Count); they have no observation of their own",
		"Redis restarts lose every key (scripts/redis.sh runs without persistence): enrichment cache, correlation windows, sink fingerprints")
	name := "chaos-" + time.Now().Format("2006-01-02")
	if o.Quick {
		name += "-quick"
	}
	if err := writeJSON(filepath.Join(o.ResultsDir, name+".json"), rep); err != nil {
		return err
	}
	printChaos(os.Stdout, rep, filepath.Join(o.ResultsDir, name+".json"))
	if !rep.OK {
		return fmt.Errorf("%w: %s", ErrLoss, strings.Join(rep.Failures, "; "))
	}
	return nil
}

// chaosFailures lists every check the report fails.
func chaosFailures(r ChaosReport) []string {
	var out []string
	a := r.Accounting
	if a.Lost > 0 {
		out = append(out, fmt.Sprintf("lost %d", a.Lost))
	}
	if !a.Balanced {
		out = append(out, fmt.Sprintf("accounting does not balance: in %d of %d = %d with observations + %d collapsed + %d none + %d dead-lettered, %d unaccounted, %d in the wrong class",
			a.RecordsIn, a.RecordsPlanned, a.WithObservations, a.Collapsed, a.None, a.DeadLettered, a.Unaccounted, a.WrongClass.Count))
	}
	if !a.DLQOnlyMalformed {
		out = append(out, fmt.Sprintf("dead letters are not exactly the malformed records: %v (want %v), other stages %v", a.DLQByClass, a.ExpectedDLQByClass, a.DLQOtherStages))
	}
	checks := []struct {
		name string
		s    sample
	}{{"indicators never observed", a.NotObserved}, {"observed but not enriched", a.ObservedNotEnriched},
		{"enriched without a verdict", a.EnrichedNoVerdict}, {"verdict not in ThreatQ", a.VerdictNotInThreatQ},
		{"unexpected in ThreatQ", a.UnexpectedInThreatQ}, {"ThreatQ status differs from the last verdict", a.StatusNotFromVerdict},
		{"differs from the reference", a.ReferenceMismatch}, {"missing against the reference", a.ReferenceMissing},
		{"extra against the reference", a.ReferenceExtra}}
	for _, c := range checks {
		if c.s.Count > 0 {
			out = append(out, fmt.Sprintf("%s: %d (%s)", c.name, c.s.Count, strings.Join(c.s.Some, ", ")))
		}
	}
	if a.UnknownObservations > 0 {
		out = append(out, fmt.Sprintf("%d observations of raw positions never produced", a.UnknownObservations))
	}
	for _, h := range r.Chaos.Timeline {
		if h.Err != "" {
			out = append(out, fmt.Sprintf("fault %s %s failed: %s", h.Kind, h.Target, h.Err))
		}
	}
	for _, svc := range services {
		if n := r.Chaos.Kills[svc]; n < countKills(r.Schedule, svc) {
			out = append(out, fmt.Sprintf("%s killed %d times, schedule says %d", svc, n, countKills(r.Schedule, svc)))
		}
	}
	return out
}

func countKills(s []fault, svc string) int {
	n := 0
	for _, f := range s {
		if f.Kind == faultKill && f.Target == svc {
			n++
		}
	}
	return n
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
