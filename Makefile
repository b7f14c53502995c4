# Vigil — build, test and run the whole workspace.
# The two commands a new user needs: `make run` (end to end on embedded defaults) and `make test`.

SHELL := /bin/bash
GO ?= go
BIN := bin
SERVICES := ingest enrich correlate sink
export VIGIL_TEST_KAFKA_BROKERS ?= 127.0.0.1:39092
export VIGIL_TEST_REDIS_ADDR ?= 127.0.0.1:36379
FUZZTIME ?= 5s
GEO_DIR ?= $(HOME)/.cache/vigil/geo
export VIGIL_TEST_OFFLINE_DIR ?= $(GEO_DIR)
export VIGIL_TEST_SECURE_ENV ?= $(or $(VIGIL_CACHE),$(HOME)/.cache/vigil)/kafka-secure/secure.env

.PHONY: chaos scaleout up-secure down-secure all build generate check-generated validate-deploy vet test test-unit test-integration test-race fuzz up down \
	run bench fetch-geo lint clean

all: build

## build: every binary into bin/ (services, emulators, tools)
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./services/ingest/cmd/ingest ./services/enrich/cmd/enrich ./services/correlate/cmd/correlate \
		./services/sink/cmd/sink ./services/enrich/cmd/provider-emulator ./services/sink/cmd/threatq-emulator \
		./pkg/cmd/devkafka ./pkg/cmd/kready ./cmd/vigilctl ./cmd/vigil-run

## generate: copy schemas/ into the codec package (go:embed cannot reach outside a module)
generate:
	@mkdir -p pkg/events/schemas/history
	cp schemas/*.avsc pkg/events/schemas/
	cp schemas/history/* pkg/events/schemas/history/

## check-generated: fail when pkg/events/schemas differs from schemas/
check-generated:
	@diff -r -q schemas pkg/events/schemas >/dev/null || { echo "pkg/events/schemas is stale: run make generate"; diff -r schemas pkg/events/schemas; exit 1; }

## validate-deploy: offline checks of Dockerfiles, compose, kustomize/KEDA, Prometheus rules, Grafana dashboard
validate-deploy:
	bash scripts/validate-deploy.sh

vet:
	$(GO) vet work
	$(GO) vet -tags integration work

test-unit:
	$(GO) test -count=1 work

## fuzz: a short run of every parser's fuzz target (scripts/fuzz.sh tells real crashers from engine artefacts)
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

## up / down: the real Apache Kafka broker (KRaft) and Redis used by the integration tests
up:
	bash scripts/kafka/kafka.sh start
	bash scripts/redis.sh start

down:
	-bash scripts/kafka/kafka.sh stop
	-bash scripts/redis.sh stop

## up-secure / down-secure: a second broker, SASL_SSL only (SCRAM-SHA-512, throwaway CA), for pkg/securetest
up-secure:
	bash scripts/kafka/kafka-secure.sh start

down-secure:
	-bash scripts/kafka/kafka-secure.sh stop

test-integration:
	$(GO) test -count=1 -tags integration -timeout 15m work

## test: generated-code check, vet, unit tests, short fuzzing, then the real broker + Redis, the
## integration tests and the quick chaos test (~2.5 min; its JSON result goes to a temporary
## directory); the services are stopped again whatever happens.
test: check-generated validate-deploy vet test-unit fuzz fetch-geo build
	@set -e; trap '$(MAKE) --no-print-directory down down-secure' EXIT; $(MAKE) --no-print-directory up up-secure; \
	$(MAKE) --no-print-directory test-integration; $(MAKE) --no-print-directory down-secure; \
	results=$$(mktemp -d); $(GO) run ./cmd/vigil-chaos chaos -bin $(BIN) --quick -results "$$results"

test-race:
	$(GO) test -race -count=1 work

## run: the whole pipeline end to end on embedded defaults (kfake broker, in-process cache, emulators)
run: build
	@$(MAKE) --no-print-directory fetch-geo || echo "offline ASN/country data not fetched: that provider will report skipped"
	$(BIN)/vigil-run -geo-dir "$(GEO_DIR)" $(RUN_ARGS)

## bench: the benchmark suite on the real broker and Redis; table on stdout, JSON in bench/results/
bench: build
	@set -e; trap '$(MAKE) --no-print-directory down' EXIT; $(MAKE) --no-print-directory up; $(GO) run ./cmd/vigil-bench $(BENCH_ARGS)

## chaos: kill -9 every service, ThreatQ outage, Redis + broker restart; bench/results/chaos-<date>.json (~9 min,
## nightly-style; CHAOS_ARGS=--quick for ~2.5 min, which `make test` runs too). Leaves the broker and Redis running.
chaos: build
	$(MAKE) --no-print-directory up
	$(GO) run ./cmd/vigil-chaos chaos -bin $(BIN) $(CHAOS_ARGS)

## scaleout: 1 -> 3 -> 2 enrich/correlate replicas, classic and KIP-848; bench/results/scaleout-<date>.json
scaleout: build
	$(MAKE) --no-print-directory up
	$(GO) run ./cmd/vigil-chaos scaleout -bin $(BIN) $(SCALEOUT_ARGS)

## fetch-geo: offline ASN/country data from npm (@ip-location-db) into $(GEO_DIR), once
fetch-geo:
	@if [ -f "$(GEO_DIR)/geo-whois-asn-country-ipv6.mmdb" ] && [ -f "$(GEO_DIR)/asn-ipv6.csv" ]; then echo "offline geo data present in $(GEO_DIR)"; \
	else bash services/enrich/internal/provider/offline/fetch.sh "$(GEO_DIR)"; fi

lint:
	@command -v golangci-lint >/dev/null && golangci-lint run ./... || echo "golangci-lint not installed; ran go vet instead" && $(GO) vet work

clean:
	rm -rf $(BIN) run
