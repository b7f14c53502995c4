package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pipeline is the four services running on one topic set.
type pipeline struct {
	t     topics
	procs map[string]*proc
	watch []stageWatch
}

// startPipeline starts enrich, correlate and sink, waits for them, then starts ingest (whose
// input may already be filled) so the downstream stages are consuming before records arrive.
func (b *bench) startPipeline(ctx context.Context, tag string, t topics, o svcOpts) (*pipeline, error) {
	pl := &pipeline{t: t, procs: map[string]*proc{}}
	inputs := map[string]string{"ingest": t.Raw, "enrich": t.Observed, "correlate": t.Enriched, "sink": t.Verdicts}
	for _, svc := range []string{"enrich", "correlate", "sink", "ingest"} {
		g := b.group(tag, svc)
		p, err := b.startService(svc, g, t, o)
		if err != nil {
			b.stopPipeline(pl)
			return nil, err
		}
		pl.procs[svc] = p
		// /readyz turns true only after a poll returned records, so an idle stage is never
		// "ready": wait for liveness and for the consumer group to be stable instead.
		if err := p.waitHTTP(ctx, "/healthz", 60*time.Second); err != nil {
			b.stopPipeline(pl)
			return nil, err
		}
		if err := b.br.waitGroupStable(ctx, g, 60*time.Second, p.exitErr); err != nil {
			b.stopPipeline(pl)
			return nil, fmt.Errorf("%s: %w (log: %s)", svc, err, p.logTail(3))
		}
	}
	for _, svc := range serviceNames {
		pl.watch = append(pl.watch, stageWatch{group: b.groupOf(tag, svc), topic: inputs[svc]})
	}
	return pl, nil
}

func (b *bench) groupOf(tag, svc string) string { return b.name("g", tag, svc) }

// alive reports the first pipeline service that exited.
func (pl *pipeline) alive() error {
	for _, svc := range serviceNames {
		if p := pl.procs[svc]; p != nil && p.exited() {
			return fmt.Errorf("%s exited: %s", svc, p.logTail(5))
		}
	}
	return nil
}

// stopPipeline reads each service's peak RSS and stops it.
func (b *bench) stopPipeline(pl *pipeline) map[string]float64 {
	rss := map[string]float64{}
	for _, svc := range serviceNames {
		p := pl.procs[svc]
		if p == nil {
			continue
		}
		if err := b.stopProc(p); err != nil {
			b.log.Warn("stop", "service", svc, "err", err)
		}
		rss[svc] = p.peakMiB
	}
	return rss
}

// runE2E measures the sustained end-to-end rate over N pre-filled raw records, then (when the
// latency phase is selected) the latency at a fixed rate on the same running services.
func (b *bench) runE2E(ctx context.Context) error {
	st := &b.rep.E2E
	st.Error = ""
	t := b.topicSet("e2e")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	pool := b.pool(b.cfg.Distinct)
	if b.cfg.Phases["e2e"] {
		mix, err := newRecordMix(b.cfg.Mix, b.cfg.ZipfS, len(pool), b.seed)
		if err != nil {
			return b.fail(st, err)
		}
		used, err := b.fillRawMix(ctx, t.Raw, pool, b.cfg.E2ERecords, mix)
		if err != nil {
			return b.fail(st, err)
		}
		b.extraE2E("mix", mix.String())
		b.extraE2E("distinct_indicators", used)
	} else {
		st.Error = "phase not selected"
	}
	var before threatqStats
	if err := getJSON(ctx, "http://"+b.tqEmu.opsAddr+"/_emulator/stats", &before); err != nil {
		return b.fail(st, err)
	}
	pl, err := b.startPipeline(ctx, "e2e", t, svcOpts{})
	if err != nil {
		return b.fail(st, err)
	}
	defer func() {
		rss := b.stopPipeline(pl)
		for svc, v := range rss {
			b.extraE2E(svc+"_rss_mib", round(v, 1))
		}
	}()
	if b.cfg.Phases["e2e"] {
		cpu := b.cpuSnapshot(pl)
		d, err := b.br.waitDrained(ctx, pl.watch, drainOpts{timeout: b.cfg.DrainTimeout, alive: pl.alive})
		b.extraE2E("cpu_seconds", cpu.since())
		b.extraE2E("stage_last_commit_s", stageSeconds(d))
		b.extraE2E("committed", stageCounts(d))
		if err != nil {
			return b.fail(st, err)
		}
		rps, ok := d.RPS()
		if !ok {
			return b.fail(st, errors.New("empty timing window"))
		}
		st.RPS, st.Records, st.Seconds = ptr(round(rps, 0)), d.Records(), round(d.Seconds(), 2)
		b.rep.E2ERPS = st.RPS
		var after threatqStats
		if err := getJSON(ctx, "http://"+b.tqEmu.opsAddr+"/_emulator/stats", &after); err != nil {
			return err
		}
		verdicts, err := b.br.endOffsets(ctx, t.Verdicts)
		if err != nil {
			return err
		}
		obs, _ := b.br.endOffsets(ctx, t.Observed)
		calls, total := tqDelta(before, after)
		b.extraE2E("observations", obs)
		b.extraE2E("verdicts", verdicts)
		if verdicts > 0 {
			b.rep.ThreatQPer1k = ptr(round(float64(total)*1000/float64(verdicts), 2))
		}
		b.rep.ThreatQDetail = map[string]any{"source": "end-to-end run", "verdicts": verdicts, "calls": total,
			"writes": after.Writes - before.Writes, "by_route": calls, "deleted_attributes_by_name": mapDelta(before.AttributesDeleted, after.AttributesDeleted)}
		b.log.Info("e2e", "rps", round(rps, 0), "verdicts", verdicts, "threatq_calls", total)
	}
	if b.cfg.Phases["latency"] {
		if err := b.runLatency(ctx, pl); err != nil {
			b.rep.Latency.Error = err.Error()
			return err
		}
	}
	return nil
}

