package writer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/vigilsec/vigil/services/sink/internal/threatq"
)

// TestHashJSONMatchesEncodingJSON: stored fingerprints stay valid, so hashJSON must hash exactly
// the bytes encoding/json.Marshal produces.
func TestHashJSONMatchesEncodingJSON(t *testing.T) {
	type fp struct {
		V       int
		Value   string
		Keep    bool
		Sources []string
		Tags    []string
		Score   float64
	}
	tests := []struct {
		name string
		v    any
	}{
		{"attributes", []threatq.Attribute{{Name: "Is VPN", Value: "Yes", Sources: []string{"Vigil"}}, {Name: "Vigil Reason", Value: "<tor&exit>"}}},
		{"empty attributes", []threatq.Attribute{}},
		{"fingerprint, no score", fp{1, "198.51.100.7", true, []string{"Vigil|AMBER"}, nil, -1}},
		{"fingerprint, score and unicode", fp{1, "bücher.example\u2028", false, nil, []string{"a", "b"}, 7}},
		{"fractional score", fp{Score: 0.000001}},
		{"large score", fp{Score: 1e21}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			want := hex.EncodeToString(sum[:])
			for range 2 { // the second call reuses a pooled buffer
				if got := hashJSON(tt.v); got != want {
					t.Fatalf("hashJSON = %s, want %s (of %s)", got, want, b)
				}
			}
		})
	}
}
