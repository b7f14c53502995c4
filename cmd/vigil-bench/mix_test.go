package main

import "testing"

func TestRecordMix(t *testing.T) {
	tests := []struct {
		name         string
		kind         string
		s            float64
		n, records   int
		wantDistinct func(d int) bool
		wantErr      bool
	}{
		{name: "uniform covers the pool", kind: mixUniform, n: 100, records: 1000, wantDistinct: func(d int) bool { return d == 100 }},
		{name: "zipf repeats the head", kind: mixZipf, s: 1.05, n: 20000, records: 100000,
			wantDistinct: func(d int) bool { return d > 5000 && d < 20000 }},
		{name: "zipf exponent must exceed 1", kind: mixZipf, s: 1, n: 10, wantErr: true},
		{name: "unknown mix", kind: "gauss", n: 10, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newRecordMix(tc.kind, tc.s, tc.n, 7)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			seen := map[int]int{}
			for i := range tc.records {
				k := m.pick(i)
				if k < 0 || k >= tc.n {
					t.Fatalf("pick(%d) = %d, outside [0,%d)", i, k, tc.n)
				}
				seen[k]++
			}
			if !tc.wantDistinct(len(seen)) {
				t.Errorf("distinct = %d", len(seen))
			}
			if tc.kind == mixZipf && seen[0] <= seen[tc.n/2] {
				t.Errorf("rank 0 drawn %d times, rank %d %d times: no head", seen[0], tc.n/2, seen[tc.n/2])
			}
		})
	}
}

func TestRecordMixDeterministic(t *testing.T) {
	a, _ := newRecordMix(mixZipf, 1.05, 1000, 42)
	b, _ := newRecordMix(mixZipf, 1.05, 1000, 42)
	for i := range 500 {
		if x, y := a.pick(i), b.pick(i); x != y {
			t.Fatalf("record %d: %d vs %d for the same seed", i, x, y)
		}
	}
}
