package threatq

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		length  int64
		limit   int64
		want    string
		wantErr bool
	}{
		{"content length", `{"data":[]}`, 11, 1 << 20, `{"data":[]}`, false},
		{"unknown length", `{"data":[1]}`, -1, 1 << 20, `{"data":[1]}`, false},
		{"empty", ``, 0, 1 << 20, ``, false},
		{"length above limit reads up to limit", `0123456789`, 10, 4, `0123`, false},
		{"short body", `{"da`, 11, 1 << 20, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{ContentLength: tt.length, Body: io.NopCloser(strings.NewReader(tt.body))}
			got, err := readBody(resp, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.want {
				t.Fatalf("body = %q, want %q", got, tt.want)
			}
		})
	}
}
