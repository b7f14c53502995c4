package tqemu

import (
	"encoding/json"
	"testing"
)

// TestScalarFastPaths: the shortcuts for plain literals agree with the decoder-based paths.
func TestScalarFastPaths(t *testing.T) {
	ints := []struct {
		raw  string
		want int
		ok   bool
	}{
		{`12`, 12, true}, {` 7 `, 7, true}, {`"42"`, 42, true}, {`-3`, -3, true},
		{`1.5`, 0, false}, {`"x"`, 0, false}, {`true`, 0, false},
	}
	for _, c := range ints {
		got, ok := intFromRaw(json.RawMessage(c.raw))
		if got != c.want || ok != c.ok {
			t.Errorf("intFromRaw(%s) = %d, %v; want %d, %v", c.raw, got, ok, c.want, c.ok)
		}
	}
	strs := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"Yes"`, "Yes", true}, {`" padded "`, "padded", true}, {`"a\"b"`, `a"b`, true},
		{`"caf\u00e9"`, "café", true}, {`""`, "", true}, {`80`, "80", true}, {`true`, "", false},
	}
	for _, c := range strs {
		got, ok := stringValue(json.RawMessage(c.raw))
		if got != c.want || ok != c.ok {
			t.Errorf("stringValue(%s) = %q, %v; want %q, %v", c.raw, got, ok, c.want, c.ok)
		}
	}
}

// TestDecodeIndicatorsFallsBack: only a well-formed array takes the one-pass decode.
func TestDecodeIndicatorsFallsBack(t *testing.T) {
	cases := []struct {
		body string
		n    int
		ok   bool
	}{
		{`[{"value":"192.0.2.1","type":"IP Address"},{"value":"a.example","type_id":3}]`, 2, true},
		{` [] `, 0, true},
		{`{"value":"192.0.2.1"}`, 0, false},
		{`[{"value":"192.0.2.1"},"oops"]`, 0, false},
		{`[{"description":5}]`, 0, false},
	}
	for _, c := range cases {
		ins, ok := decodeIndicators([]byte(c.body))
		if ok != c.ok || len(ins) != c.n {
			t.Errorf("decodeIndicators(%s) = %d items, %v; want %d, %v", c.body, len(ins), ok, c.n, c.ok)
		}
	}
}
