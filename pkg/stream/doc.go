// Package stream is Vigil's consume → transform → produce runtime on franz-go.
//
// Every service runs one Runner: it polls a batch, hands the whole batch to a BatchHandler,
// produces the outputs and dead letters, and commits the batch's offsets only after Kafka
// acknowledged every output of the batch and of all earlier batches (at-least-once). Batches are
// pipelined: while up to Config.MaxInFlight batches are being produced and committed (commits
// are ordered and coalesced by a committer goroutine), the next one is polled and handled, on
// the poll goroutine (the handler is never called concurrently). A produce failure rewinds
// every partition of the failed and later batches to its first uncommitted record and pauses
// it; the batches in flight are drained and committed before a rebalance is let through and
// before Run returns. A record whose handling fails permanently goes
// to the dead-letter topic as an events.DeadLetter with headers; transient failures are retried
// with backoff; a handler that returns ErrPause (e.g. a breaker is open) makes the runner rewind
// and pause the batch's partitions, so lag grows in Kafka instead of memory.
//
//	r, err := stream.NewRunner(stream.Config{Stage: "enrich", Group: "vigil-enrich",
//		Topics: []string{"indicators.observed"}, Kafka: kcfg}, handler, serde, logger)
//	if err != nil { return err }
//	g.Go(func() error { return r.Run(ctx) })
//	... r.Close(shutdownCtx)
package stream
