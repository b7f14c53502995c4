package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// scaleEvent is one membership change.
type scaleEvent struct {
	AtSeconds int      `json:"at_s"` // second of the series it happened in
	What      string   `json:"what"`
	Groups    []string `json:"groups"`
}

// dip is how one group's throughput fell around one membership change.
type dip struct {
	Event            string  `json:"event"`
	Group            string  `json:"group"`
	BeforeRPS        float64 `json:"before_rps"`         // mean of the 5 s before
	MinAfterRPS      float64 `json:"min_after_rps"`      // lowest 5-second mean ending 5..15 s after
	DipPct           float64 `json:"dip_pct"`            // (before - min after) / before
	SecondsBelowHalf int     `json:"windows_below_half"` // 5-second means after that were below half of before
	AfterRPS         float64 `json:"after_rps"`          // mean of those 5-second means
}

// providerRatio is one provider route's calls per unique indicator.
type providerRatio struct {
	Calls     int64   `json:"calls"`
	Unique    int     `json:"unique_indicators"`
	Ratio     float64 `json:"calls_per_unique"`
	Over1     int     `json:"called_more_than_once"`
	NotCalled int     `json:"not_called"`
}

// scalePass is one protocol's scale-out run.
type scalePass struct {
	Protocol       string                   `json:"group_protocol"`
	OK             bool                     `json:"ok"`
	Failures       []string                 `json:"failures,omitempty"`
	Records        int                      `json:"records"`
	RatePerSecond  float64                  `json:"rate_per_s"`
	StreamSeconds  float64                  `json:"stream_s"`
	DrainSeconds   float64                  `json:"drain_s"`
	Events         []scaleEvent             `json:"events"`
	Series         map[string][]float64     `json:"committed_per_second"` // per group, records committed in each second
	MeanRPS        map[string]float64       `json:"mean_rps"`
	Dips           []dip                    `json:"dips"`
	ProviderCalls  map[string]providerRatio `json:"provider_calls"`
	ThreatQ        tqStats                  `json:"threatq"`
	UnexpectedExit map[string]int           `json:"unexpected_exits"`
	Accounting     Accounting               `json:"accounting"`
}

// ScaleReport is bench/results/scaleout-<date>.json.
type ScaleReport struct {
	Kind    string      `json:"kind"`
	Date    string      `json:"date"`
	OK      bool        `json:"ok"`
	Machine machineInfo `json:"machine"`
	Passes  []scalePass `json:"passes"`
	Notes   []string    `json:"notes,omitempty"`
}

// dipWindow smooths the per-second series: services commit once per batch (up to
// VIGIL_MAX_BATCH records), so single seconds swing between 0 and a whole batch.
const dipWindow = 5

// dips measures every group's throughput around every event on trailing 5-second means.
// series[g][s] is what group g committed in second s. Before is the mean of the 5 s before the
// event; the windows after are the 5-second means ending 5..15 s after it.
func dips(series map[string][]float64, evs []scaleEvent) []dip {
	var out []dip
	for _, ev := range evs {
		for _, g := range ev.Groups {
			s := series[g]
			if ev.AtSeconds < 1 || ev.AtSeconds >= len(s) {
				continue
			}
			before := mean(s[max(0, ev.AtSeconds-dipWindow):ev.AtSeconds])
			var after []float64
			for end := ev.AtSeconds + dipWindow; end <= min(len(s), ev.AtSeconds+3*dipWindow); end++ {
				after = append(after, mean(s[end-dipWindow:end]))
			}
			d := dip{Event: ev.What, Group: g, BeforeRPS: round2(before), MinAfterRPS: round2(minOf(after)), AfterRPS: round2(mean(after))}
			if before > 0 {
				d.DipPct = round2(max(0, before-minOf(after)) * 100 / before)
				for _, v := range after {
					if v < before/2 {
						d.SecondsBelowHalf++
					}
				}
			}
			out = append(out, d)
		}
	}
	return out
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = min(m, x)
	}
	return m
}

// providerRoutes are the emulator routes enrich calls for an IPv4.
var providerRoutes = []string{"criminalip", "internetdb", "abuseipdb", "greynoise"}