func (b *bench) extraE2E(k string, v any) { b.extra(&b.rep.E2E, k, v) }

// runLatency produces raw records at a steady rate, their public addresses drawn by the run's
// record mix from a pool no earlier phase used, so every indicator is new to the pipeline at its
// first record. Latency is measured per indicator from the production time of its first record
// to its creation in the ThreatQ emulator (the time to triage a newly seen indicator), and the
// sink's triage-latency histogram is read for comparison.
func (b *bench) runLatency(ctx context.Context, pl *pipeline) error {
	lat := &b.rep.Latency
	rate := b.cfg.LatencyRate
	n := int(float64(rate) * b.cfg.LatencyDuration.Seconds())
	pool := b.pool(min(b.cfg.Distinct, n))
	mix, err := newRecordMix(b.cfg.Mix, b.cfg.ZipfS, len(pool), b.seed+1)
	if err != nil {
		return err
	}
	lat.Method = fmt.Sprintf("per new indicator: ThreatQ emulator creation time (full precision) minus the production time of the first raw record carrying it; records drawn by %s (none seen before)", mix)
	sinkOps := pl.procs["sink"].opsAddr
	histBefore, histOK, herr := b.scrapeTriage(ctx, sinkOps)

	produced := make(map[string]time.Time, len(pool))
	var failed atomic.Pointer[error]
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	i := 0
	for i < n {
		select {
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		case <-tick.C:
		}
		due := min(n, int(time.Since(start).Seconds()*float64(rate)))
		for ; i < due; i++ {
			now := time.Now()
			ip := pool[mix.pick(i)]
			if _, ok := produced[ip]; !ok {
				produced[ip] = now
			}
			v := b.templates[i%len(b.templates)].Render(make([]byte, 0, 512), now, ip)
			b.br.cl.Produce(ctx, &kgo.Record{Topic: pl.t.Raw, Value: v, Timestamp: now}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	if err := b.br.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if p := failed.Load(); p != nil {
		return fmt.Errorf("produce: %w", *p)
	}
	lat.Produced = n
	lat.AchievedRate = round(float64(n)/elapsed.Seconds(), 0)
	if _, err := b.br.waitDrained(ctx, pl.watch, drainOpts{timeout: b.cfg.LatencyDrain, alive: pl.alive}); err != nil {
		lat.Error = fmt.Sprintf("pipeline did not drain %s after the last record: %v", b.cfg.LatencyDrain, err)
	}

	// exact per-indicator latencies from the emulator
	var dump struct {
		Indicators []struct {
			Value        string    `json:"value"`
			CreatedExact time.Time `json:"created_exact"` // full precision; created_at has ThreatQ's one-second resolution
		} `json:"indicators"`
	}
	if err := getJSON(ctx, "http://"+b.tqEmu.opsAddr+"/_emulator/dump", &dump); err != nil {
		return err
	}
	distinct := len(produced)
	samples := make([]float64, 0, distinct)
	acked := 0
	for _, ind := range dump.Indicators {
		if t0, ok := produced[ind.Value]; ok {
			if ind.CreatedExact.IsZero() {
				return fmt.Errorf("threatq emulator dump: %s has no created_exact (emulator older than the bench?)", ind.Value)
			}
			samples = append(samples, float64(ind.CreatedExact.Sub(t0))/float64(time.Millisecond))
			acked++
			delete(produced, ind.Value)
		}
	}
	for range produced {
		samples = append(samples, math.Inf(1)) // never reached ThreatQ
	}
	lat.Acked = acked
	lat.Indicators = distinct
	if p50, ok := percentile(samples, 0.50); ok && !math.IsInf(p50, 1) {
		lat.P50 = ptr(round(p50, 1))
	}
	if p99, ok := percentile(samples, 0.99); ok && !math.IsInf(p99, 1) {
		lat.P99 = ptr(round(p99, 1))
	} else if ok {
		lat.Error = fmt.Sprintf("%d of %d new indicators never reached ThreatQ; p99 unknown", distinct-acked, distinct)
	}

	// the sink's own histogram (coarse buckets), for comparison
	histAfter, _, herr2 := b.scrapeTriage(ctx, sinkOps)
	switch {
	case herr != nil || herr2 != nil:
		lat.HistNote = fmt.Sprintf("(scrape failed: %v)", errors.Join(herr, herr2))
	case !histOK:
		lat.HistNote = "(vigil_sink_triage_latency_seconds not exported)"
	default:
		h := histAfter.sub(histBefore)
		if q, ok := h.quantile(0.50); ok {
			lat.HistP50 = ptr(round(q*1000, 0))
		}
		if q, ok := h.quantile(0.99); ok {
			lat.HistP99 = ptr(round(q*1000, 0))
		}
		lat.HistNote = fmt.Sprintf("(interpolated in buckets %s s; %.0f observations)", bucketBounds(h), h.count)
	}
	b.log.Info("latency", "p50_ms", fmtNum(lat.P50, 0), "p99_ms", fmtNum(lat.P99, 0), "acked", acked, "produced", n,
		"hist_p50_ms", fmtNum(lat.HistP50, 0), "hist_p99_ms", fmtNum(lat.HistP99, 0))
	return nil
}

func bucketBounds(h histogram) string {
	var buf bytes.Buffer
	for i, bk := range h.buckets {
		if math.IsInf(bk.le, 1) {
			continue
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, "%g", bk.le)
	}
	return buf.String()
}

func (b *bench) scrapeTriage(ctx context.Context, ops string) (histogram, bool, error) {
	body, err := getBody(ctx, "http://"+ops+"/metrics", 10*time.Second)
	if err != nil {
		return histogram{}, false, err
	}
	return parseHistogram(bytes.NewReader(body), "vigil_sink_triage_latency_seconds")
}

// runRSS runs the four services over many distinct indicators (one per raw record) for at most
// -rss-timeout and reads each one's peak RSS (VmHWM) before stopping it; VmRSS is sampled every
// 5 s with the records each stage has committed, so growth can be seen against volume.
func (b *bench) runRSS(ctx context.Context) error {
	st := &b.rep.RSSRun
	st.Error = ""
	n := b.cfg.RSSDistinct
	pool := b.pool(n)
	t := b.topicSet("rss")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillRaw(ctx, t.Raw, pool, n); err != nil {
		return b.fail(st, err)
	}
	o := svcOpts{offlineOnly: b.cfg.RSSProviders == "offline"}
	if o.offlineOnly {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("peak-RSS run: enrich ran with the offline provider only (HTTP providers disabled; -rss-providers=all includes them, at ~4 emulated HTTP calls per distinct IP)"))
	}
	if b.cfg.Quick {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("quick mode: peak-RSS run over %d distinct indicators, not 1,000,000", n))
	}
	pl, err := b.startPipeline(ctx, "rss", t, o)
	if err != nil {
		return b.fail(st, err)
	}
	var series []map[string]any
	start := time.Now()
	sample := func(now time.Time, committed []int64) {
		row := map[string]any{"t_s": round(now.Sub(start).Seconds(), 0)}
		for i, svc := range serviceNames {
			row[svc+"_committed"] = committed[i]
			if p := pl.procs[svc]; p != nil {
				if v, ok := procStatusMiB(p.cmd.Process.Pid, "VmRSS"); ok {
					row[svc+"_rss_mib"] = round(v, 1)
				}
			}
		}
		series = append(series, row)
	}
	d, derr := b.br.waitDrained(ctx, pl.watch, drainOpts{timeout: b.cfg.RSSTimeout, alive: pl.alive, every: 5 * time.Second, sample: sample})
	for _, svc := range serviceNames {
		if p := pl.procs[svc]; p != nil && !p.exited() {
			r := b.heapProfile(ctx, p, svc)
			if r.err != nil {
				r.top = []string{"heap profile failed: " + r.err.Error()}
			}
			b.rep.Hotspots["heap-"+svc] = r.top
		}
	}
	rss := b.stopPipeline(pl)
	for svc, v := range rss {
		if v > 0 {
			b.rep.RSSMiB[svc] = ptr(round(v, 1))
		}
	}
	b.extra(st, "distinct_indicators_filled", n)
	b.extra(st, "providers", b.cfg.RSSProviders)
	b.extra(st, "committed", stageCounts(d))
	b.extra(st, "stage_last_commit_s", stageSeconds(d))
	b.extra(st, "series", series)
	switch {
	case errors.Is(derr, errNotDrained):
		raw := d.Committed[0]
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("peak-RSS run capped at %s: ingest consumed %d of %d raw records (one distinct IP each); downstream committed %v; RSS is the peak up to the stop",
			b.cfg.RSSTimeout, raw, n, stageCounts(d)))
		st.Error = fmt.Sprintf("capped at %s before draining", b.cfg.RSSTimeout)
	case derr != nil:
		return b.fail(st, derr)
	}
	if rps, ok := d.RPS(); ok {
		st.RPS, st.Records, st.Seconds = ptr(round(rps, 0)), d.Records(), round(d.Seconds(), 2)
	}
	return nil
}

