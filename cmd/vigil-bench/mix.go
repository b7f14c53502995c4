package main

import (
	"fmt"
	"math/rand"
)

// Record mixes: which pool indicator raw record i carries.
const (
	mixZipf    = "zipf"    // heavy-tailed popularity, as destination addresses in real traffic
	mixUniform = "uniform" // round robin over the pool: every indicator equally often
)

// recordMix picks the pool index for each raw record, deterministically for a seed.
type recordMix struct {
	kind string
	s    float64
	n    int
	zipf *rand.Zipf
}

// newRecordMix returns a mix over a pool of n indicators. For zipf, s (> 1) is the exponent:
// P(rank k) ∝ (1+k)^-s, rank 0 the most frequent.
func newRecordMix(kind string, s float64, n int, seed uint32) (*recordMix, error) {
	m := &recordMix{kind: kind, s: s, n: n}
	switch kind {
	case mixUniform:
	case mixZipf:
		if s <= 1 {
			return nil, fmt.Errorf("zipf exponent %v: must be > 1", s)
		}
		if n < 1 {
			return nil, fmt.Errorf("zipf over %d indicators: need at least 1", n)
		}
		m.zipf = rand.NewZipf(rand.New(rand.NewSource(int64(seed))), s, 1, uint64(n-1))
	default:
		return nil, fmt.Errorf("record mix %q: want %s or %s", kind, mixZipf, mixUniform)
	}
	return m, nil
}

// pick returns the pool index of record i. Zipf draws are sequential: call pick in record order.
func (m *recordMix) pick(i int) int {
	if m.zipf == nil {
		return i % m.n
	}
	return int(m.zipf.Uint64())
}

// String describes the mix for the report.
func (m *recordMix) String() string {
	if m.zipf == nil {
		return fmt.Sprintf("uniform round robin over %d indicators", m.n)
	}
	return fmt.Sprintf("zipf s=%.2f over %d indicators", m.s, m.n)
}
