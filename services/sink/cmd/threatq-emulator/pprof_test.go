package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWithPprof(t *testing.T) {
	emu := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name     string
		ip       net.IP
		path     string
		wantCode int
	}{
		{"loopback serves pprof", net.IPv4(127, 0, 0, 1), "/debug/pprof/cmdline", http.StatusOK},
		{"loopback passes other paths", net.IPv4(127, 0, 0, 1), "/api/indicators", http.StatusTeapot},
		{"other address has no pprof", net.IPv4(10, 0, 0, 1), "/debug/pprof/cmdline", http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := withPprof(emu, &net.TCPAddr{IP: tt.ip, Port: 18443})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s on %s: status %d, want %d", tt.path, tt.ip, rec.Code, tt.wantCode)
			}
		})
	}
}
