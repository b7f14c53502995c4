package events

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAppendStringMapSorted: for maps of every size around the small-map limit and keys that share long
// prefixes, differ only past 8 bytes, are short or hold zero bytes, the block lists the keys in string order
// with their values.
func TestAppendStringMapSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"", "a", "is_", "is_tor", "is_torx", "\x00", "zz", "prefix_long_", "prefix_lonG_"}
	for n := 1; n <= 40; n++ {
		m := map[string]string{}
		for len(m) < n {
			k := alphabet[rng.IntN(len(alphabet))] + alphabet[rng.IntN(len(alphabet))] + fmt.Sprint(rng.IntN(50))
			m[k] = "v" + k
		}
		keys := make([]string, 0, n)
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := appendLong(nil, int64(n))
		for _, k := range keys {
			want = appendString(appendString(want, k), m[k])
		}
		want = append(want, 0)
		if got := appendStringMap(nil, m); !slices.Equal(got, want) {
			t.Fatalf("%d keys: block not in key order", n)
		}
	}
}
