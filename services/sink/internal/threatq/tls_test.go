package threatq

import (
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/services/sink/internal/tqemu"
)

// TestTLSVerification: HTTPS with certificate verification on; a private CA is trusted only
// through CAFile.
func TestTLSVerification(t *testing.T) {
	t.Parallel()
	emu := tqemu.New(tqemu.Options{Seed: 3})
	srv := httptest.NewTLSServer(emu)
	defer srv.Close()
	o := emu.Options()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{BaseURL: srv.URL, ClientID: o.ClientID, Email: o.Email, Password: o.Password, Timeout: 5 * time.Second}

	cases := []struct {
		name    string
		caFile  string
		wantErr string
	}{
		{"private CA without CAFile is refused", "", "certificate"},
		{"private CA trusted through CAFile", caFile, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.CAFile = tc.caFile
			c, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Resolve(t.Context())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("resolve over TLS with the CA file: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want a certificate error, got %v", err)
			}
		})
	}
}

// TestIdleConnections: the transport keeps as many idle connections as the caller runs calls in
// parallel (closing and reopening them costs a handshake per call).
func TestIdleConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  int
		want int
	}{
		{"default", 0, 16},
		{"sized by the caller", 36, 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hc, err := newHTTPClient(Config{MaxIdleConns: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			tr, ok := hc.Transport.(*http.Transport)
			if !ok {
				t.Fatalf("transport is %T", hc.Transport)
			}
			if tr.MaxIdleConnsPerHost != tc.want || tr.MaxIdleConns < tc.want {
				t.Fatalf("idle per host %d, total %d; want %d", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tc.want)
			}
		})
	}
}
