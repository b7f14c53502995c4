// Command kready waits until a Kafka broker answers metadata requests.
//
// It is used by scripts/kafka/kafka.sh to tell when a freshly started broker
// is usable, instead of sleeping for a guessed amount of time:
//
//	kready -brokers 127.0.0.1:39092 -timeout 90s
//
// It exits 0 once the broker returns cluster metadata that lists at least one
// broker, and 1 with the last error seen when the timeout passes first.
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	seeds := splitBrokers(*brokers)
	if len(seeds) == 0 || *timeout <= 0 || *interval <= 0 || *attempt <= 0 {
		fmt.Fprintln(stderr, "kready: need -brokers and positive -timeout, -interval, -attempt-timeout")
		return 2
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(*attempt),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(*attempt),
		kgo.MetadataMinAge(*interval),
	)
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
