// Command ingest reads raw firewall, IDS and EDR records from Kafka and emits canonical
// indicator Observations. `ingest parse FILE…` runs the same parsers offline.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/vigilsec/vigil/pkg/allowlist"
	"github.com/vigilsec/vigil/pkg/envconf"
	"github.com/vigilsec/vigil/pkg/service"
	"github.com/vigilsec/vigil/pkg/stream"
	"github.com/vigilsec/vigil/pkg/telemetry"
	"github.com/vigilsec/vigil/services/ingest/internal/config"
	"github.com/vigilsec/vigil/services/ingest/internal/extract"
	"github.com/vigilsec/vigil/services/ingest/internal/pipeline"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "parse" {
		err = runParse(os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = run()
	}
	if err != nil {
		slog.Error("ingest exited", "err", err)
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
	// parsing the warninglists allocates several times what the compiled lists keep: keep that
	// transient heap from setting the process's peak RSS
	lists, err := service.LoadCompact(func() (*allowlist.Set, error) {
		return allowlist.Load(allowlist.Config{Warninglists: cfg.Warninglists, LocalFiles: cfg.AllowFiles})
	})
	if err != nil {
		return fmt.Errorf("load allow-lists: %w", err)
	}
	reg, err := pipeline.DefaultRegistry()
	if err != nil {
		return err
	}
	ext := extract.New(extract.Config{Internal: cfg.InternalNets, InternalSuffixes: cfg.InternalSuffixes, Allow: allowlist.NewHolder(lists)})
	acct, err := pipeline.NewMetricAccounting(deps.Tel.Meter("vigil/ingest"))
	if err != nil {
		return err
	}
	h := pipeline.New(pipeline.Config{OutTopic: cfg.OutTopic, Formats: cfg.Formats, DefaultFormat: cfg.DefaultFormat,
		MaxRecordBytes: cfg.MaxRecordBytes, Collapse: cfg.Collapse}, reg, ext, deps.Serde, acct, log)

	rcfg, err := deps.RunnerConfig("ingest", cfg.Topics)
	if err != nil {
		return err
	}
	rcfg.TopicRegex = cfg.TopicRegex
	rcfg.BatchWait = cfg.CollapseWindow // a port scan inside the window becomes one observation with a count
	r, err := stream.NewRunner(rcfg, h, deps.Serde, log)
	if err != nil {
		return err
	}
	topics := []string{cfg.OutTopic, cfg.Common.Kafka.DLQTopic}
	if !cfg.TopicRegex {
		topics = append(topics, cfg.Topics...)
	}
	if err := stream.EnsureTopics(ctx, r.Client(), cfg.Common.Kafka.Partitions, cfg.Common.Kafka.ReplicationFactor, topics...); err != nil {
		_ = r.Close(ctx)
		return err
	}
	log.Info("ingest starting", "topics", cfg.Topics, "out", cfg.OutTopic, "kafka", cfg.Common.Kafka.LogValue())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return deps.Ops(gctx, r.Ready, nil, nil) })
	err = g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Common.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, r.Close(sctx), deps.Shutdown(sctx))
}
