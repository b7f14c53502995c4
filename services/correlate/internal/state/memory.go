package state

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/vigilsec/vigil/pkg/events"
)

// maxMemoryAssets bounds the exact distinct-asset set per indicator in [Memory].
const maxMemoryAssets = 4096

type memIndicator struct {
	sum        events.SightingSummary
	minutes    map[int64]int64 // unix minute -> count
	hours      map[int64]int64 // unix hour -> count
	assets     map[string]struct{}
	directions map[string]int64
	lastObs    time.Time // latest received time
	touched    time.Time
}

// Memory is the in-process [Store] for the embedded default (no Redis).
// State is lost on restart and is not shared between replicas.
type Memory struct {
	cfg      Config
	mu       sync.Mutex
	inds     map[string]*memIndicator
	seen     map[string]time.Time // dedupe id -> expiry
	verdicts map[string]LastVerdict
	applies  int
	allow    map[string]AllowEntry // analyst allow entries by indicator key
	kpi      KPI
	reviews  map[string]Review          // stashes of published verdicts (Due unset)
	due      map[int32]map[string]int64 // due sets: partition -> key -> due (unix ms)
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg Config) (*Memory, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Memory{cfg: cfg, inds: map[string]*memIndicator{}, seen: map[string]time.Time{}, verdicts: map[string]LastVerdict{},
		allow: map[string]AllowEntry{}, kpi: newKPI(), reviews: map[string]Review{}, due: map[int32]map[string]int64{}}, nil
}

// Apply implements [Store].
func (m *Memory) Apply(ctx context.Context, batch []events.Enrichment) ([]Summary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies++
	if m.applies%256 == 0 {
		m.prune(now)
	}
	out := make([]Summary, len(batch))
	for i := range batch {
		e := &batch[i]
		key := e.Observation.Indicator.Key()
		st := m.inds[key]
		if st == nil {
			st = &memIndicator{minutes: map[int64]int64{}, hours: map[int64]int64{}, assets: map[string]struct{}{}, directions: map[string]int64{}}
			m.inds[key] = st
		}
		id := key + "|" + seenID(e.Observation)
		if exp, dup := m.seen[id]; !dup || !now.Before(exp) {
			m.seen[id] = now.Add(m.cfg.SeenTTL)
			m.record(st, e, now)
		}
		out[i] = m.summary(st, now)
	}
	return out, nil
}

func (m *Memory) record(st *memIndicator, e *events.Enrichment, now time.Time) {
	n := sightingCount(e)
	t := eventTime(e, now)
	rt := receivedTime(e, now)
	s := e.Observation.Sighting
	sum := &st.sum
	sum.Count += n
	switch s.Action {
	case events.ActionAllowed:
		sum.Allowed += n
	case events.ActionBlocked:
		sum.Blocked += n
	case events.ActionAlerted:
		sum.Alerted += n
	}
	dir := s.Direction
	if dir == "" {
		dir = events.DirectionUnknown
	}
	st.directions[dir] += n
	if sum.FirstSeen.IsZero() || t.Before(sum.FirstSeen) {
		sum.FirstSeen = t
	}
	if t.After(sum.LastSeen) {
		sum.LastSeen = t
	}
	sum.MaxSeverity = max(sum.MaxSeverity, s.Severity)
	if a := assetID(s); a != "" && len(st.assets) < maxMemoryAssets {
		st.assets[a] = struct{}{}
	}
	if rt.After(st.lastObs) {
		st.lastObs = rt
	}
	st.minutes[rt.Unix()/60] += n
	st.hours[rt.Unix()/3600] += n
	st.touched = now
}

func (m *Memory) summary(st *memIndicator, now time.Time) Summary {
	w := m.cfg.Windows
	nowMin, nowHour := now.Unix()/60, now.Unix()/3600
	shortFrom := nowMin - int64(w.Short/time.Minute) + 1
	medFrom := nowHour - int64(w.Medium/time.Hour) + 1
	longFrom := nowHour - int64(w.Long/time.Hour) + 1
	s := st.sum
	s.Count1h, s.Count24h, s.Count7d = 0, 0, 0
	for k, c := range st.minutes {
		switch {
		case k < shortFrom:
			delete(st.minutes, k)
		case k <= nowMin:
			s.Count1h += c
		}
	}
	for k, c := range st.hours {
		if k < longFrom {
			delete(st.hours, k)
			continue
		}
		if k > nowHour {
			continue
		}
		s.Count7d += c
		if k >= medFrom {
			s.Count24h += c
		}
	}
	s.DistinctAssets = int64(len(st.assets))
	blockedShare(&s)
	return Summary{SightingSummary: s, LastObserved: st.lastObs}
}

