package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilsec/vigil/pkg/envconf"
)

// Fetch defaults: under load a fetch waits for 64 KiB instead of answering with the first record,
// which cut the broker's CPU by about a fifth and the end-to-end p99 at 5,000 rec/s by about half in
// the benchmark (fewer, fuller fetches on a shared machine); when traffic is light a stage adds at
// most 50ms per fetch.
const (
	DefaultFetchMinBytes = 64 << 10
	DefaultFetchMaxWait  = 50 * time.Millisecond
	// DefaultLinger is the producer linger of every service (VIGIL_KAFKA_LINGER).
	DefaultLinger = 5 * time.Millisecond
)

// KafkaConfig is the connection and topic configuration shared by every service.
type KafkaConfig struct {
	Brokers           []string
	ClientID          string
	SASLMechanism     string // "", SCRAM-SHA-256, SCRAM-SHA-512
	SASLUser          string
	SASLPassword      string // secret
	TLS               bool
	TLSCAFile         string
	TLSCertFile       string
	TLSKeyFile        string
	TLSSkipVerify     bool
	Partitions        int
	ReplicationFactor int
	ResetOffset       string // earliest or latest
	DLQTopic          string
	GroupProtocol     string // classic (cooperative-sticky) or consumer (KIP-848)
	// FetchMinBytes and FetchMaxWait: the broker answers a fetch once it has FetchMinBytes or
	// FetchMaxWait passed. Larger minimums mean fewer, fuller fetches (less broker CPU under
	// moderate load) at up to FetchMaxWait of added latency per stage when traffic is light.
	FetchMinBytes int32
	FetchMaxWait  time.Duration
	Linger        time.Duration // producer linger: how long a partition's batch waits for more records (0: none)
	// Compression is the codec of produced batches: snappy (default), lz4, zstd, gzip or none.
	Compression string
}

