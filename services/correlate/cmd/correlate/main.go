// Command correlate joins enrichments with internal sightings, the asset inventory, allow-lists
// and the governance policy into verdicts (indicators.enriched + indicators.feedback →
// indicators.verdicts). SIGHUP reloads the policy file, the allow-lists and the asset inventory.
//
// `correlate policy-test --policy A.yaml [--against B.yaml] [--only-changed] [--json] FILE.jsonl`
// replays enrichments through two policies offline and prints where their verdicts differ.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/correlate/internal/assets"
	"github.com/vigilsec/vigil/services/correlate/internal/config"
	"github.com/vigilsec/vigil/services/correlate/internal/correlator"
	"github.com/vigilsec/vigil/services/correlate/internal/policy"
	"github.com/vigilsec/vigil/services/correlate/internal/stage"
	"github.com/vigilsec/vigil/services/correlate/internal/state"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "policy-test" {
		err = runPolicyTest(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
	} else {
		err = run()
	}
	if err != nil {
		slog.Error("correlate exited", "err", err)
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
	// Redis is optional: without an address the state lives in this process only.
	rdb, err := service.NewRedis(ctx, cfg.Common.Redis)
	if err == nil {
		err = serve(ctx, cfg, deps, rdb)
		if rdb != nil {
			err = errors.Join(err, rdb.Close())
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Common.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, deps.Shutdown(sctx))
}

// serve builds the correlator and the stage and runs them until ctx ends.
func serve(ctx context.Context, cfg config.Config, deps *service.Deps, rdb redis.UniversalClient) error {
	log := deps.Log
	pol, err := loadPolicy(cfg.PolicyFile)
	if err != nil {
		return err
	}
	// the warninglists' parse garbage would otherwise set the heap's high-water mark
	set, err := service.LoadCompact(func() (*allowlist.Set, error) { return allowlist.Load(cfg.ListConfig()) })
	if err != nil {
		return fmt.Errorf("load allow-lists: %w", err)
	}
	lists := allowlist.NewHolder(set)
	var inv *assets.Inventory
	if cfg.AssetsFile != "" {
		if inv, err = assets.Load(cfg.AssetsFile); err != nil {
			return fmt.Errorf("load assets: %w", err)
		}
	}
	invHolder := assets.NewHolder(inv)
	var store correlator.Store
	if rdb == nil {
		store, err = state.NewMemory(cfg.State)
	} else {
		store, err = state.NewRedis(ctx, rdb, cfg.State)
	}
	if err != nil {
		return fmt.Errorf("correlation state: %w", err)
	}
	corr, err := correlator.New(correlator.NewPolicyHolder(pol), lists, invHolder, store, nil, log)
	if err != nil {
		return err
	}
	metrics, err := stage.NewMetrics(deps.Tel.Meter("vigil/correlate"), corr)
	if err != nil {
		return err
	}
	defer func() { _ = metrics.Close() }()
	// With the decay sweeper on, verdicts are acked with their enrichment, which schedules their re-scoring.
	st, err := stage.New(stage.Config{EnrichedTopic: cfg.InTopic, FeedbackTopic: cfg.FeedbackTopic, VerdictTopic: cfg.OutTopic,
		Rescore: cfg.DecaySweepInterval > 0, Shards: cfg.Shards}, corr, deps.Serde, metrics, log)
	if err != nil {
		return err
	}

	rcfg, err := deps.RunnerConfig("correlate", []string{cfg.InTopic, cfg.FeedbackTopic})
	if err != nil {
		return err
	}
	// The stage watches produce acknowledgements to ack published verdicts (see package stage).
	rcfg.ExtraOpts = append(rcfg.ExtraOpts, kgo.WithHooks(st))
	// The decay sweeper sweeps the input partitions this replica owns (from the group's callbacks).
	owned := stage.NewPartitions(cfg.InTopic)
	owned.Watch(&rcfg)
	if rs, ok := store.(*state.Redis); ok {
		// The owner-side state cache is valid only while this replica owns the partitions.
		prev := rcfg.OnRevoke
		rcfg.OnRevoke = func(ctx context.Context, revoked map[string][]int32) {
			rs.Forget()
			if prev != nil {
				prev(ctx, revoked)
			}
		}
	}
	r, err := stream.NewRunner(rcfg, st, deps.Serde, log)
	if err != nil {
		return err
	}
	topics := []string{cfg.InTopic, cfg.FeedbackTopic, cfg.OutTopic, cfg.Common.Kafka.DLQTopic}
	if err := stream.EnsureTopics(ctx, r.Client(), cfg.Common.Kafka.Partitions, cfg.Common.Kafka.ReplicationFactor, topics...); err != nil {
		return errors.Join(err, r.Close(ctx))
	}

	// A sweep in progress at shutdown finishes its claimed batch: bound its produce well within the drain.
	sweeper, err := stage.NewSweeper(stage.SweepConfig{VerdictTopic: cfg.OutTopic, Interval: cfg.DecaySweepInterval, Batch: cfg.DecaySweepBatch,
		ProduceTimeout: cfg.Common.ShutdownTimeout / 2}, st, corr, r.Client(), deps.Serde, owned, metrics, log)
	if err != nil {
		return errors.Join(err, r.Close(ctx))
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloader := &stage.Reloader{PolicyFile: cfg.PolicyFile, Policy: corr, Lists: lists, ListConfig: cfg.ListConfig(),
		AssetsFile: cfg.AssetsFile, Assets: invHolder, Metrics: metrics, Log: log}

	log.Info("correlate starting", "in", []string{cfg.InTopic, cfg.FeedbackTopic}, "out", cfg.OutTopic,
		"policy", policySource(cfg.PolicyFile), "policy_version", pol.Version, "lists", len(set.Lists()),
		"assets", cfg.AssetsFile, "redis", rdb != nil, "decay_sweep_interval", cfg.DecaySweepInterval.String(), "kafka", cfg.Common.Kafka.LogValue())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return deps.Ops(gctx, r.Ready, []telemetry.Check{service.RedisCheck(rdb)}, nil) })
	g.Go(func() error { return reloader.Run(gctx, hup) })
	g.Go(func() error { return sweeper.Run(gctx) }) // returns at once when disabled; stops before the client closes
	err = g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Common.ShutdownTimeout)
	defer cancel()
	cerr := r.Close(sctx)  // flushes the producer: the last produce acknowledgements arrive
	ferr := st.Flush(sctx) // ack the verdicts confirmed after the last batch
	return errors.Join(err, cerr, ferr)
}

// loadPolicy reads the policy file, or the embedded default when path is empty.
func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return policy.Default()
	}
	p, err := policy.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return p, nil
}

func policySource(path string) string {
	if path == "" {
		return "(embedded default)"
	}
	return path
}
