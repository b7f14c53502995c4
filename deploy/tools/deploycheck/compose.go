package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// vigilServices are the four pipeline services every Compose project must run.
var vigilServices = []string{"ingest", "enrich", "correlate", "sink"}

// profileServices are the services each optional profile must add.
var profileServices = map[string][]string{
	"emulators":  {"provider-emulator", "threatq-emulator"},
	"monitoring": {"prometheus", "grafana"},
}

// checkCompose loads the file like `docker compose config` does (schema validation,
// interpolation, consistency), without the OS environment so results do not depend on the shell.
func checkCompose(ctx context.Context, file string, envFiles, profiles []string, out io.Writer) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("compose path: %w", err)
	}
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithName("vigil")}
	if len(envFiles) > 0 {
		opts = append(opts, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	opts = append(opts, cli.WithDefaultProfiles(profiles...))
	po, err := cli.NewProjectOptions([]string{abs}, opts...)
	if err != nil {
		return fmt.Errorf("compose options: %w", err)
	}
	proj, err := po.LoadProject(ctx)
	if err != nil {
		return fmt.Errorf("compose %s: %w", file, err)
	}
	var probs problems
	validateProject(proj, &probs)
	if err := probs.err("compose " + file); err != nil {
		return err
	}
	fmt.Fprintf(out, "compose %s (env files %v, profiles %v): valid, services %s\n", file, envFiles, proj.Profiles,
		strings.Join(proj.ServiceNames(), " "))
	return nil
}

// validateProject checks Vigil's wiring on a loaded project.
func validateProject(proj *types.Project, probs *problems) {
	names := proj.ServiceNames()
	want := append([]string{"kafka", "redis"}, vigilServices...)
	for _, prof := range proj.Profiles {
		want = append(want, profileServices[prof]...)
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			probs.addf("service %s missing", w)
		}
	}
	for _, name := range vigilServices {
		svc, ok := proj.Services[name]
		if !ok {
			continue
		}
		env := func(k string) string {
			if v := svc.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if env("VIGIL_KAFKA_BROKERS") != "kafka:9092" {
			probs.addf("%s: VIGIL_KAFKA_BROKERS = %q, want kafka:9092", name, env("VIGIL_KAFKA_BROKERS"))
		}
		if env("VIGIL_REDIS_ADDR") != "redis:6379" {
			probs.addf("%s: VIGIL_REDIS_ADDR = %q, want redis:6379", name, env("VIGIL_REDIS_ADDR"))
		}
		if ops := env("VIGIL_OPS_ADDR"); !strings.HasPrefix(ops, "0.0.0.0:") {
			probs.addf("%s: VIGIL_OPS_ADDR = %q must listen on 0.0.0.0 inside the container", name, ops)
		}
		for _, dep := range []string{"kafka", "redis"} {
			if d, ok := svc.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				probs.addf("%s: must depend on %s with condition service_healthy", name, dep)
			}
		}
		if !svc.ReadOnly {
			probs.addf("%s: read_only root filesystem expected", name)
		}
	}
	for _, dep := range []string{"kafka", "redis"} {
		if s, ok := proj.Services[dep]; ok && s.HealthCheck == nil {
			probs.addf("%s: a healthcheck is needed for the depends_on conditions", dep)
		}
	}
	if slices.Contains(proj.Profiles, "emulators") {
		sink := proj.Services["sink"]
		if u := sink.Environment["VIGIL_THREATQ_URL"]; u == nil || !strings.Contains(*u, "threatq-emulator") {
			probs.addf("sink: with the emulators profile VIGIL_THREATQ_URL must point at threatq-emulator")
		}
		enrich := proj.Services["enrich"]
		if u := enrich.Environment["VIGIL_ENRICH_CRIMINALIP_BASE_URL"]; u == nil || *u != "http://127.0.0.1:8089" {
			probs.addf("enrich: with the emulators profile the provider URLs must point at 127.0.0.1:8089")
		}
	}
	// Bind mounts (Prometheus/Grafana configuration) must exist in the repository.
	for _, name := range names {
		for _, v := range proj.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				probs.addf("%s: bind mount source %s: %v", name, v.Source, err)
			}
		}
	}
}
