// Command enrich reads indicator Observations, enriches them with exposure data from the configured
// providers (Criminal IP, Shodan InternetDB, AbuseIPDB, GreyNoise, offline ASN/country) through a
// Redis-backed cache and shared rate/quota budgets, and writes Enrichments keyed by the same indicator.
// Configuration is environment only (see internal/config); /debug/enrich on the ops address shows breaker
// states, quota left and the cache hit ratio.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/enrich/internal/config"
)

func main() {
	if err := run(); err != nil {
		slog.Error("enrich exited", "err", err)
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
		return errors.Join(err, deps.Shutdown(context.Background()))
	}
	closeRedis := func() error {
		if rdb == nil {
			return nil
		}
		return rdb.Close()
	}
	a, err := build(cfg, rdb, deps.Serde, deps.Tel.Meter("vigil/enrich"), log)
	if err != nil {
		return errors.Join(err, closeRedis(), deps.Shutdown(context.Background()))
	}

	rcfg, err := deps.RunnerConfig("enrich", []string{cfg.InTopic})
	if err != nil {
		return errors.Join(err, a.close(), closeRedis(), deps.Shutdown(context.Background()))
	}
	r, err := stream.NewRunner(rcfg, a.handler, deps.Serde, log)
	if err != nil {
		return errors.Join(err, a.close(), closeRedis(), deps.Shutdown(context.Background()))
	}
	if err := stream.EnsureTopics(ctx, r.Client(), cfg.Common.Kafka.Partitions, cfg.Common.Kafka.ReplicationFactor,
		cfg.InTopic, cfg.OutTopic, cfg.Common.Kafka.DLQTopic); err != nil {
		return errors.Join(err, r.Close(ctx), a.close(), closeRedis(), deps.Shutdown(context.Background()))
	}
	log.Info("enrich starting", "config", cfg, "providers", a.enr.Providers())

	checks := []telemetry.Check{service.RedisCheck(rdb)}
	extra := map[string]http.Handler{"/debug/enrich": debugHandler(a.enr, a.lim, a.metrics, a.store.Shared())}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return deps.Ops(gctx, r.Ready, checks, extra) })
	err = g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Common.ShutdownTimeout)
	defer cancel()
	// Stop consuming and commit first, then release what the handler used.
	return errors.Join(err, r.Close(sctx), a.close(), closeRedis(), deps.Shutdown(sctx))
}