// LoadKafka reads the VIGIL_KAFKA_* variables. clientID names the service.
func LoadKafka(e *envconf.Env, clientID string) KafkaConfig {
	c := KafkaConfig{
		Brokers:           e.List("VIGIL_KAFKA_BROKERS", []string{"127.0.0.1:19092"}),
		ClientID:          e.String("VIGIL_KAFKA_CLIENT_ID", "vigil-"+clientID),
		SASLMechanism:     strings.ToUpper(e.String("VIGIL_KAFKA_SASL_MECHANISM", "")),
		SASLUser:          e.String("VIGIL_KAFKA_SASL_USER", ""),
		SASLPassword:      e.Secret("VIGIL_KAFKA_SASL_PASSWORD"),
		TLS:               e.Bool("VIGIL_KAFKA_TLS", false),
		TLSCAFile:         e.String("VIGIL_KAFKA_TLS_CA_FILE", ""),
		TLSCertFile:       e.String("VIGIL_KAFKA_TLS_CERT_FILE", ""),
		TLSKeyFile:        e.String("VIGIL_KAFKA_TLS_KEY_FILE", ""),
		TLSSkipVerify:     e.Bool("VIGIL_KAFKA_TLS_INSECURE_SKIP_VERIFY", false),
		Partitions:        e.Int("VIGIL_KAFKA_PARTITIONS", 12),
		ReplicationFactor: e.Int("VIGIL_KAFKA_REPLICATION_FACTOR", 1),
		ResetOffset:       e.OneOf("VIGIL_KAFKA_RESET_OFFSET", "earliest", "earliest", "latest"),
		DLQTopic:          e.String("VIGIL_TOPIC_DLQ", "vigil.dlq"),
		GroupProtocol:     e.OneOf("VIGIL_KAFKA_GROUP_PROTOCOL", "classic", "classic", "consumer"),
		FetchMinBytes:     int32(e.Int("VIGIL_KAFKA_FETCH_MIN_BYTES", DefaultFetchMinBytes)),
		FetchMaxWait:      e.Duration("VIGIL_KAFKA_FETCH_MAX_WAIT", DefaultFetchMaxWait),
		Linger:            e.Duration("VIGIL_KAFKA_LINGER", DefaultLinger),
		Compression:       e.OneOf("VIGIL_KAFKA_COMPRESSION", "snappy", "snappy", "lz4", "zstd", "gzip", "none"),
	}
	if c.FetchMinBytes < 1 || c.FetchMinBytes > 1<<20 {
		e.Fail("VIGIL_KAFKA_FETCH_MIN_BYTES", fmt.Sprint(c.FetchMinBytes), "must be between 1 and 1048576")
	}
	if c.FetchMaxWait < time.Millisecond || c.FetchMaxWait > 5*time.Second {
		e.Fail("VIGIL_KAFKA_FETCH_MAX_WAIT", c.FetchMaxWait.String(), "must be between 1ms and 5s")
	}
	if c.Linger < 0 || c.Linger > time.Second {
		e.Fail("VIGIL_KAFKA_LINGER", c.Linger.String(), "must be between 0 and 1s")
	}
	switch c.SASLMechanism {
	case "", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		e.Fail("VIGIL_KAFKA_SASL_MECHANISM", c.SASLMechanism, "must be SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	if c.SASLMechanism != "" && (c.SASLUser == "" || c.SASLPassword == "") {
		e.Fail("VIGIL_KAFKA_SASL_USER", c.SASLUser, "SASL needs VIGIL_KAFKA_SASL_USER and VIGIL_KAFKA_SASL_PASSWORD")
	}
	if len(c.Brokers) == 0 {
		e.Fail("VIGIL_KAFKA_BROKERS", "", "at least one broker is required")
	}
	if c.Partitions < 1 {
		e.Fail("VIGIL_KAFKA_PARTITIONS", fmt.Sprint(c.Partitions), "must be >= 1")
	}
	if c.ReplicationFactor < 1 {
		e.Fail("VIGIL_KAFKA_REPLICATION_FACTOR", fmt.Sprint(c.ReplicationFactor), "must be >= 1")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		e.Fail("VIGIL_KAFKA_TLS_CERT_FILE", c.TLSCertFile, "client certificate needs both VIGIL_KAFKA_TLS_CERT_FILE and VIGIL_KAFKA_TLS_KEY_FILE")
	}
	return c
}

// LogValue keeps the password out of logs.
func (c KafkaConfig) LogValue() string {
	return fmt.Sprintf("brokers=%s sasl=%s tls=%t", strings.Join(c.Brokers, ","), c.SASLMechanism, c.TLS)
}

// ClientOpts returns the franz-go options for connection and security.
func (c KafkaConfig) ClientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	if codec, ok := compressionCodecs[c.Compression]; ok {
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	}
	if c.TLS || c.TLSCAFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify} //nolint:gosec // opt-in for dev
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("read kafka CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka CA %s: no certificates", c.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("load kafka client cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	auth := scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}
	switch c.SASLMechanism {
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
	}
	return opts, nil
}

// compressionCodecs maps VIGIL_KAFKA_COMPRESSION to franz-go's codecs; "" keeps the client's
// default (snappy).
var compressionCodecs = map[string]kgo.CompressionCodec{
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
	"gzip":   kgo.GzipCompression(),
	"none":   kgo.NoCompression(),
}

// EnsureTopics creates the topics that are missing with the configured partitions and
// replication; existing topics are left alone.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions, replication int, topics ...string) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, int32(partitions), int16(replication), nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// wait until metadata shows every topic (bounded)
	deadline := time.Now().Add(15 * time.Second)
	for {
		md, err := adm.Metadata(ctx, topics...)
		if err == nil {
			ok := true
			for _, t := range topics {
				if td, found := md.Topics[t]; !found || td.Err != nil || len(td.Partitions) == 0 {
					ok = false
				}
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not visible after create", topics)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
