package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/events"
	"github.com/vigilsec/vigil/pkg/stream"
)

// runBaseline measures consume → DecodeObservation → EncodeObservation → produce on pkg/stream's
// Runner (no metrics, no tracing) over N pre-filled Observations.
func (b *bench) runBaseline(ctx context.Context) error {
	st := &b.rep.Baseline
	st.Error = ""
	pool := b.pool(b.cfg.Distinct)
	in, out, dlq := b.name("baseline", "in"), b.name("baseline", "out"), b.name("baseline", "dlq")
	if err := b.br.createTopics(ctx, in, out, dlq); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillObservations(ctx, in, pool, b.cfg.Records); err != nil {
		return b.fail(st, err)
	}
	// Two passes (new group, same input); the faster one is the baseline, which keeps the stage
	// ratios conservative when other work on the host slows one pass down.
	var best drainRate
	var rates []float64
	for i := range 2 {
		d, err := b.baselinePass(ctx, in, out, dlq, b.group("baseline", fmt.Sprint(i)))
		if err != nil {
			return b.fail(st, err)
		}
		rps, ok := d.RPS()
		if !ok {
			return b.fail(st, errors.New("empty timing window"))
		}
		rates = append(rates, round(rps, 0))
		if r0, _ := best.RPS(); rps > r0 {
			best = d
		}
	}
	rps, _ := best.RPS()
	st.Error = ""
	st.RPS, st.Records, st.Seconds = ptr(round(rps, 0)), best.Records(), round(best.Seconds(), 2)
	b.extra(st, "passes_rps", rates)
	b.rep.BaselineRPS = st.RPS
	b.log.Info("baseline", "rps", round(rps, 0), "passes", rates)
	return nil
}

