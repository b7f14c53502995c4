package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"THREATQ_EMU_CLIENT_ID": "env-id", "THREATQ_EMU_PASSWORD": "env-pw"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name       string
		args       []string
		env        func(string) string
		wantErr    bool
		wantID     string
		wantPW     string
		wantSecret string
	}{
		{"defaults", nil, func(string) string { return "" }, false, "vigil-dev", "vigil-dev", "vigil-dev-secret"},
		{"env overrides defaults", nil, getenv, false, "env-id", "env-pw", "vigil-dev-secret"},
		{"flag overrides env", []string{"-client-id", "flag-id", "-client-secret", "s"}, getenv, false, "flag-id", "env-pw", "s"},
		{"cert without key", []string{"-tls-cert", "c.pem"}, getenv, true, "", "", ""},
		{"bad snapshot period", []string{"-snapshot", "x.json", "-snapshot-every", "0s"}, getenv, true, "", "", ""},
		{"unknown flag", []string{"-nope"}, getenv, true, "", "", ""},
		{"negative gc percent", []string{"-gc-percent", "-1"}, getenv, true, "", "", ""},
		{"gc percent kept from GOGC", []string{"-gc-percent", "0"}, getenv, false, "env-id", "env-pw", "vigil-dev-secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(tc.args, tc.env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (c.clientID != tc.wantID || c.password != tc.wantPW || c.clientSecret != tc.wantSecret) {
				t.Fatalf("config = %+v", c)
			}
			if err == nil && len(tc.args) == 0 && c.gcPercent != 300 {
				t.Fatalf("default gc percent %d, want 300", c.gcPercent)
			}
		})
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the
// paths and a pool that trusts it.
func writeCert(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tqemu test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TestServeTLSAndSnapshot runs the binary's serve loop over TLS, writes an
// indicator, stops it, and checks the snapshot is saved and loaded again.
func TestServeTLSAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, pool := writeCert(t, dir)
	snap := filepath.Join(dir, "state.json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	args := []string{"-addr", "127.0.0.1:0", "-tls-cert", certPath, "-tls-key", keyPath, "-snapshot", snap, "-seed", "5"}
	noenv := func(string) string { return "" }

	start := func() (string, func() error) {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, args, noenv, io.Discard, ready) }()
		select {
		case addr := <-ready:
			return "https://" + addr, func() error { cancel(); return <-done }
		case err := <-done:
			cancel()
			t.Fatalf("serve: %v", err)
		}
		return "", nil
	}
	token := func(base string) string {
		res, err := client.Post(base+"/api/token?grant_type=password&client_id=vigil-dev", "application/json",
			strings.NewReader(`{"email":"analyst@vigil.local","password":"vigil-dev"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
			t.Fatalf("token: %v %+v", err, tr)
		}
		return tr.AccessToken
	}
	do := func(method, url, tok, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	base, stop := start()
	tok := token(base)
	if code := do("POST", base+"/api/indicators/consume", tok, `[{"value":"203.0.113.7","type":"IP Address"}]`); code != 200 {
		t.Fatalf("consume: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("snapshot not written: %v", err)
	}

	base, stop = start()
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	tok = token(base)
	if code := do("GET", base+"/api/indicators?value=203.0.113.7", tok, ""); code != 200 {
		t.Fatalf("list: %d", code)
	}
	res, err := client.Get(base + "/_emulator/dump")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var dump struct {
		Indicators []struct {
			Value string `json:"value"`
		} `json:"indicators"`
	}
	if err := json.NewDecoder(res.Body).Decode(&dump); err != nil {
		t.Fatal(err)
	}
	if len(dump.Indicators) != 1 || dump.Indicators[0].Value != "203.0.113.7" {
		t.Fatalf("state after restart = %+v", dump)
	}
}
