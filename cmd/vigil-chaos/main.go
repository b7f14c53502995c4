// Command vigil-chaos proves that Vigil loses nothing under failure and scales out without
// stopping. It starts the four services as separate processes against the real broker and Redis
// (scripts/kafka/kafka.sh, scripts/redis.sh) with both emulators, on topics, groups and a Redis
// database of its own.
//
//	vigil-chaos chaos    [--quick] [--records N] [--indicators N] [--duration D] [--outage D] [--kills N]
//	vigil-chaos scaleout [--records N] [--rate R] [--protocols classic,consumer]
//
// chaos streams generated Suricata EVE records while it kills every service with SIGKILL,
// takes ThreatQ down, restarts Redis and the broker; after the drain it balances every record
// and indicator across the pipeline and compares ThreatQ with a no-chaos reference run. It
// writes bench/results/chaos-<date>.json and exits 1 on any loss.
//
// scaleout streams records into one replica per service, adds two enrich and two correlate
// replicas mid-stream, removes one of each, and reports throughput per second per group, the
// dip while rebalancing and provider calls per unique indicator, once per group protocol. It
// writes bench/results/scaleout-<date>.json.
//
// Both restart Redis and the broker only as the schedule says (chaos) and leave them running.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(os.Stderr, "vigil-chaos:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "vigil-chaos:", err)
		os.Exit(1)
	}
}