// baselinePass runs the trivial Runner until group has drained in.
func (b *bench) baselinePass(ctx context.Context, in, out, dlq, group string) (drainRate, error) {
	h := stream.HandlerFunc(func(ctx context.Context, recs []*kgo.Record) ([]stream.Result, error) {
		res := make([]stream.Result, len(recs))
		for i, r := range recs {
			o, err := b.serde.DecodeObservation(ctx, r.Value)
			if err != nil {
				res[i].Err = stream.Permanent("decode", err)
				continue
			}
			v, err := b.serde.EncodeObservation(&o)
			if err != nil {
				res[i].Err = stream.Permanent("encode", err)
				continue
			}
			res[i].Outputs = []*kgo.Record{{Topic: out, Key: r.Key, Value: v}}
		}
		return res, nil
	})
	kc := stream.KafkaConfig{Brokers: b.cfg.Brokers, ClientID: "vigil-bench-baseline", Partitions: b.cfg.Partitions,
		ReplicationFactor: 1, ResetOffset: "earliest", DLQTopic: dlq, GroupProtocol: "classic",
		// the services' defaults, so the baseline fetches and batches like they do
		FetchMinBytes: stream.DefaultFetchMinBytes, FetchMaxWait: stream.DefaultFetchMaxWait, Linger: stream.DefaultLinger}
	r, err := stream.NewRunner(stream.Config{Stage: "baseline", Group: group, Topics: []string{in}, Kafka: kc}, h, b.serde,
		slog.New(slog.DiscardHandler))
	if err != nil {
		return drainRate{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = r.Run(rctx)
		close(done)
	}()
	d, err := b.br.waitDrained(ctx, []stageWatch{{group, in}}, drainOpts{timeout: b.cfg.DrainTimeout, alive: func() error {
		select {
		case <-done:
			return fmt.Errorf("runner stopped: %v", runErr)
		default:
			return nil
		}
	}})
	cancel()
	<-done
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	_ = r.Close(cctx)
	ccancel()
	return d, err
}

// fail records err on a stage and returns it.
func (b *bench) fail(st *Stage, err error) error {
	st.Error = err.Error()
	st.RPS, st.Ratio = nil, nil
	return err
}

func (b *bench) fillObservations(ctx context.Context, topic string, pool []string, n int) error {
	now := time.Now()
	return b.br.fill(ctx, topic, n, func(i int) ([]byte, []byte, error) {
		o := observationFor(pool, i, now)
		v, err := b.serde.EncodeObservation(&o)
		return []byte(o.Indicator.Key()), v, err
	})
}

func (b *bench) fillEnrichments(ctx context.Context, topic string, pool []string, n int) error {
	now := time.Now()
	return b.br.fill(ctx, topic, n, func(i int) ([]byte, []byte, error) {
		e := enrichmentFor(pool, i, now)
		v, err := b.serde.EncodeEnrichment(&e)
		return []byte(e.Observation.Indicator.Key()), v, err
	})
}

func (b *bench) fillVerdicts(ctx context.Context, topic string, pool []string, n int) error {
	now := time.Now()
	return b.br.fill(ctx, topic, n, func(i int) ([]byte, []byte, error) {
		v := verdictFor(pool, i, now)
		val, err := b.serde.EncodeVerdict(&v)
		return []byte(v.Indicator.Key()), val, err
	})
}

// fillRaw produces n Suricata EVE lines, record i using pool[i%len(pool)] as its public address
// and the production time as its event time.
// fillRawMix produces n raw records whose public address is drawn from pool by mix (record
// order), and returns how many distinct pool entries were used.
func (b *bench) fillRawMix(ctx context.Context, topic string, pool []string, n int, mix *recordMix) (int, error) {
	seen := make(map[int]struct{}, len(pool))
	err := b.br.fill(ctx, topic, n, func(i int) ([]byte, []byte, error) {
		k := mix.pick(i)
		seen[k] = struct{}{}
		t := b.templates[i%len(b.templates)]
		return nil, t.Render(make([]byte, 0, 512), time.Now(), pool[k]), nil
	})
	return len(seen), err
}

func (b *bench) fillRaw(ctx context.Context, topic string, pool []string, n int) error {
	return b.br.fill(ctx, topic, n, func(i int) ([]byte, []byte, error) {
		t := b.templates[i%len(b.templates)]
		return nil, t.Render(make([]byte, 0, 512), time.Now(), pool[i%len(pool)]), nil
	})
}

// measured is one timed service run.
type measured struct {
	drain drainRate
	rss   float64
}

// measureService starts svc, waits until its group has committed the end of in, then stops it.
func (b *bench) measureService(ctx context.Context, svc, group, in string, t topics, o svcOpts) (measured, error) {
	var m measured
	p, err := b.startService(svc, group, t, o)
	if err != nil {
		return m, err
	}
	d, err := b.br.waitDrained(ctx, []stageWatch{{group, in}}, drainOpts{timeout: b.cfg.DrainTimeout, alive: func() error {
		if p.exited() {
			return fmt.Errorf("%s exited: %s", svc, p.logTail(5))
		}
		return nil
	}})
	serr := b.stopProc(p)
	m.drain, m.rss = d, p.peakMiB
	if err != nil {
		return m, fmt.Errorf("%s: %w (log: %s)", svc, err, p.logTail(3))
	}
	if serr != nil {
		b.log.Warn("stop", "service", svc, "err", serr)
	}
	return m, nil
}

// profileService starts svc on a filled input, takes a CPU profile of d once it is consuming and
// then its in-use heap, and stops it (the input need not be drained).
func (b *bench) profileService(ctx context.Context, svc, group, in string, t topics, o svcOpts, d time.Duration) ([]string, error) {
	p, err := b.startService(svc, group, t, o)
	if err != nil {
		return nil, err
	}
	defer func() { _ = b.stopProc(p) }()
	// start profiling once the first batch is committed, so start-up and the group join stay out
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := b.br.committed(ctx, group, in)
		if err != nil {
			return nil, err
		}
		if c > 0 {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			return nil, fmt.Errorf("%s made no progress before profiling: %s", svc, p.logTail(3))
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := b.cpuProfile(ctx, p, svc, d)
	if r.err != nil {
		return r.top, r.err
	}
	// the live heap right after the CPU window: what the collector scans while the stage runs
	h := b.heapProfile(ctx, p, svc)
	if h.err != nil {
		return append(r.top, "-- in-use heap: "+h.err.Error()), nil
	}
	return append(append(r.top, "-- in-use heap at the end of the CPU window --"), h.top...), nil
}

// record fills a stage's numbers from a measurement; goal is the ratio target.
func (b *bench) record(st *Stage, m measured) (ratio float64, ok bool) {
	rps, rok := m.drain.RPS()
	if !rok {
		b.fail(st, errors.New("empty timing window"))
		return 0, false
	}
	st.Error = ""
	st.RPS, st.Records, st.Seconds, st.RSSMiB = ptr(round(rps, 0)), m.drain.Records(), round(m.drain.Seconds(), 2), ptr(round(m.rss, 1))
	if b.rep.BaselineRPS == nil {
		b.extra(st, "ratio_note", "baseline not measured")
		return 0, false
	}
	ratio = rps / *b.rep.BaselineRPS
	st.Ratio = ptr(round(ratio, 3))
	return ratio, true
}

func (b *bench) extra(st *Stage, k string, v any) {
	if st.Extra == nil {
		st.Extra = map[string]any{}
	}
	st.Extra[k] = v
}

// maybeProfile runs a second, profiled pass of a stage that missed its ratio goal. pass gets
// the profile length and the number of input records that keep the service busy that long.
func (b *bench) maybeProfile(ctx context.Context, svc string, st *Stage, ratio, goal float64, ok bool, pass func(ctx context.Context, d time.Duration, records int) ([]string, error)) {
	if !b.cfg.Profile || !ok || ratio >= goal || st.RPS == nil {
		return
	}
	secs := min(max(0.8*float64(b.cfg.Records) / *st.RPS, 3), 10)
	d := time.Duration(secs * float64(time.Second))
	records := min(b.cfg.Records, int(*st.RPS*secs*2)+20000)
	b.log.Info("profiling", "stage", svc, "seconds", secs)
	top, err := pass(ctx, d, records)
	if err != nil {
		b.rep.Hotspots[svc] = []string{"profile pass failed: " + err.Error()}
		return
	}
	b.rep.Hotspots[svc] = top
}

// runIngestStage measures ingest over N raw Suricata EVE lines.
func (b *bench) runIngestStage(ctx context.Context) error {
	st := b.rep.Stages["ingest"]
	pool := b.pool(b.cfg.Distinct)
	t := b.topicSet("ingest")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillRaw(ctx, t.Raw, pool, b.cfg.Records); err != nil {
		return b.fail(st, err)
	}
	m, err := b.measureService(ctx, "ingest", b.group("ingest"), t.Raw, t, svcOpts{})
	if err != nil {
		return b.fail(st, err)
	}
	ratio, ok := b.record(st, m)
	if obs, err := b.br.endOffsets(ctx, t.Observed); err == nil {
		b.extra(st, "observations_out", obs)
	}
	b.log.Info("ingest", "rps", *st.RPS, "ratio", ratio)
	b.maybeProfile(ctx, "ingest", st, ratio, goalIngestRatio, ok, func(ctx context.Context, d time.Duration, _ int) ([]string, error) {
		return b.profileService(ctx, "ingest", b.group("ingest", "prof"), t.Raw, t, svcOpts{}, d)
	})
	return nil
}

// runEnrichStage measures enrich over N Observations: a cold pass (empty cache; gives the
// provider calls per unique indicator) and a warm pass with a new group (L1 empty, Redis warm),
// which is the stage's number.
func (b *bench) runEnrichStage(ctx context.Context) error {
	st := b.rep.Stages["enrich"]
	pool := b.pool(b.cfg.Distinct)
	t := b.topicSet("enrich")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillObservations(ctx, t.Observed, pool, b.cfg.Records); err != nil {
		return b.fail(st, err)
	}
	if err := post(ctx, "http://"+b.provEmu.opsAddr+"/_emulator/reset"); err != nil {
		return b.fail(st, err)
	}
	cold, err := b.measureService(ctx, "enrich", b.group("enrich", "cold"), t.Observed, t, svcOpts{})
	if err != nil {
		return b.fail(st, fmt.Errorf("cold pass: %w", err))
	}
	if rps, ok := cold.drain.RPS(); ok {
		b.extra(st, "cold_rps", round(rps, 0))
		b.extra(st, "cold_rss_mib", round(cold.rss, 1))
	}
	if err := b.providerCalls(ctx, pool, min(b.cfg.Distinct, b.cfg.Records)); err != nil {
		b.rep.Notes = append(b.rep.Notes, "provider call accounting: "+err.Error())
	}
	warm, err := b.measureService(ctx, "enrich", b.group("enrich", "warm"), t.Observed, t, svcOpts{})
	if err != nil {
		return b.fail(st, fmt.Errorf("warm pass: %w", err))
	}
	ratio, ok := b.record(st, warm)
	b.extra(st, "pass", "warm (new process, Redis cache filled by the cold pass)")
	b.log.Info("enrich", "rps", *st.RPS, "ratio", ratio, "cold_rps", st.Extra["cold_rps"])
	b.maybeProfile(ctx, "enrich", st, ratio, goalStageRatio, ok, func(ctx context.Context, d time.Duration, _ int) ([]string, error) {
		return b.profileService(ctx, "enrich", b.group("enrich", "prof"), t.Observed, t, svcOpts{}, d)
	})
	return nil
}

// providerRoutes maps the emulator's routes to the indicator type they serve.
var providerRoutes = map[string]string{
	"criminalip": events.TypeIPv4, "internetdb": events.TypeIPv4, "abuseipdb": events.TypeIPv4,
	"greynoise": events.TypeIPv4, "criminalip_domain": events.TypeDomain,
}

// providerCalls reads the provider emulator's counters after the cold pass and compares them
// with the distinct indicators that were sent (the first distinct records of the pool).
func (b *bench) providerCalls(ctx context.Context, pool []string, distinct int) error {
	var s providerStats
	if err := getJSON(ctx, "http://"+b.provEmu.opsAddr+"/_emulator/stats", &s); err != nil {
		return err
	}
	sent := map[string]map[string]bool{events.TypeIPv4: {}, events.TypeDomain: {}}
	for i := range distinct {
		ind := indicatorFor(pool, i)
		sent[ind.Type][ind.Value] = true
	}
	for route, typ := range providerRoutes {
		rs := s.Routes[route]
		pc := ProviderCalls{Calls: rs.Calls, Unique: int64(len(sent[typ])), Route: route, IndicatorTyp: typ}
		for v := range sent[typ] {
			switch n := rs.ByIndicator[v]; {
			case n == 0:
				pc.NotCalled++
			case n > 1:
				pc.Over1++
			}
		}
		if pc.Unique > 0 {
			pc.Ratio = round(float64(pc.Calls)/float64(pc.Unique), 4)
			b.rep.ProviderPerUnique[route] = ptr(pc.Ratio)
		}
		b.rep.ProviderCalls[route] = pc
	}
	return nil
}

// runCorrelateStage measures correlate over N Enrichments with its state in Redis.
func (b *bench) runCorrelateStage(ctx context.Context) error {
	st := b.rep.Stages["correlate"]
	pool := b.pool(b.cfg.Distinct)
	t := b.topicSet("correlate")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillEnrichments(ctx, t.Enriched, pool, b.cfg.Records); err != nil {
		return b.fail(st, err)
	}
	m, err := b.measureService(ctx, "correlate", b.group("correlate"), t.Enriched, t, svcOpts{})
	if err != nil {
		return b.fail(st, err)
	}
	ratio, ok := b.record(st, m)
	if v, err := b.br.endOffsets(ctx, t.Verdicts); err == nil {
		b.extra(st, "verdicts_out", v)
	}
	b.log.Info("correlate", "rps", *st.RPS, "ratio", ratio)
	b.maybeProfile(ctx, "correlate", st, ratio, goalStageRatio, ok, func(ctx context.Context, d time.Duration, n int) ([]string, error) {
		// fresh indicators: a replay of the same offsets would take the dedupe path
		t := b.topicSet("correlate-prof")
		if err := b.br.createTopics(ctx, t.all()...); err != nil {
			return nil, err
		}
		if err := b.fillEnrichments(ctx, t.Enriched, b.pool(min(b.cfg.Distinct, n)), n); err != nil {
			return nil, err
		}
		return b.profileService(ctx, "correlate", b.group("correlate", "prof"), t.Enriched, t, svcOpts{}, d)
	})
	return nil
}

// runSinkStage measures the sink over N Verdicts against the ThreatQ emulator.
func (b *bench) runSinkStage(ctx context.Context) error {
	st := b.rep.Stages["sink"]
	var before, after threatqStats
	pool := b.pool(b.cfg.Distinct)
	t := b.topicSet("sink")
	if err := b.br.createTopics(ctx, t.all()...); err != nil {
		return b.fail(st, err)
	}
	if err := b.fillVerdicts(ctx, t.Verdicts, pool, b.cfg.Records); err != nil {
		return b.fail(st, err)
	}
	if err := getJSON(ctx, "http://"+b.tqEmu.opsAddr+"/_emulator/stats", &before); err != nil {
		return b.fail(st, err)
	}
	m, err := b.measureService(ctx, "sink", b.group("sink"), t.Verdicts, t, svcOpts{})
	if err != nil {
		return b.fail(st, err)
	}
	if err := getJSON(ctx, "http://"+b.tqEmu.opsAddr+"/_emulator/stats", &after); err != nil {
		return b.fail(st, err)
	}
	ratio, ok := b.record(st, m)
	calls, total := tqDelta(before, after)
	b.extra(st, "threatq_calls", calls)
	b.extra(st, "threatq_calls_per_1k_verdicts", round(float64(total)*1000/float64(b.cfg.Records), 2))
	b.extra(st, "threatq_writes", after.Writes-before.Writes)
	b.log.Info("sink", "rps", *st.RPS, "ratio", ratio, "threatq_calls", total)
	b.maybeProfile(ctx, "sink", st, ratio, goalStageRatio, ok, func(ctx context.Context, d time.Duration, n int) ([]string, error) {
		// fresh indicators: the same verdicts again would be skipped as no-op writes
		t := b.topicSet("sink-prof")
		if err := b.br.createTopics(ctx, t.all()...); err != nil {
			return nil, err
		}
		if err := b.fillVerdicts(ctx, t.Verdicts, b.pool(min(b.cfg.Distinct, n)), n); err != nil {
			return nil, err
		}
		return b.profileService(ctx, "sink", b.group("sink", "prof"), t.Verdicts, t, svcOpts{}, d)
	})
	return nil
}
