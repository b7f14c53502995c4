# syntax=docker/dockerfile:1
# Development emulators in one image: the enrichment provider emulator (Criminal IP, InternetDB,
# AbuseIPDB, GreyNoise routes) and the ThreatQ REST API emulator. Never deploy to production.
# Build from the repository root:
#   docker build -f deploy/docker/emulators.Dockerfile -t vigil/emulators:dev .
# Run one of them by command, e.g.:
#   docker run vigil/emulators:dev /usr/local/bin/threatq-emulator -addr 0.0.0.0:18443
#
# No HEALTHCHECK: distroless has no shell or HTTP client to run one.
# The provider emulator only accepts a loopback -addr; in Compose it therefore joins the enrich
# container's network namespace (network_mode: service:enrich) and enrich calls 127.0.0.1:8089.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.work ./
COPY cmd/go.mod cmd/go.sum ./cmd/
COPY pkg/go.mod pkg/go.sum ./pkg/
COPY services/ingest/go.mod services/ingest/go.sum ./services/ingest/
COPY services/enrich/go.mod services/enrich/go.sum ./services/enrich/
COPY services/correlate/go.mod services/correlate/go.sum ./services/correlate/
COPY services/sink/go.mod services/sink/go.sum ./services/sink/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/ ./services/enrich/cmd/provider-emulator ./services/sink/cmd/threatq-emulator \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="vigil-emulators" \
      org.opencontainers.image.source="https://github.com/vigilsec/vigil"
COPY --from=build /out/provider-emulator /out/threatq-emulator /usr/local/bin/
# /data holds the ThreatQ emulator's snapshot; owned by the nonroot user so a fresh named volume
# inherits a writable directory.
COPY --from=build --chown=65532:65532 /out/data /data
EXPOSE 8089 18443
USER 65532:65532
CMD ["/usr/local/bin/threatq-emulator", "-addr", "0.0.0.0:18443", "-snapshot", "/data/threatq.json"]
