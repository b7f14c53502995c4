//go:build integration

package securetest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/pkg/service"
)

// redisServer is a throwaway redis-server child process.
type redisServer struct {
	addr     string
	password string
	tls      bool
	caFile   string // set when tls
}

// startRedis starts redis-server on a free loopback port with requirepass (from a 0600 config
// file, so the password is not on the command line) and, when ca is not nil, TLS only (no plain
// port) with a certificate signed by ca. The server is stopped when the test ends.
func startRedis(t *testing.T, password string, ca *testCA) redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (apt-get install -y redis-server): %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := []string{
		"bind 127.0.0.1",
		"protected-mode yes",
		`save ""`,
		"appendonly no",
		"dir " + dir,
		"requirepass " + password,
	}
	rs := redisServer{addr: addr, password: password}
	if ca != nil {
		cert, key := ca.serverCert(t, "redis")
		conf = append(conf, "port 0", "tls-port "+port, "tls-cert-file "+cert, "tls-key-file "+key,
			"tls-ca-cert-file "+ca.caFile, "tls-auth-clients no")
		rs.tls, rs.caFile = true, ca.caFile
	} else {
		conf = append(conf, "port "+port)
	}
	confFile := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return rs
		}
		select {
		case err := <-exited:
			t.Fatalf("redis-server exited (%v): %s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not listening after 10s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// config returns the client configuration that matches the server.
func (rs redisServer) config() service.RedisConfig {
	return service.RedisConfig{Addr: rs.addr, Password: rs.password, TLS: rs.tls, TLSCAFile: rs.caFile, PoolSize: 2, MaxRetries: 1}
}

// service.NewRedis reaches a Redis that requires AUTH (with and without TLS) with the right
// settings, and every wrong setting is an error, returned promptly and without the password.
func TestRedisAuthAndTLS(t *testing.T) {
	t.Parallel()
	password := secret("redis-password")
	wrong := secret("wrong-redis-password")
	ca := newTestCA(t)
	tlsRedis := startRedis(t, password, ca)
	plainRedis := startRedis(t, password, nil)
	otherCA := newTestCA(t)

	tests := []struct {
		name    string
		cfg     func() service.RedisConfig
		wantErr string // "" means success; else a substring of the error (case-insensitive)
	}{
		{name: "tls and auth", cfg: tlsRedis.config},
		{name: "auth without tls", cfg: plainRedis.config},
		{name: "wrong password over tls", cfg: func() service.RedisConfig {
			c := tlsRedis.config()
			c.Password = wrong
			return c
		}, wantErr: "wrongpass"},
		{name: "wrong password", cfg: func() service.RedisConfig {
			c := plainRedis.config()
			c.Password = wrong
			return c
		}, wantErr: "wrongpass"},
		{name: "no password", cfg: func() service.RedisConfig {
			c := tlsRedis.config()
			c.Password = ""
			return c
		}, wantErr: "noauth"},
		{name: "tls without the CA: verification is on", cfg: func() service.RedisConfig {
			c := tlsRedis.config()
			c.TLSCAFile = ""
			return c
		}, wantErr: "certificate signed by unknown authority"},
		{name: "tls with another CA", cfg: func() service.RedisConfig {
			c := tlsRedis.config()
			c.TLSCAFile = otherCA.caFile
			return c
		}, wantErr: "certificate signed by unknown authority"},
		{name: "plaintext client on the tls port", cfg: func() service.RedisConfig {
			c := tlsRedis.config()
			c.TLS, c.TLSCAFile = false, ""
			return c
		}, wantErr: "eof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			start := time.Now()
			rdb, err := service.NewRedis(ctx, tt.cfg())
			took := time.Since(start)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewRedis: %v", err)
				}
				defer rdb.Close()
				key := uniq("securetest")
				if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
					t.Fatalf("SET: %v", err)
				}
				if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "v" {
					t.Fatalf("GET = %q, %v; want v", got, err)
				}
				return
			}
			if err == nil {
				_ = rdb.Close()
				t.Fatal("NewRedis succeeded, want an error")
			}
			if took > 12*time.Second {
				t.Fatalf("error after %s, want it promptly: %v", took.Round(time.Millisecond), err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), wrong) {
				t.Fatalf("error %q contains a password", err)
			}
			t.Logf("rejected after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}
