package allowlist

import (
	"runtime"
	"testing"

	"github.com/vigilsec/vigil/pkg/events"
)

// TestShippedHeap loads every shipped warninglist and logs the heap the Set
// keeps (run with -v), and the peak heap while loading; it checks the Set
// still matches.
func TestShippedHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Load(Config{Warninglists: []string{All}})
	if err != nil {
		t.Fatal(err)
	}
	var loaded runtime.MemStats
	runtime.ReadMemStats(&loaded)
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("all shipped lists: %d entries, heap kept %.1f MiB, heap in use before the GC after loading %.1f MiB (allocated while loading %.1f MiB)",
		s.Len(), float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), float64(loaded.HeapInuse-before.HeapInuse)/(1<<20),
		float64(loaded.TotalAlloc-before.TotalAlloc)/(1<<20))
	if _, ok := s.Match(events.Indicator{Type: events.TypeIPv4, Value: "8.8.8.8"}); !ok || s.Len() < 200000 {
		t.Fatalf("set of %d entries does not match 8.8.8.8", s.Len())
	}
	runtime.KeepAlive(s)
}