// stageCounts maps service → committed records at the last sample.
func stageCounts(d drainRate) map[string]int64 {
	out := map[string]int64{}
	for i, c := range d.Committed {
		if i < len(serviceNames) {
			out[serviceNames[i]] = c
		}
	}
	return out
}

// stageSeconds maps service → seconds from the window start to its last commit.
func stageSeconds(d drainRate) map[string]float64 {
	out := map[string]float64{}
	for i, s := range d.StageSeconds() {
		if i < len(serviceNames) {
			out[serviceNames[i]] = round(s, 1)
		}
	}
	return out
}

// cpuSnap is the CPU time of every process on the machine's two cores that takes part in a run.
type cpuSnap struct {
	pids  map[string]int
	start map[string]float64
}

// cpuSnapshot reads the CPU time used so far by the pipeline's services, the emulators, the broker and
// Redis.
func (b *bench) cpuSnapshot(pl *pipeline) cpuSnap {
	c := cpuSnap{pids: map[string]int{}, start: map[string]float64{}}
	for svc, p := range pl.procs {
		c.pids[svc] = p.cmd.Process.Pid
	}
	for name, p := range map[string]*proc{"provider-emulator": b.provEmu, "threatq-emulator": b.tqEmu} {
		if p != nil {
			c.pids[name] = p.cmd.Process.Pid
		}
	}
	if pid, ok := findPID("java", "kafka.Kafka", "server.properties"); ok {
		c.pids["kafka"] = pid
	}
	if pid, ok := findPID("redis-server"); ok {
		c.pids["redis"] = pid
	}
	for name, pid := range c.pids {
		if v, ok := cpuSeconds(pid); ok {
			c.start[name] = v
		}
	}
	return c
}

// since returns the CPU seconds each process used since the snapshot (processes that exited are left out).
func (c cpuSnap) since() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range c.pids {
		v, ok := cpuSeconds(pid)
		if s, had := c.start[name]; ok && had {
			out[name] = round(v-s, 2)
		}
	}
	return out
}
