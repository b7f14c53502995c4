//go:build integration

package securetest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/stream"
)

// secureEnv is the secure broker's client configuration read from its secure.env.
type secureEnv struct {
	path     string
	vars     map[string]string // the VIGIL_KAFKA_* lines as written by kafka-secure.sh
	kafka    stream.KafkaConfig
	password string // the SCRAM password (from VIGIL_KAFKA_SASL_PASSWORD_FILE)
}

// loadSecureEnv reads secure.env through the same loader the services use and checks that the
// broker answers. It fails the test when the file is missing or the broker unreachable.
func loadSecureEnv(t *testing.T) secureEnv {
	t.Helper()
	path := os.Getenv("VIGIL_TEST_SECURE_ENV")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("home dir: %v", err)
		}
		path = filepath.Join(home, ".cache", "vigil", "kafka-secure", "secure.env")
	}
	vars, err := readEnvFile(path)
	if err != nil {
		t.Fatalf("secure broker settings %s: %v (start the broker with `bash scripts/kafka/kafka-secure.sh start`)", path, err)
	}
	e := envconf.New(envconf.FromMap(vars))
	kc := stream.LoadKafka(e, "securetest")
	if err := e.Err(); err != nil {
		t.Fatalf("secure.env %s: %v", path, err)
	}
	if kc.SASLMechanism != "SCRAM-SHA-512" || !kc.TLS || kc.TLSCAFile == "" || kc.SASLPassword == "" {
		t.Fatalf("secure.env %s: want SCRAM-SHA-512, TLS and a CA file, got %s ca=%q", path, kc.LogValue(), kc.TLSCAFile)
	}
	kc.Partitions, kc.ReplicationFactor = 3, 1
	se := secureEnv{path: path, vars: vars, kafka: kc, password: kc.SASLPassword}

	cl := se.client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("secure broker at %v unreachable (start it with `bash scripts/kafka/kafka-secure.sh start`): %v", kc.Brokers, err)
	}
	return se
}

// readEnvFile parses KEY=VALUE lines, skipping blanks and # comments.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %q is not KEY=VALUE", line)
		}
		vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return vars, sc.Err()
}

// opts returns the client options of the secure configuration.
func (se secureEnv) opts(t *testing.T) []kgo.Opt {
	t.Helper()
	opts, err := se.kafka.ClientOpts()
	if err != nil {
		t.Fatalf("client options: %v", err)
	}
	return opts
}

// client returns a secure client closed at the end of the test.
func (se secureEnv) client(t *testing.T, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(se.opts(t), extra...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// uniq returns prefix plus a random suffix, for topic and group names.
func uniq(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// secret returns a distinctive random secret value: easy to grep, impossible to meet by chance.
func secret(kind string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "s3cr3t-" + kind + "-" + hex.EncodeToString(b)
}

// freeAddr returns a loopback address with a port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// readAll returns every record of topics, from the start up to the end offsets at call time.
func readAll(t *testing.T, se secureEnv, topics ...string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(se.client(t))
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("end offsets %v: %v", topics, err)
	}
	remaining := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
			return
		}
		if o.Offset > 0 {
			if remaining[o.Topic] == nil {
				remaining[o.Topic] = map[int32]int64{}
			}
			remaining[o.Topic][o.Partition] = o.Offset
		}
	})
	if len(remaining) == 0 {
		return nil
	}
	cl := se.client(t, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v: %d records read, partitions still behind: %v", topics, len(out), remaining)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset+1 >= end {
				delete(remaining[r.Topic], r.Partition)
				if len(remaining[r.Topic]) == 0 {
					delete(remaining, r.Topic)
				}
			}
		})
	}
	return out
}

// testCA is a throwaway CA that signs loopback server certificates.
type testCA struct {
	dir    string
	caFile string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil securetest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := &testCA{dir: dir, caFile: filepath.Join(dir, "ca.pem"), cert: cert, key: key}
	writePEM(t, ca.caFile, "CERTIFICATE", der)
	return ca
}

// serverCert writes a certificate for 127.0.0.1 and localhost and its key; it returns both paths.
func (ca *testCA) serverCert(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
