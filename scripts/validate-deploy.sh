#!/usr/bin/env bash
# Validate Vigil's deployment artefacts offline: Dockerfiles, docker-compose.yml, the Kubernetes
# kustomizations, the Prometheus rules/config and the Grafana dashboard.
#
# Every check that can run here runs and FAILS the script on an error; a check whose tool is
# missing (or needs the internet) is reported as SKIP with the reason. The core checks need only
# Go: deploy/tools/deploycheck (its own module, outside go.work) loads the Compose file with
# compose-go, renders kustomizations with the kustomize API and decodes every object strictly into
# the Kubernetes API types, and parses rules and dashboard queries with Prometheus' PromQL parser.
#
#   bash scripts/validate-deploy.sh          # from anywhere; < 60 s on a warm Go cache
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache/deploy
mkdir -p "$CACHE"

failed=0 passed=0 skipped=0
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
skip() { skipped=$((skipped + 1)); printf 'SKIP  %s\n' "$1"; }
# check NAME CMD...: run CMD, show its output only on failure.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    pass "$name"
    [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out" | sed 's/^/      /'
  else
    fail "$name"
    printf '%s\n' "$out" | sed 's/^/      /'
  fi
  return 0
}

# --- (a) every YAML and JSON file parses ------------------------------------------------------
mapfile -t yamls < <(find deploy -name '*.yml' -o -name '*.yaml' | sort; echo docker-compose.yml)
if python3 -c 'import yaml' 2>/dev/null; then
  check "yaml: ${#yamls[@]} files parse (python3 yaml.safe_load_all)" python3 - "${yamls[@]}" <<'EOF'
