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

// TestEncodeEnrichmentSortedIdentical: passing each result's SortedFields gives the same bytes as
// EncodeEnrichment; a stale list (wrong length) is ignored rather than written.
func TestEncodeEnrichmentSortedIdentical(t *testing.T) {
	s := newSerde(t)
	e := sampleEnrichment()
	e.Results[0].Fields = map[string]string{"z": "1", "a": "2", "is_tor": "false", "is_torx": "true"}
	want, err := s.EncodeEnrichment(&e)
	if err != nil {
		t.Fatal(err)
	}
	sorted := make([]SortedFields, len(e.Results))
	for i := range e.Results {
		sorted[i] = SortFields(e.Results[i].Fields)
	}
	got, err := s.EncodeEnrichmentSorted(&e, sorted)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("sorted encoding differs (%v)", err)
	}
	if got, _ := s.EncodeEnrichmentSorted(&e, []SortedFields{{"a", "2"}}); !slices.Equal(got, want) {
		t.Fatal("a stale sorted list was written")
	}
	if f := SortFields(e.Results[0].Fields); !slices.Equal(f, SortedFields{"a", "2", "is_tor", "false", "is_torx", "true", "z", "1"}) {
		t.Fatalf("SortFields = %v", f)
	}
}
