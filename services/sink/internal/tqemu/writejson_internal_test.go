package tqemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestWriteJSONMatchesEncodingJSON pins the response bytes to what encoding/json's Encoder writes.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"html escaped", envelope{Data: map[string]any{"value": "<a&b>", "z": 1, "a": []string{"x"}}}},
		{"list", func() any {
			n := 2
			return envelope{Total: &n, Data: []attrOut{{ID: 1, Name: "Is VPN", Value: "Yes"}, {ID: 2}}}
		}()},
		{"validation", map[string]any{"data": map[string]any{"errors": ValidationErrors{"0.value": {"The value field is required."}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(tt.v); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second call reuses a pooled buffer
				rec := httptest.NewRecorder()
				writeJSON(rec, http.StatusCreated, tt.v)
				if rec.Code != http.StatusCreated || rec.Body.String() != want.String() {
					t.Fatalf("writeJSON = %d %q, want 201 %q", rec.Code, rec.Body.String(), want.String())
				}
				if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(want.Len()) {
					t.Fatalf("Content-Length %q, want %d", cl, want.Len())
				}
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		length  int64 // -1: unknown (chunked)
		body    string
		want    string
		wantErr bool
	}{
		{"content length", 7, `[{"a"}]`, `[{"a"}]`, false},
		{"unknown length", -1, `[1,2]`, `[1,2]`, false},
		{"empty", 0, ``, ``, false},
		{"short body", 10, `[1]`, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/indicators/consume", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			got, err := readBody(r)
			if (err != nil) != tt.wantErr || (!tt.wantErr && string(got) != tt.want) {
				t.Fatalf("readBody = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
