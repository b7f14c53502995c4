// Command devkafka runs an in-process Kafka-compatible broker (franz-go kfake) on a fixed
// loopback port for `make run` on a machine with nothing installed. It is a development tool,
// not a broker for production or for the integration tests (those use real Apache Kafka).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vigilsec/vigil/pkg/telemetry"
)

func main() {
	if err := run(); err != nil {
		slog.Error("devkafka exited", "err", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:19092", "listen address (loopback)")
	partitions := flag.Int("partitions", 12, "default partitions for auto-created topics")
	flag.Parse()
	host, portS, ok := strings.Cut(*addr, ":")
	if !ok || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("-addr must be a loopback host:port, got %q", *addr)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return fmt.Errorf("-addr port: %w", err)
	}
	ctx, stop := telemetry.SignalContext(context.Background())
	defer stop()
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.DefaultNumPartitions(*partitions), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer c.Close()
	slog.Info("devkafka listening", "addr", *addr)
	<-ctx.Done()
	return nil
}