func providerRatios(st providerStats, ips []string) map[string]providerRatio {
	out := map[string]providerRatio{}
	for _, r := range providerRoutes {
		rs := st.Routes[r]
		pr := providerRatio{Calls: rs.Calls, Unique: len(ips)}
		for _, ip := range ips {
			switch n := rs.ByIndicator[ip]; {
			case n == 0:
				pr.NotCalled++
			case n > 1:
				pr.Over1++
			}
		}
		if pr.Unique > 0 {
			pr.Ratio = float64(int64(float64(pr.Calls)/float64(pr.Unique)*10000+0.5)) / 10000
		}
		out[r] = pr
	}
	return out
}

// scaleout is `vigil-chaos scaleout`.
func (h *harness) scaleout(ctx context.Context) error {
	o := h.o
	skip, err := skipper()
	if err != nil {
		return err
	}
	pl, err := makePlan(genConfig{Records: o.Records, Indicators: o.Indicators, Malformed: o.Malformed, None: o.None, Seed: o.Seed}, skip)
	if err != nil {
		return err
	}
	rep := ScaleReport{Kind: "scaleout", Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), OK: true}
	for i, proto := range o.Protocols {
		// fresh addresses per pass: the enrichment cache of one pass must not serve the next
		ppl := pl
		if i > 0 {
			if ppl, err = makePlan(genConfig{Records: o.Records, Indicators: o.Indicators, Malformed: o.Malformed, None: o.None, Seed: o.Seed + uint32(i)*7919}, skip); err != nil {
				return err
			}
		}
		sp, err := h.scalePass(ctx, proto, ppl)
		if err != nil {
			return fmt.Errorf("scaleout %s: %w", proto, err)
		}
		rep.Passes = append(rep.Passes, sp)
		rep.OK = rep.OK && sp.OK
	}
	rep.Notes = append(rep.Notes,
		"throughput is each group's committed offsets summed over its input partitions, sampled every second (kadm)",
		"scale-out adds two enrich and two correlate replicas (separate processes, same group, own ops ports); scale-in stops the newest of each with SIGTERM",
		"a group can only go as fast as its input arrives: enrich and correlate show a dip only when they had a backlog")
	path := filepath.Join(o.ResultsDir, "scaleout-"+time.Now().Format("2006-01-02")+".json")
	if err := writeJSON(path, rep); err != nil {
		return err
	}
	printScale(os.Stdout, rep, path)
	if !rep.OK {
		return ErrLoss
	}
	return nil
}

// redoDips recomputes the dips of a scale-out result from its per-second series.
func redoDips(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read result: %w", err)
	}
	var rep ScaleReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	for i := range rep.Passes {
		rep.Passes[i].Dips = dips(rep.Passes[i].Series, rep.Passes[i].Events)
	}
	if err := writeJSON(path, rep); err != nil {
		return err
	}
	printScale(os.Stdout, rep, path)
	return nil
}

