// Command vigil-run is the one-command demo behind `make run`: it starts a development Kafka
// broker, the provider and ThreatQ emulators and the four Vigil services as child processes,
// replays the bundled sample logs through the pipeline, waits until everything has drained and
// prints a summary (also written to run/summary.json). It exits 0 only when nothing was lost.
//
//	vigil-run [--follow] [--real] [--keep-logs] [flags]
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Environ(), os.LookupEnv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, ErrInterrupted):
		fmt.Fprintln(os.Stderr, "vigil-run: interrupted; every child stopped")
		os.Exit(130)
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(os.Stderr, "vigil-run:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "vigil-run:", err)
		os.Exit(1)
	}
}