func (m *Memory) prune(now time.Time) {
	for id, exp := range m.seen {
		if !now.Before(exp) {
			delete(m.seen, id)
		}
	}
	for k, st := range m.inds {
		if now.Sub(st.touched) > m.cfg.StateTTL {
			delete(m.inds, k)
			m.dropReview(k)
		}
	}
	m.pruneAllow(now)
}

func (m *Memory) pruneAllow(now time.Time) {
	for k, e := range m.allow {
		if !e.Active(now) {
			delete(m.allow, k)
		}
	}
}

// LastVerdicts implements [Store].
func (m *Memory) LastVerdicts(ctx context.Context, keys []string) ([]LastVerdict, []bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LastVerdict, len(keys))
	ok := make([]bool, len(keys))
	for i, k := range keys {
		out[i], ok[i] = m.verdicts[k]
	}
	return out, ok, nil
}

// SaveVerdicts implements [Store].
func (m *Memory) SaveVerdicts(ctx context.Context, vs []LastVerdict) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range vs {
		m.saveVerdict(v)
	}
	return nil
}

// Directions returns the per-direction sighting counts of an indicator.
func (m *Memory) Directions(key string) map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	if st := m.inds[key]; st != nil {
		for k, v := range st.directions {
			out[k] = v
		}
	}
	return out
}

// Priors implements [FeedbackStore].
func (m *Memory) Priors(ctx context.Context, keys []string) ([]Prior, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Prior, len(keys))
	for i, k := range keys {
		out[i].Verdict, out[i].HasVerdict = m.verdicts[k]
		if e, ok := m.allow[k]; ok && e.Active(now) {
			out[i].Allow = &e
		}
	}
	return out, nil
}

// SavePublished implements [FeedbackStore].
func (m *Memory) SavePublished(ctx context.Context, vs []LastVerdict) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range vs {
		m.saveVerdict(v)
		m.kpi.Published[v.Action]++
	}
	return nil
}

// RecordFeedback implements [FeedbackStore].
func (m *Memory) RecordFeedback(ctx context.Context, recs []FeedbackRecord) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range recs {
		if r.Source != "" {
			id := "feedback|" + r.Source
			if exp, dup := m.seen[id]; dup && now.Before(exp) {
				continue
			}
			m.seen[id] = now.Add(m.cfg.SeenTTL)
		}
		n++
		m.kpi.Feedback++
		if r.FalsePositive != "" {
			m.kpi.FalsePositives[r.FalsePositive]++
		}
		switch {
		case r.Allow != nil:
			m.allow[r.Key] = *r.Allow
		case r.Revoke:
			delete(m.allow, r.Key)
		}
	}
	m.pruneAllow(now)
	return n, nil
}

// KPI implements [FeedbackStore].
func (m *Memory) KPI(ctx context.Context) (KPI, error) {
	if err := ctx.Err(); err != nil {
		return KPI{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := KPI{Published: maps.Clone(m.kpi.Published), FalsePositives: maps.Clone(m.kpi.FalsePositives), Feedback: m.kpi.Feedback}
	return out, nil
}

// ApplyBatch implements [Store] as SavePublished, Apply and Priors.
func (m *Memory) ApplyBatch(ctx context.Context, published []LastVerdict, batch []events.Enrichment) (Batch, error) {
	if err := m.SavePublished(ctx, published); err != nil {
		return Batch{}, err
	}
	if len(batch) == 0 {
		return Batch{}, nil
	}
	g := groupBatch(batch)
	sums, err := m.Apply(ctx, batch)
	if err != nil {
		return Batch{}, err
	}
	priors, err := m.Priors(ctx, g.keys)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{Keys: g.keys, Last: make([]int, len(g.keys)), Summaries: make([]Summary, len(g.keys)), Priors: priors}
	for k := range g.keys {
		b.Last[k] = g.order[g.start[k+1]-1]
		b.Summaries[k] = sums[b.Last[k]]
	}
	return b, nil
}
