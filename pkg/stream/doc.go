// Package stream is Vigil's consume → transform → produce runtime on franz-go.
//
// Every service runs one Runner: it polls a batch, hands the whole batch to a BatchHandler,
// produces the outputs and dead letters, waits for Kafka's acknowledgements and only then
// commits the batch's offsets (at-least-once). A record whose handling fails permanently goes
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
