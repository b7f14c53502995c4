package limit

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

var provSeq atomic.Int64

// uniqueProvider keeps runs against a shared Redis from seeing each other's counters.
func uniqueProvider(t *testing.T) string {
	return "p" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(provSeq.Add(1), 10)
}

func mustConfigure(t *testing.T, l *Limiter, p string, cfg Config) {
	t.Helper()
	if err := l.Configure(p, cfg); err != nil {
		t.Fatalf("configure: %v", err)
	}
}

func acquire(t *testing.T, l *Limiter, p string) Permit {
	t.Helper()
	pm, err := l.Acquire(t.Context(), p)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return pm
}

// runSuite checks what every budget backend must do. mk returns a fresh Limiter on the backend.
func runSuite(t *testing.T, mk func(t *testing.T) *Limiter) {
	t.Run("rate exhaustion waits then proceeds", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Rate: 10, Burst: 1, MaxWait: time.Second})
		acquire(t, l, p)
		start := time.Now()
		acquire(t, l, p)
		if d := time.Since(start); d < 70*time.Millisecond {
			t.Fatalf("second call after %s, want ~100ms wait", d)
		}
	})
	t.Run("rate beyond max wait is rate limited", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Rate: 0.1, Burst: 1, MaxWait: 500 * time.Millisecond})
		acquire(t, l, p)
		start := time.Now()
		if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("err = %v, want ErrRateLimited", err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("refusal took %s: a wait that cannot succeed should fail at once", d)
		}
	})
	t.Run("quota exhaustion waits for the next window then proceeds", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		const win = 300 * time.Millisecond
		mustConfigure(t, l, p, Config{Quotas: []Quota{{Window: win, Limit: 2}}, MaxWait: time.Second})
		// Start early in a window so the first two calls share it.
		time.Sleep(win - time.Duration(time.Now().UnixNano()%int64(win)) + 5*time.Millisecond)
		first := time.Now().UnixNano() / int64(win)
		acquire(t, l, p)
		acquire(t, l, p)
		if n, _ := l.Remaining(t.Context(), p); n != 0 {
			t.Fatalf("remaining = %d, want 0", n)
		}
		third := acquire(t, l, p)
		if now := time.Now().UnixNano() / int64(win); now <= first {
			t.Fatalf("third call granted in window %d, same as the exhausted one", now)
		}
		if third.Remaining != 1 {
			t.Fatalf("remaining after third = %d, want 1", third.Remaining)
		}
	})
	t.Run("quota beyond max wait is exhausted", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Quotas: []Quota{{Window: time.Hour, Limit: 1}, {Window: time.Second, Limit: 100}}, MaxWait: 50 * time.Millisecond})
		acquire(t, l, p)
		if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrQuotaExhausted) {
			t.Fatalf("err = %v, want ErrQuotaExhausted", err)
		}
	})
	t.Run("windows are checked together and nothing is consumed on refusal", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Quotas: []Quota{{Window: time.Hour, Limit: 5}, {Window: 24 * time.Hour, Limit: 2}}, MaxWait: 10 * time.Millisecond})
		acquire(t, l, p)
		acquire(t, l, p)
		for range 3 {
			if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrQuotaExhausted) {
				t.Fatalf("err = %v", err)
			}
		}
		// The hourly window has 3 left: refusals by the daily window did not consume it. Remaining = min = 0.
		if n, _ := l.Remaining(t.Context(), p); n != 0 {
			t.Fatalf("remaining = %d, want 0", n)
		}
	})
	t.Run("remaining counts down and is -1 without quota", func(t *testing.T) {
		l, p, q := mk(t), uniqueProvider(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Quotas: []Quota{{Window: time.Hour, Limit: 10}}})
		mustConfigure(t, l, q, Config{Rate: 100})
		pm := acquire(t, l, p)
		if pm.Remaining != 9 {
			t.Fatalf("permit remaining = %d", pm.Remaining)
		}
		if n, _ := l.Remaining(t.Context(), p); n != 9 {
			t.Fatalf("remaining = %d", n)
		}
		if n, _ := l.Remaining(t.Context(), q); n != -1 {
			t.Fatalf("no-quota remaining = %d", n)
		}
	})
	t.Run("concurrency cap", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{MaxConcurrent: 2, MaxWait: 50 * time.Millisecond})
		a := acquire(t, l, p)
		acquire(t, l, p)
		if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("third concurrent: err = %v", err)
		}
		a.Release()
		a.Release() // idempotent: must not free a second slot
		acquire(t, l, p)
		if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("after double release: err = %v", err)
		}
	})
	t.Run("ctx ends the wait", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Rate: 2, Burst: 1, MaxWait: 5 * time.Second})
		acquire(t, l, p)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		if _, err := l.Acquire(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("reserve takes what the bucket and every window allow in one step", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Rate: 1, Burst: 5, Quotas: []Quota{{Window: time.Hour, Limit: 4}}, MaxWait: 20 * time.Millisecond})
		got, left, err := l.Reserve(t.Context(), p, 10)
		if err != nil || got != 4 || left != 0 {
			t.Fatalf("reserve 10 = %d (left %d, %v), want the 4 the quota allows and 0 left", got, left, err)
		}
		if got, _, err := l.Reserve(t.Context(), p, 3); err != nil || got != 0 {
			t.Fatalf("second reserve = %d, %v; want 0", got, err)
		}
		if _, err := l.Acquire(t.Context(), p); !errors.Is(err, ErrQuotaExhausted) {
			t.Fatalf("acquire after the quota was reserved: %v", err)
		}
		l2, p2 := mk(t), uniqueProvider(t)
		mustConfigure(t, l2, p2, Config{Rate: 1, Burst: 5, MaxWait: 20 * time.Millisecond})
		if got, left, err := l2.Reserve(t.Context(), p2, 8); err != nil || got != 5 || left != -1 {
			t.Fatalf("reserve 8 from a bucket of 5 = %d (left %d, %v)", got, left, err)
		}
		if _, err := l2.Acquire(t.Context(), p2); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("acquire after the bucket was reserved: %v", err)
		}
		l3, p3 := mk(t), uniqueProvider(t)
		mustConfigure(t, l3, p3, Config{})
		if got, left, err := l3.Reserve(t.Context(), p3, 7); err != nil || got != 7 || left != -1 {
			t.Fatalf("unlimited reserve = %d (left %d, %v)", got, left, err)
		}
	})

	t.Run("a reserved call waits only for a concurrency slot", func(t *testing.T) {
		l, p := mk(t), uniqueProvider(t)
		mustConfigure(t, l, p, Config{Rate: 0.001, Burst: 1, MaxConcurrent: 1, MaxWait: 20 * time.Millisecond})
		first, err := l.AcquireReserved(t.Context(), p)
		if err != nil || first.Remaining != -1 {
			t.Fatalf("first reserved acquire: %+v %v", first, err)
		}
		if _, err := l.AcquireReserved(t.Context(), p); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("second reserved acquire while the slot is taken: %v", err)
		}
		first.Release()
		second, err := l.AcquireReserved(t.Context(), p)
		if err != nil {
			t.Fatalf("reserved acquire after release: %v", err)
		}
		second.Release()
		// The bucket was never touched: its one token is still there for a normal call.
		pm := acquire(t, l, p)
		pm.Release()
	})

	t.Run("not configured", func(t *testing.T) {
		if _, err := mk(t).Acquire(t.Context(), "nope"); !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLocal(t *testing.T) {
	runSuite(t, func(*testing.T) *Limiter { return New(nil) })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"empty is unlimited", Config{}, true},
		{"rate with default burst", Config{Rate: 2.5}, true},
		{"negative rate", Config{Rate: -1}, false},
		{"zero quota limit", Config{Quotas: []Quota{{Window: time.Minute}}}, false},
		{"sub-ms window", Config{Quotas: []Quota{{Window: time.Microsecond, Limit: 1}}}, false},
		{"duplicate windows", Config{Quotas: []Quota{{Window: time.Minute, Limit: 1}, {Window: time.Minute, Limit: 2}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	c := Config{Rate: 2.5}
	_ = c.Validate()
	if c.Burst != 3 || c.MaxWait != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}