import sys, yaml
bad = 0
for p in sys.argv[1:]:
    try:
        with open(p) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            raise ValueError("empty document")
    except Exception as e:
        print(f"{p}: {e}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
else
  skip "yaml: python3 with PyYAML not available (deploycheck still parses the files it validates)"
fi
mapfile -t jsons < <(find deploy -name '*.json' | sort)
if command -v python3 >/dev/null; then
  check "json: ${#jsons[@]} files parse" python3 -c 'import json,sys; [json.load(open(p)) for p in sys.argv[1:]]' "${jsons[@]}"
else
  skip "json: python3 not available (deploycheck parses the dashboard)"
fi

# --- Dockerfiles: multi-stage static build on distroless nonroot ------------------------------
dockerfile_rules() {
  local f bad=0
  for f in services/*/Dockerfile deploy/docker/emulators.Dockerfile; do
    grep -q '^FROM golang:' "$f" || { echo "$f: no golang builder stage"; bad=1; }
    grep -q 'CGO_ENABLED=0' "$f" || { echo "$f: CGO_ENABLED=0 missing"; bad=1; }
    grep -q -- '-trimpath' "$f" || { echo "$f: -trimpath missing"; bad=1; }
    grep -q '^FROM gcr.io/distroless/static-debian12:nonroot' "$f" || { echo "$f: final stage must be distroless static nonroot"; bad=1; }
    grep -q '^USER 65532' "$f" || { echo "$f: USER 65532 missing"; bad=1; }
    grep -q '^EXPOSE ' "$f" || { echo "$f: EXPOSE missing"; bad=1; }
  done
  for s in ingest enrich correlate sink; do
    [ -f "services/$s/Dockerfile" ] || { echo "services/$s/Dockerfile missing"; bad=1; }
    grep -q "./services/$s/cmd/$s" "services/$s/Dockerfile" 2>/dev/null || { echo "services/$s/Dockerfile does not build ./services/$s/cmd/$s"; bad=1; }
  done
  grep -qx '.env' .dockerignore || { echo ".dockerignore must exclude .env"; bad=1; }
  return $bad
}
check "dockerfiles: 5 files are multi-stage CGO-free -trimpath builds on distroless nonroot" dockerfile_rules
if command -v hadolint >/dev/null; then
  check "dockerfiles: hadolint" hadolint --ignore DL3007 services/*/Dockerfile deploy/docker/emulators.Dockerfile
else
  skip "dockerfiles: hadolint not installed; docker build needs an engine (none here)"
fi

# --- build the offline checker -----------------------------------------------------------------
DC=$CACHE/deploycheck
if ! (cd deploy/tools && GOWORK=off go build -o "$DC" ./deploycheck) >"$CACHE/build.log" 2>&1; then
  fail "deploycheck: build (deploy/tools)"
  sed 's/^/      /' "$CACHE/build.log"
  echo "validate-deploy: $passed passed, $((failed)) failed, $skipped skipped"
  exit 1
fi
check "deploycheck: unit tests (its checks reject broken artefacts)" \
  bash -c 'cd deploy/tools && GOWORK=off go test -count=1 ./...'

# --- (d) Compose ---------------------------------------------------------------------------------
check "compose: default project (compose-go loader + wiring rules)" "$DC" compose docker-compose.yml
check "compose: emulators + monitoring profiles via deploy/compose/emulators.env" \
  "$DC" compose -env-file deploy/compose/emulators.env -profile emulators -profile monitoring docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  check "compose: docker compose config -q" docker compose -f docker-compose.yml config -q
  check "compose: docker compose config -q (emulators, monitoring)" \
    docker compose -f docker-compose.yml --env-file deploy/compose/emulators.env --profile emulators --profile monitoring config -q
else
  skip "compose: 'docker compose' plugin not installed (compose-go, the library it is built on, validated above)"
fi

# --- (b) Kubernetes --------------------------------------------------------------------------------
KDIRS=(deploy/kubernetes/base deploy/kubernetes/overlays/dev)
check "kubernetes: kustomize API render + strict k8s.io/api decoding + probes/resources/securityContext/PDB/Service/KEDA/secret rules" \
  "$DC" k8s -o "$CACHE/rendered.yaml" "${KDIRS[@]}"
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  for d in "${KDIRS[@]}"; do
    check "kubernetes: kubectl kustomize $d" kubectl kustomize "$d" -o "$CACHE/kubectl-$(basename "$d").yaml"
  done
else
  skip "kubernetes: kubectl not installed (rendered with the kustomize API above)"
fi
if command -v kubeconform >/dev/null && [ -n "${KUBECONFORM_SCHEMA_LOCATION:-}" ]; then
  check "kubernetes: kubeconform (schemas from \$KUBECONFORM_SCHEMA_LOCATION)" \
    kubeconform -strict -summary -schema-location "$KUBECONFORM_SCHEMA_LOCATION" "$CACHE/rendered.yaml"
else
  skip "kubernetes: kubeconform needs JSON schemas downloaded from the internet (unreachable here; set KUBECONFORM_SCHEMA_LOCATION to a local copy); strict decoding into k8s.io/api types above covers the built-in kinds"
fi

# --- (c) Prometheus ---------------------------------------------------------------------------------
check "prometheus: alerts.yml (Prometheus rulefmt + PromQL parser, severity/for/summary, known metrics)" \
  "$DC" rules deploy/prometheus/alerts.yml
PROMTOOL=$(command -v promtool || true)
[ -z "$PROMTOOL" ] && [ -x "$(go env GOPATH)/bin/promtool" ] && PROMTOOL=$(go env GOPATH)/bin/promtool
if [ -n "$PROMTOOL" ]; then
  check "prometheus: promtool check rules" "$PROMTOOL" check rules deploy/prometheus/alerts.yml
  # prometheus.yml names the rule file by its in-container path; check a copy pointing here.
  sed "s#/etc/prometheus/alerts.yml#$ROOT/deploy/prometheus/alerts.yml#" deploy/prometheus/prometheus.yml >"$CACHE/prometheus.yml"
  check "prometheus: promtool check config" "$PROMTOOL" check config "$CACHE/prometheus.yml"
else
  skip "prometheus: promtool not installed (go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0 takes ~8 min cold); rules were parsed with Prometheus' own rulefmt above"
fi

# --- (e) Grafana ---------------------------------------------------------------------------------------
check "grafana: dashboard JSON, every query parses as PromQL and uses a known vigil_ metric" \
  "$DC" dashboard deploy/grafana/vigil-dashboard.json

echo "validate-deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