func (h *harness) scalePass(ctx context.Context, proto string, pl plan) (scalePass, error) {
	o := h.o
	sp := scalePass{Protocol: proto, Records: len(pl.Class), RatePerSecond: o.Rate, Series: map[string][]float64{}, MeanRPS: map[string]float64{}}
	stamp := fmt.Sprintf("%x", time.Now().Unix())
	p, err := h.startPipeline(ctx, "scale-"+proto, "scale-"+proto+"-"+stamp, 10, proto)
	if err != nil {
		return sp, err
	}
	defer p.stop()
	pr, err := h.newProducer()
	if err != nil {
		return sp, err
	}
	defer pr.cl.Close()
	streamFor := time.Duration(float64(len(pl.Class)) / o.Rate * float64(time.Second))
	addAt, removeAt := streamFor*3/10, streamFor*65/100
	h.log.Info("scale-out pass", "protocol", proto, "records", len(pl.Class), "rate", o.Rate, "add_at", addAt, "remove_at", removeAt)
	start := time.Now()
	streamErr := make(chan error, 1)
	go func() { streamErr <- pr.stream(ctx, p.t.Raw, pl, o.Rate) }()
	streaming, added, removed := true, false, false
	var streamEnd time.Time
	prev := map[string]int64{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stable, lastWrites := 0, -1
	for sec := 0; ; sec++ {
		select {
		case <-ctx.Done():
			return sp, ctx.Err()
		case err := <-streamErr:
			if err != nil {
				return sp, err
			}
			streaming, streamEnd = false, time.Now()
			sp.StreamSeconds = round2(streamEnd.Sub(start).Seconds())
			<-tick.C
		case <-tick.C:
		}
		p.reviveExited()
		el := time.Since(start)
		if !added && el >= addAt {
			added = true
			for range 2 {
				for _, svc := range []string{"enrich", "correlate"} {
					if _, err := p.addReplica(svc); err != nil {
						return sp, err
					}
				}
			}
			sp.Events = append(sp.Events, scaleEvent{AtSeconds: len(sp.Series["enrich"]), What: "add 2 enrich + 2 correlate replicas (1 -> 3)", Groups: []string{"enrich", "correlate", "sink"}})
			h.log.Info("scaled out", "at", el.Round(time.Second))
		}
		if !removed && el >= removeAt {
			removed = true
			for _, svc := range []string{"enrich", "correlate"} {
				if err := p.remove(svc); err != nil {
					return sp, err
				}
			}
			sp.Events = append(sp.Events, scaleEvent{AtSeconds: len(sp.Series["enrich"]), What: "remove 1 enrich + 1 correlate replica (3 -> 2)", Groups: []string{"enrich", "correlate", "sink"}})
			h.log.Info("scaled in", "at", time.Since(start).Round(time.Second))
		}
		pos, err := p.positions(ctx)
		if err != nil {
			h.log.Warn("positions", "err", err)
			for _, svc := range services {
				sp.Series[svc] = append(sp.Series[svc], 0)
			}
			continue
		}
		for _, svc := range services {
			sp.Series[svc] = append(sp.Series[svc], float64(pos[svc].Committed-prev[svc]))
			prev[svc] = pos[svc].Committed
		}
		if streaming || !removed {
			continue
		}
		st, err := p.threatQStats(ctx)
		if err != nil {
			return sp, err
		}
		if drained(pos, int64(len(pl.Class))) && st.Writes == lastWrites {
			stable++
		} else {
			stable = 0
		}
		lastWrites = st.Writes
		if stable >= 2 {
			sp.DrainSeconds = round2(time.Since(streamEnd).Seconds() - 2)
			break
		}
		if time.Since(streamEnd) > o.DrainTimeout {
			return sp, fmt.Errorf("%w after %s: %v", ErrNotDrained, o.DrainTimeout, lagText(pos))
		}
	}
	for _, svc := range services {
		sp.MeanRPS[svc] = round2(mean(sp.Series[svc]))
	}
	sp.Dips = dips(sp.Series, sp.Events)
	sp.UnexpectedExit = p.exits
	var ps providerStats
	if err := h.getJSON(ctx, "http://"+p.prov.Ops+"/_emulator/stats", &ps); err != nil {
		return sp, err
	}
	sp.ProviderCalls = providerRatios(ps, pl.IPs)
	if sp.ThreatQ, err = p.threatQStats(ctx); err != nil {
		return sp, err
	}
	var v pipelineView
	v.Positions = pr.positions()
	if v.ThreatQ, err = p.threatQState(ctx); err != nil {
		return sp, err
	}
	if err := collect(ctx, h.kopts, h.adm, h.serde, p.t, &v); err != nil {
		return sp, err
	}
	sp.Accounting = account(pl, v, nil)
	sp.Failures = chaosFailures(ChaosReport{Accounting: sp.Accounting})
	for r, pc := range sp.ProviderCalls {
		if pc.Ratio != 1.0 || pc.Over1 > 0 || pc.NotCalled > 0 {
			sp.Failures = append(sp.Failures, fmt.Sprintf("provider %s: %.4f calls per unique indicator (%d more than once, %d never)", r, pc.Ratio, pc.Over1, pc.NotCalled))
		}
	}
	sp.OK = len(sp.Failures) == 0
	h.log.Info("scale-out pass done", "protocol", proto, "ok", sp.OK, "failures", strings.Join(sp.Failures, "; "))
	return sp, nil
}
