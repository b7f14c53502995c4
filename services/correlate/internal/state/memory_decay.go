package state

import (
	"cmp"
	"context"
	"slices"
)

// saveVerdict stores v as the last verdict of its indicator and applies its
// review (the stash and the due entry). Called with m.mu held.
func (m *Memory) saveVerdict(v LastVerdict) {
	rv := v.Review
	v.Review = nil // the stash is kept once, in m.reviews
	m.verdicts[v.Key] = v
	if rv == nil {
		return
	}
	if rv.Due.IsZero() {
		m.dropReview(v.Key)
		delete(m.dueSet(rv.Partition), v.Key)
		return
	}
	if old, ok := m.reviews[v.Key]; ok && old.Partition != rv.Partition {
		delete(m.dueSet(old.Partition), v.Key)
	}
	m.reviews[v.Key] = Review{Enrichment: rv.Enrichment, LastObserved: rv.LastObserved, Partition: rv.Partition}
	m.dueSet(rv.Partition)[v.Key] = scoreMs(rv.Due)
}

// dueSet returns the due set of partition p, creating it. Called with m.mu
// held.
func (m *Memory) dueSet(p int32) map[string]int64 {
	set := m.due[p]
	if set == nil {
		set = map[string]int64{}
		m.due[p] = set
	}
	return set
}

// dropReview removes the stash of key and its due entry. Called with m.mu
// held.
func (m *Memory) dropReview(key string) {
	if r, ok := m.reviews[key]; ok {
		delete(m.due[r.Partition], key)
		delete(m.reviews, key)
	}
}

// ClaimDue implements [DecayStore].
func (m *Memory) ClaimDue(ctx context.Context, partitions []int32, limit int) ([]Due, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	nowMs, lease := now.UnixMilli(), scoreMs(now.Add(ClaimLease))
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Due
	for _, p := range partitions {
		if len(out) >= limit {
			break
		}
		set := m.due[p]
		start := len(out)
		for k, at := range set {
			if at <= nowMs {
				out = append(out, Due{Key: k, Partition: p, At: fromMs(at)})
			}
		}
		due := out[start:]
		slices.SortFunc(due, func(a, b Due) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Key, b.Key)) })
		out = out[:start+min(len(due), limit-start)]
		for i := start; i < len(out); i++ {
			set[out[i].Key] = lease
			out[i].Lease = fromMs(lease)
		}
	}
	return out, nil
}

// LoadDue implements [DecayStore].
func (m *Memory) LoadDue(ctx context.Context, due []Due) ([]Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Pending, len(due))
	for i, d := range due {
		p := &out[i]
		p.Due = d
		p.Review, p.HasReview = m.reviews[d.Key]
		if st := m.inds[d.Key]; st != nil && st.sum.Count > 0 {
			p.Summary, p.HasState = m.summary(st, now), true
		}
		p.Prior.Verdict, p.Prior.HasVerdict = m.verdicts[d.Key]
		if e, ok := m.allow[d.Key]; ok && e.Active(now) {
			p.Prior.Allow = &e
		}
	}
	return out, nil
}

// Reschedule implements [DecayStore].
func (m *Memory) Reschedule(ctx context.Context, rs []Rescheduled) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		set := m.due[r.Partition]
		if cur, ok := set[r.Key]; !ok || cur != scoreMs(r.Lease) {
			continue // published (or claimed again) meanwhile
		}
		if r.Next.IsZero() {
			delete(set, r.Key)
			if rv, ok := m.reviews[r.Key]; ok && rv.Partition == r.Partition {
				delete(m.reviews, r.Key)
			}
			continue
		}
		set[r.Key] = scoreMs(r.Next)
		if rv, ok := m.reviews[r.Key]; ok && !r.LastObserved.IsZero() {
			rv.LastObserved = r.LastObserved
			m.reviews[r.Key] = rv
		}
	}
	return nil
}
