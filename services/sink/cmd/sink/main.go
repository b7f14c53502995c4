// Command sink writes correlate's verdicts to ThreatQ (coalesced per indicator within a flush
// window, no-op writes skipped, rejected records dead-lettered, partitions paused while ThreatQ is
// unavailable) and publishes analysts' decisions read back from ThreatQ on the feedback topic.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/sink/internal/config"
	"github.com/vigilsec/vigil/services/sink/internal/feedback"
	"github.com/vigilsec/vigil/services/sink/internal/stage"
	"github.com/vigilsec/vigil/services/sink/internal/threatq"
	"github.com/vigilsec/vigil/services/sink/internal/writer"
)

func main() {
	if err := run(); err != nil {
		slog.Error("sink exited", "err", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := telemetry.SignalContext(context.Background())
	defer stop()
	cfg, err := config.Load(envconf.New(os.LookupEnv))
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	deps, err := service.Start(cfg.Common)
	if err != nil {
		return err
	}
	log := deps.Log
	rdb, err := service.NewRedis(ctx, cfg.Common.Redis)
	if err != nil {
		return err
	}
	if rdb != nil {
		defer func() { _ = rdb.Close() }()
	}

	tq, err := threatq.New(cfg.ThreatQ, log)
	if err != nil {
		return fmt.Errorf("threatq client: %w", err)
	}
	log.Info("resolving threatq types and statuses", "threatq", cfg.ThreatQ.LogValue())
	if err := resolve(ctx, tq, log); err != nil {
		return err
	}
	if err := checkStatuses(tq, cfg.Writer); err != nil {
		return err
	}

	var store writer.FingerprintStore = writer.NewMemoryStore()
	var cursor feedback.Cursor = &feedback.MemoryCursor{}
	if rdb != nil {
		store = writer.NewRedisStore(rdb, cfg.FingerprintTTL)
		cursor = feedback.NewRedisCursor(rdb, "")
	}
	metrics, err := stage.NewMetrics(deps.Tel.Meter("vigil/sink"))
	if err != nil {
		return fmt.Errorf("sink metrics: %w", err)
	}
	w, err := writer.New(cfg.Writer, tq, store, metrics, log)
	if err != nil {
		return err
	}
	h := stage.New(w, deps.Serde, metrics, log)

	rcfg, err := deps.RunnerConfig("sink", []string{cfg.InTopic})
	if err != nil {
		return err
	}
	// One batch is one flush window: the runner commits it only after ThreatQ acknowledged it.
	rcfg.MaxBatch = cfg.FlushMax()
	rcfg.BatchWait = cfg.FlushInterval()
	rcfg.WaitFromRecordTime = true // verdicts that waited in Kafka (a backlog) are flushed at once
	r, err := stream.NewRunner(rcfg, h, deps.Serde, log)
	if err != nil {
		return err
	}
	topics := []string{cfg.InTopic, cfg.FeedbackTopic, cfg.Common.Kafka.DLQTopic}
	if err := stream.EnsureTopics(ctx, r.Client(), cfg.Common.Kafka.Partitions, cfg.Common.Kafka.ReplicationFactor, topics...); err != nil {
		_ = r.Close(ctx)
		return err
	}
	log.Info("sink starting", "in", cfg.InTopic, "feedback", cfg.FeedbackTopic, "flush_max", cfg.FlushMax(),
		"flush_interval", cfg.FlushInterval().String(), "redis", rdb != nil, "kafka", cfg.Common.Kafka.LogValue())

	checks := []telemetry.Check{
		{Name: "threatq", Fn: tq.Ping}, // reachable and our token is accepted
		service.RedisCheck(rdb),
	}
	extra := map[string]http.Handler{"/debug/sink": h.DebugHandler()}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return deps.Ops(gctx, r.Ready, checks, extra) })
	if cfg.FeedbackInterval > 0 {
		fcfg := feedback.Config{SourceName: cfg.Writer.SourceName, Settle: cfg.FeedbackSettle, RemovalCheck: cfg.FeedbackRemovalCheck}
		if fcfg.RemovalCheck == 0 {
			fcfg.RemovalCheck = -1 // the poller's "off"
		}
		if rdb != nil {
			// one replica polls at a time; the lease outlives a few missed polls
			if fcfg.Leader, err = feedback.NewRedisLeader(rdb, "", 3*cfg.FeedbackInterval); err != nil {
				return err
			}
		}
		poller, err := feedback.New(fcfg, tq, store, cursor, log.With("component", "feedback"))
		if err != nil {
			return err
		}
		publish := stage.FeedbackPublisher(r.Client(), cfg.FeedbackTopic, deps.Serde, metrics)
		g.Go(func() error { return poller.Run(gctx, cfg.FeedbackInterval, publish) })
	}
	err = g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Common.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, r.Close(sctx), deps.Shutdown(sctx))
}

// resolve loads ThreatQ's type and status ids, waiting (with backoff) while ThreatQ is
// unavailable: the sink must not write before it knows them. Refused credentials end the start.
func resolve(ctx context.Context, tq *threatq.Client, log *slog.Logger) error {
	wait := time.Second
	for {
		err := tq.Resolve(ctx)
		if err == nil {
			return nil
		}
		if !threatq.Retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("resolve threatq ids: %w", err)
		}
		log.WarnContext(ctx, "threatq not reachable yet; retrying", "err", err, "in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("resolve threatq ids: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// checkStatuses fails the start when a configured status name is unknown to the instance (every
// verdict mapped to it would otherwise be dead-lettered).
func checkStatuses(tq *threatq.Client, wc writer.Config) error {
	var errs []error
	names := []string{wc.DefaultStatus}
	for _, s := range wc.Statuses {
		names = append(names, s)
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if _, err := tq.StatusID(n); err != nil {
			errs = append(errs, fmt.Errorf("status %q (VIGIL_SINK_STATUS_MAP / VIGIL_SINK_DEFAULT_STATUS): %w", n, err))
		}
	}
	return errors.Join(errs...)
}
