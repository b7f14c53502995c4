// Command kready waits until a Kafka broker answers metadata requests.
//
// It is used by scripts/kafka/kafka.sh to tell when a freshly started broker
// is usable, instead of sleeping for a guessed amount of time:
//
//	kready -brokers 127.0.0.1:39092 -timeout 90s
//
// It exits 0 once the broker returns cluster metadata that lists at least one
// broker, and 1 with the last error seen when the timeout passes first.
//
// A broker behind TLS and SASL/SCRAM (scripts/kafka/kafka-secure.sh) is probed with
//
//	kready -brokers 127.0.0.1:39192 -tls-ca ca.pem -sasl-user vigil -sasl-password-file password
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilsec/vigil/pkg/stream"
)

// ErrNotReady is returned by waitReady when the broker did not become ready
// before the deadline.
var ErrNotReady = errors.New("kafka not ready")

// errNoBrokers means the metadata answer listed no broker yet.
var errNoBrokers = errors.New("metadata lists no brokers")

// metadataFetcher is the part of kadm.Client that waitReady needs.
type metadataFetcher interface {
	BrokerMetadata(ctx context.Context) (kadm.Metadata, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, waits for the broker and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kready", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:39092", "comma-separated seed brokers (host:port)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait before giving up")
	interval := fs.Duration("interval", 250*time.Millisecond, "pause between attempts")
	attempt := fs.Duration("attempt-timeout", 3*time.Second, "deadline of one metadata request")
	quiet := fs.Bool("quiet", false, "print nothing on success")
	var sec security
	fs.BoolVar(&sec.tls, "tls", false, "connect with TLS (implied by -tls-ca)")
	fs.StringVar(&sec.caFile, "tls-ca", "", "PEM file of the CA that signed the broker certificate")
	fs.StringVar(&sec.mechanism, "sasl-mechanism", "SCRAM-SHA-512", "SASL mechanism used with -sasl-user: SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&sec.user, "sasl-user", "", "SASL/SCRAM user (empty: no SASL)")
	fs.StringVar(&sec.passwordFile, "sasl-password-file", "", "file holding the SASL password (trailing newline ignored)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	seeds := splitBrokers(*brokers)
	if len(seeds) == 0 || *timeout <= 0 || *interval <= 0 || *attempt <= 0 {
		fmt.Fprintln(stderr, "kready: need -brokers and positive -timeout, -interval, -attempt-timeout")
		return 2
	}

	secOpts, err := sec.opts(seeds)
	if err != nil {
		fmt.Fprintf(stderr, "kready: %v\n", err)
		return 2
	}
	cl, err := kgo.NewClient(append(secOpts,
		kgo.DialTimeout(*attempt),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(*attempt),
		kgo.MetadataMinAge(*interval),
	)...)
	if err != nil {
		fmt.Fprintf(stderr, "kready: new client: %v\n", err)
		return 2
	}
	defer cl.Close()

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	md, err := waitReady(ctx, kadm.NewClient(cl), *interval, *attempt)
	if err != nil {
		fmt.Fprintf(stderr, "kready: broker %s not ready after %s: %v\n",
			strings.Join(seeds, ","), time.Since(start).Round(time.Millisecond), err)
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stdout, "kready: kafka at %s ready after %s (cluster %s, controller %d, %d broker(s))\n",
			strings.Join(seeds, ","), time.Since(start).Round(time.Millisecond), md.Cluster, md.Controller, len(md.Brokers))
	}
	return 0
}

// waitReady asks for broker metadata every interval until an answer lists at
// least one broker or ctx ends. Each attempt gets at most attempt to finish.
// On ctx end it returns ErrNotReady wrapping the last attempt's error.
func waitReady(ctx context.Context, adm metadataFetcher, interval, attempt time.Duration) (kadm.Metadata, error) {
	var lastErr error
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		md, err := adm.BrokerMetadata(actx)
		cancel()
		if err == nil && len(md.Brokers) == 0 {
			err = errNoBrokers
		}
		if err == nil {
			return md, nil
		}
		// Keep the broker's own error rather than the ctx error the last
		// attempt ends with when the overall deadline cuts it short.
		if lastErr == nil || ctx.Err() == nil {
			lastErr = err
		}

		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return kadm.Metadata{}, fmt.Errorf("%w: %w", ErrNotReady, lastErr)
		case <-t.C:
		}
	}
}

// splitBrokers splits a comma-separated list, dropping empty entries.
func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// security holds the optional TLS and SASL flags.
type security struct {
	tls          bool
	caFile       string
	mechanism    string
	user         string
	passwordFile string
}

// opts returns the seed, TLS and SASL client options for the flags, built the same way the
// services build theirs (stream.KafkaConfig).
func (s security) opts(seeds []string) ([]kgo.Opt, error) {
	kc := stream.KafkaConfig{Brokers: seeds, ClientID: "kready", TLS: s.tls, TLSCAFile: s.caFile}
	if s.user == "" && s.passwordFile != "" {
		return nil, errors.New("-sasl-password-file needs -sasl-user")
	}
	if s.user != "" {
		mech := strings.ToUpper(s.mechanism)
		if mech != "SCRAM-SHA-256" && mech != "SCRAM-SHA-512" {
			return nil, fmt.Errorf("-sasl-mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", s.mechanism)
		}
		if s.passwordFile == "" {
			return nil, errors.New("-sasl-user needs -sasl-password-file")
		}
		pw, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read sasl password: %w", err)
		}
		kc.SASLMechanism, kc.SASLUser, kc.SASLPassword = mech, s.user, strings.TrimRight(string(pw), "\r\n")
		if kc.SASLPassword == "" {
			return nil, fmt.Errorf("sasl password file %s is empty", s.passwordFile)
		}
	}
	return kc.ClientOpts()
}
