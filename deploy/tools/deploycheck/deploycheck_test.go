package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo is the repository root relative to this package.
const repo = "../../.."

func TestRepositoryArtefactsPass(t *testing.T) {
	ctx := t.Context()
	cases := []struct {
		name string
		args []string
	}{
		{"compose default", []string{"compose", repo + "/docker-compose.yml"}},
		{"compose emulators+monitoring", []string{"compose", "-env-file", repo + "/deploy/compose/emulators.env", "-profile", "emulators", "-profile", "monitoring", repo + "/docker-compose.yml"}},
		{"rules", []string{"rules", repo + "/deploy/prometheus/alerts.yml"}},
		{"dashboard", []string{"dashboard", repo + "/deploy/grafana/vigil-dashboard.json"}},
		{"kubernetes", []string{"k8s", repo + "/deploy/kubernetes/base", repo + "/deploy/kubernetes/overlays/dev"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := run(ctx, c.args, io.Discard); err != nil {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestDashboardRejects(t *testing.T) {
	cases := []struct {
		name, expr, want string
	}{
		{"unknown metric", `rate(vigil_records_eaten_total[5m])`, "unknown metric vigil_records_eaten_total"},
		{"not PromQL", `sum(rate(vigil_records_in_total[5m])`, "parse"},
		{"no vigil metric", `up`, "uses no vigil_ metric"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := `{"title":"t","uid":"u","panels":[{"id":1,"type":"timeseries","title":"p","targets":[{"refId":"A","expr":` +
				quote(c.expr) + `}]}]}`
			_, err := validateDashboard([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestDashboardAcceptsGrafanaVariables(t *testing.T) {
	doc := `{"title":"t","uid":"u","panels":[{"id":1,"type":"timeseries","title":"p","targets":[{"refId":"A",
		"expr":"sum by (stage) (rate(vigil_records_in_total{stage=~\"$stage\"}[$__rate_interval]))"}]}]}`
	if n, err := validateDashboard([]byte(doc)); err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestRulesReject(t *testing.T) {
	cases := []struct {
		name, rule, want string
	}{
		{"no for", "      - alert: A\n        expr: vigil_consumer_lag > 1\n        labels: {severity: warning}\n        annotations: {summary: s}\n", "without a for"},
		{"bad severity", "      - alert: A\n        expr: vigil_consumer_lag > 1\n        for: 1m\n        labels: {severity: page}\n        annotations: {summary: s}\n", "severity"},
		{"bad promql", "      - alert: A\n        expr: sum(vigil_consumer_lag > 1\n        for: 1m\n        labels: {severity: warning}\n        annotations: {summary: s}\n", "unclosed"},
		{"unknown metric", "      - alert: A\n        expr: vigil_nope > 1\n        for: 1m\n        labels: {severity: warning}\n        annotations: {summary: s}\n", "unknown metric vigil_nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.yml")
			if err := os.WriteFile(p, []byte("groups:\n  - name: g\n    rules:\n"+c.rule), 0o600); err != nil {
				t.Fatal(err)
			}
			err := checkRules(p, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// mutateBase copies the Kubernetes base to a temp dir, applies a string replacement to one
// file and returns the directory.
func mutateBase(t *testing.T, file, old, repl string) string {
	t.Helper()
	src := repo + "/deploy/kubernetes/base"
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == file {
			if !strings.Contains(string(b), old) {
				t.Fatalf("%s does not contain %q", file, old)
			}
			b = []byte(strings.Replace(string(b), old, repl, 1))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestKubernetesRejects(t *testing.T) {
	cases := []struct {
		name, file, old, repl, want string
	}{
		{"misspelt field", "sink.yaml", "readinessProbe:", "readynessProbe:", "unknown field"},
		{"inline credential", "sink.yaml", "- name: VIGIL_GROUP\n", "- name: VIGIL_THREATQ_PASSWORD\n              value: hunter2\n            - name: VIGIL_GROUP\n", "inline value"},
		{"wrong consumer group", "enrich.yaml", "consumerGroup: vigil-enrich", "consumerGroup: enrich", "consumerGroup"},
		{"more replicas than partitions", "correlate.yaml", "maxReplicaCount: 12", "maxReplicaCount: 24", "maxReplicaCount"},
		{"wrong readiness path", "ingest.yaml", "path: /readyz", "path: /healthz", "readiness probe"},
		{"writable root", "ingest.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"no PDB", "sink.yaml", "kind: PodDisruptionBudget\nmetadata:\n  name: vigil-sink", "kind: PodDisruptionBudget\nmetadata:\n  name: vigil-sink-x", ""},
		{"unknown topic", "sink.yaml", "topic: indicators.verdicts", "topic: indicators.verdict", "none of the configured"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := mutateBase(t, c.file, c.old, c.repl)
			err := checkKustomizations([]string{dir}, "", io.Discard)
			if c.want == "" {
				if err != nil {
					t.Fatalf("renaming the PDB alone must pass: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestKubernetesRejectsMissingPDBSelector(t *testing.T) {
	dir := mutateBase(t, "sink.yaml", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: vigil-sink",
		"  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: nothing")
	err := checkKustomizations([]string{dir}, "", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no PodDisruptionBudget") {
		t.Fatalf("err = %v", err)
	}
}

func TestComposeRejects(t *testing.T) {
	b, err := os.ReadFile(repo + "/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, repl, want string
	}{
		{"wrong broker", "VIGIL_KAFKA_BROKERS: kafka:9092", "VIGIL_KAFKA_BROKERS: localhost:9092", "VIGIL_KAFKA_BROKERS"},
		{"schema error", "restart: unless-stopped\n    read_only: true", "restart: unless-stopped\n    read_only: sometimes", "read_only"},
		{"loopback ops", "VIGIL_OPS_ADDR: 0.0.0.0:9403", "VIGIL_OPS_ADDR: 127.0.0.1:9403", "0.0.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := string(b)
			if !strings.Contains(s, c.old) {
				t.Fatalf("compose file lacks %q", c.old)
			}
			dir := t.TempDir()
			// Bind mounts are relative to the compose file: keep the file's directory layout.
			p := filepath.Join(dir, "docker-compose.yml")
			if err := os.WriteFile(p, []byte(strings.Replace(s, c.old, c.repl, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			err := checkCompose(t.Context(), p, nil, nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
