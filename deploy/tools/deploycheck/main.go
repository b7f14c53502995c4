// Command deploycheck validates Vigil's deployment artefacts offline: the Compose file (with the
// official compose-go loader), Kubernetes kustomizations (rendered with the kustomize API, decoded
// strictly into the Kubernetes API types, then checked against Vigil's operating rules), the
// Prometheus rule file (Prometheus' own rule parser) and the Grafana dashboard (every query parsed
// as PromQL and checked against the metrics Vigil exports).
//
//	deploycheck compose [-env-file F] [-profile P]... docker-compose.yml
//	deploycheck k8s [-o rendered.yaml] DIR...
//	deploycheck rules deploy/prometheus/alerts.yml
//	deploycheck dashboard deploy/grafana/vigil-dashboard.json
//
// It exits 1 and lists every problem when a check fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		os.Exit(1)
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: deploycheck compose|k8s|rules|dashboard ...")
	}
	fs := flag.NewFlagSet("deploycheck "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "compose":
		var envFiles, profiles stringList
		fs.Var(&envFiles, "env-file", "env file for interpolation (repeatable)")
		fs.Var(&profiles, "profile", "profile to enable (repeatable; default: COMPOSE_PROFILES from the env files)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("compose: one compose file expected")
		}
		return checkCompose(ctx, fs.Arg(0), envFiles, profiles, out)
	case "k8s":
		rendered := fs.String("o", "", "also write the rendered manifests (multi-document YAML) to this file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("k8s: at least one kustomization directory expected")
		}
		return checkKustomizations(fs.Args(), *rendered, out)
	case "rules":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("rules: one rule file expected")
		}
		return checkRules(fs.Arg(0), out)
	case "dashboard":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("dashboard: one dashboard file expected")
		}
		return checkDashboard(fs.Arg(0), out)
	}
	return fmt.Errorf("unknown check %q (want compose, k8s, rules or dashboard)", args[0])
}

// problems collects findings so one run reports all of them.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err(what string) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d problem(s):\n  - %s", what, len(p), strings.Join(p, "\n  - "))
}
