package state

import (
	"context"
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
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg Config) (*Memory, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Memory{cfg: cfg, inds: map[string]*memIndicator{}, seen: map[string]time.Time{}, verdicts: map[string]LastVerdict{}}, nil
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
		m.verdicts[v.Key] = v
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
