package limit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// localBudget keeps the bucket and the quota windows in the process.
type localBudget struct {
	mu     sync.Mutex
	lim    *rate.Limiter // nil: no rate limit
	quotas []Quota
	idx    []int64 // current window index per quota
	used   []int64 // calls counted in that window
	now    func() time.Time
}

func newLocalBudget(cfg Config) *localBudget {
	b := &localBudget{quotas: cfg.Quotas, idx: make([]int64, len(cfg.Quotas)), used: make([]int64, len(cfg.Quotas)), now: time.Now}
	if cfg.Rate > 0 {
		b.lim = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	return b
}

// roll moves every window to the one containing now.
func (b *localBudget) roll(now time.Time) {
	for i, q := range b.quotas {
		if w := now.UnixNano() / int64(q.Window); w != b.idx[i] {
			b.idx[i], b.used[i] = w, 0
		}
	}
}

func (b *localBudget) left() int64 {
	if len(b.quotas) == 0 {
		return -1
	}
	least := int64(-1)
	for i, q := range b.quotas {
		if r := q.Limit - b.used[i]; least < 0 || r < least {
			least = r
		}
	}
	return least
}

func (b *localBudget) take(context.Context) (decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.roll(now)
	for i, q := range b.quotas {
		if b.used[i] >= q.Limit {
			end := time.Unix(0, (b.idx[i]+1)*int64(q.Window))
			return decision{wait: end.Sub(now), quota: true}, nil
		}
	}
	if b.lim != nil {
		r := b.lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now) // do not hold a future token: the caller re-checks quotas after waiting
			return decision{wait: d}, nil
		}
	}
	for i := range b.quotas {
		b.used[i]++
	}
	return decision{ok: true, remaining: b.left()}, nil
}

func (b *localBudget) takeN(ctx context.Context, n int) (int, int64, error) {
	got, left := 0, int64(-1)
	for got < n {
		d, err := b.take(ctx)
		if err != nil || !d.ok {
			break
		}
		got++
		left = d.remaining
	}
	if got == 0 {
		l, err := b.remaining(ctx)
		return 0, l, err
	}
	return got, left, nil
}

func (b *localBudget) remaining(context.Context) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(b.now())
	return b.left(), nil
}
