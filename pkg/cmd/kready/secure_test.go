package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testPKI is a throwaway CA and a server certificate for 127.0.0.1 signed by it.
type testPKI struct {
	caFile string
	server tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kready test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}
}

// secureCluster starts a kfake broker that only speaks TLS with SASL/SCRAM-SHA-512 for user
// "vigil" with password "right-password".
func secureCluster(t *testing.T, pki testPKI) string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "vigil", "right-password"),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunSecure(t *testing.T) {
	pki := newTestPKI(t)
	addr := secureCluster(t, pki)
	right := writeFile(t, "right", "right-password\n")
	wrong := writeFile(t, "wrong", "wrong-password\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // substring of stderr when wantCode != 0
	}{
		{
			name:     "tls and scram",
			args:     []string{"-tls-ca", pki.caFile, "-sasl-user", "vigil", "-sasl-password-file", right},
			wantCode: 0,
		},
		{
			name:     "wrong password",
			args:     []string{"-tls-ca", pki.caFile, "-sasl-user", "vigil", "-sasl-password-file", wrong},
			wantCode: 1,
			wantErr:  "not ready", // kfake drops the connection; the real broker's message is checked in pkg/securetest
		},
		{
			name:     "tls without the CA",
			args:     []string{"-tls", "-sasl-user", "vigil", "-sasl-password-file", right},
			wantCode: 1,
			wantErr:  "certificate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			// generous attempts: with every package's tests running at once on 2 cores, a 1 s
			// attempt can time out dialling before the TLS handshake gets to fail
			args := append([]string{"-brokers", addr, "-timeout", "6s", "-interval", "50ms", "-attempt-timeout", "3s"}, tt.args...)
			code := run(context.Background(), args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit = %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if tt.wantCode == 0 && !strings.Contains(out.String(), "ready after") {
				t.Fatalf("stdout = %q, want a ready line", out.String())
			}
			if tt.wantCode != 0 && !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("stderr = %q, want it to mention %q", errOut.String(), tt.wantErr)
			}
			if strings.Contains(out.String()+errOut.String(), "right-password") {
				t.Fatal("output contains the SASL password")
			}
		})
	}
}

func TestRunRejectsBadSecurityFlags(t *testing.T) {
	pw := writeFile(t, "pw", "secret\n")
	empty := writeFile(t, "empty", "\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "user without password file", args: []string{"-sasl-user", "vigil"}, wantErr: "-sasl-password-file"},
		{name: "password file without user", args: []string{"-sasl-password-file", pw}, wantErr: "-sasl-user"},
		{name: "missing password file", args: []string{"-sasl-user", "vigil", "-sasl-password-file", pw + ".none"}, wantErr: "read sasl password"},
		{name: "empty password file", args: []string{"-sasl-user", "vigil", "-sasl-password-file", empty}, wantErr: "is empty"},
		{name: "bad mechanism", args: []string{"-sasl-user", "vigil", "-sasl-password-file", pw, "-sasl-mechanism", "PLAIN"}, wantErr: "-sasl-mechanism"},
		{name: "missing CA file", args: []string{"-tls-ca", pw + ".none"}, wantErr: "read kafka CA"},
		{name: "CA file without certificates", args: []string{"-tls-ca", pw}, wantErr: "no certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errOut); code != 2 {
				t.Fatalf("exit = %d, want 2; stderr: %s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("stderr = %q, want it to mention %q", errOut.String(), tt.wantErr)
			}
			if strings.Contains(errOut.String(), "secret") {
				t.Fatal("stderr contains the password")
			}
		})
	}
}
