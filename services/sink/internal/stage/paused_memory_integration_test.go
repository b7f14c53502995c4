//go:build integration

package stage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

// pausedMemoryStep is the heap seen while the sink was paused with one backlog size.
type pausedMemoryStep struct {
	Backlog         int     `json:"backlog"`
	MaxHeapInuseMiB float64 `json:"max_heap_inuse_mib"`
}

// pausedMemoryResult is the JSON line written to bench/results/sink-paused-memory.json.
type pausedMemoryResult struct {
	Test            string             `json:"test"`
	At              time.Time          `json:"at"`
	GoVersion       string             `json:"go_version"`
	FlushWindow     int                `json:"flush_window"`
	Distinct        int                `json:"distinct_indicators"`
	BaselineMiB     float64            `json:"baseline_heap_inuse_mib"`
	MaxHeapInuseMiB float64            `json:"max_heap_inuse_mib"`
	Steps           []pausedMemoryStep `json:"steps"`
	RecoverySeconds float64            `json:"recovery_seconds"`
	Committed       int64              `json:"committed"`
}

// heapSampler records the largest HeapInuse seen every 250 ms until stopped.
type heapSampler struct {
	mu     sync.Mutex
	max    uint64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startHeapSampler() *heapSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &heapSampler{cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.mu.Lock()
	s.max = max(s.max, m.HeapInuse)
	s.mu.Unlock()
}

// reset returns the maximum since the last reset and starts a new one.
func (s *heapSampler) reset() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.max
	s.max = 0
	return m
}

func (s *heapSampler) stop() { s.cancel(); s.wg.Wait() }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// repoRoot is the directory holding go.work above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}

// While ThreatQ is down the sink holds at most one flush window: a growing backlog on the broker
// must not grow the heap, nothing may be committed during the outage, and everything is written
// after recovery. The heap numbers are reported (t.Logf, and bench/results/sink-paused-memory.json when
// VIGIL_WRITE_BENCH_RESULTS is set).
func TestIntegrationPausedMemoryBounded(t *testing.T) {
	const (
		window   = 10000
		step     = 10000
		steps    = 5
		distinct = 10000
		warm     = 500
	)
	rg := newRig(t, rigOpts{flushMax: window, flushInterval: 200 * time.Millisecond})
	base := time.Now().UTC()
	rg.start()
	rg.produce(t, ipVerdicts(warm, warm, base))
	waitFor(t, 30*time.Second, "warm-up committed", func() bool { return rg.committed(t) == warm })

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res := pausedMemoryResult{Test: t.Name(), At: time.Now().UTC(), GoVersion: runtime.Version(), FlushWindow: window,
		Distinct: distinct, BaselineMiB: mib(ms.HeapInuse)}

	rg.emu.SetFault(tqemu.Faults{Down: true})
	sampler := startHeapSampler()
	defer sampler.stop()
	all := ipVerdicts(step*steps, distinct, base.Add(time.Second))
	var overall uint64
	for i := range steps {
		rg.produce(t, all[i*step:(i+1)*step])
		pauses := rg.st.Debug().Pauses
		waitFor(t, 20*time.Second, "the sink to pause again", func() bool { return rg.st.Debug().Pauses >= pauses+2 })
		sampler.reset() // measure the paused state, not the test's own producing
		for range 6 {   // 1.5 s paused with this backlog; nothing past the outage is committed
			if c := rg.committed(t); c != warm {
				t.Fatalf("committed %d during the outage, want %d", c, warm)
			}
			time.Sleep(250 * time.Millisecond)
		}
		m := sampler.reset()
		overall = max(overall, m)
		res.Steps = append(res.Steps, pausedMemoryStep{Backlog: (i + 1) * step, MaxHeapInuseMiB: mib(m)})
		t.Logf("backlog %6d verdicts: max HeapInuse %.1f MiB", (i+1)*step, mib(m))
	}
	res.MaxHeapInuseMiB = mib(overall)
	if n := rg.emu.Stats().Indicators; n != warm {
		t.Fatalf("%d indicators during the outage, want %d", n, warm)
	}

	rg.emu.ClearFaults()
	start := time.Now()
	total := int64(warm + step*steps)
	waitFor(t, 60*time.Second, "the whole backlog committed", func() bool { return rg.committed(t) == total })
	res.RecoverySeconds = time.Since(start).Seconds()
	res.Committed = rg.committed(t)
	if n := rg.emu.Stats().Indicators; n != distinct { // the warm-up values are among them
		t.Fatalf("%d indicators after recovery, want %d (%+v)", n, distinct, rg.st.Debug())
	}
	if n := len(rg.dlqRecords(t)); n != 0 {
		t.Fatalf("%d dead letters after the outage", n)
	}
	t.Logf("baseline %.1f MiB, max HeapInuse while paused %.1f MiB (backlog %d, window %d), recovery %.1f s",
		res.BaselineMiB, res.MaxHeapInuseMiB, step*steps, window, res.RecoverySeconds)

	if os.Getenv("VIGIL_WRITE_BENCH_RESULTS") == "" {
		return // `make test` reports only; set VIGIL_WRITE_BENCH_RESULTS=1 to refresh the committed result
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(repoRoot(t), "bench", "results", "sink-paused-memory.json")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
