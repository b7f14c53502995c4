#!/usr/bin/env bash
# Runs a second single-node Apache Kafka (KRaft) on loopback that only accepts
# SASL_SSL clients: TLS from a throwaway CA generated with openssl at every
# fresh start, SASL/SCRAM-SHA-512 users created when the storage is formatted.
# It reuses the jars scripts/kafka/kafka.sh fetches. See scripts/kafka/README.md.
#
# usage: kafka-secure.sh start|stop|restart|status|logs [-f]|env
#
# A start on a stopped broker always begins from scratch (new CA, certificate,
# passwords, cluster): nothing secret outlives a stop. The client settings are
# written to ${RUN_DIR}/secure.env as VIGIL_KAFKA_* lines.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.1.1}"
CACHE_DIR="${VIGIL_CACHE:-${HOME}/.cache/vigil}"
LIBS_DIR="${CACHE_DIR}/kafka-${KAFKA_VERSION}/libs"
RUN_DIR="${VIGIL_KAFKA_SECURE_DIR:-${CACHE_DIR}/kafka-secure}"
DATA_DIR="${RUN_DIR}/data"
LOG_DIR="${RUN_DIR}/logs"
TLS_DIR="${RUN_DIR}/tls"
PID_FILE="${RUN_DIR}/kafka.pid"
OUT_FILE="${LOG_DIR}/kafka.out"
SERVER_LOG="${LOG_DIR}/server.log"
PROPS_FILE="${RUN_DIR}/server.properties"
ENV_FILE="${RUN_DIR}/secure.env"
PASSWORD_FILE="${RUN_DIR}/password"
CA_FILE="${TLS_DIR}/ca.pem"
LOCK_FILE="${CACHE_DIR}/kafka-secure.lock"
KREADY_BIN="${CACHE_DIR}/bin/kready-secure"

HOST="127.0.0.1"
PORT="${VIGIL_KAFKA_SECURE_PORT:-39192}"
CONTROLLER_PORT="${VIGIL_KAFKA_SECURE_CONTROLLER_PORT:-39193}"
HEAP="${VIGIL_KAFKA_HEAP:-512m}"
READY_TIMEOUT="${VIGIL_KAFKA_READY_TIMEOUT:-90s}"
STOP_TIMEOUT=20
CLIENT_USER="vigil"
BROKER_USER="vigil-broker"

log() { printf 'kafka-secure.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/kafka/lib.sh
source "${SCRIPT_DIR}/lib.sh"

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") <command>
  start      fetch jars if needed (kafka.sh fetch); when stopped: new CA, certificate and
             passwords, format, start, wait until a SASL_SSL client is served
  stop       stop the broker and delete its data, keys and passwords (logs stay in ${LOG_DIR})
  restart    stop then start (everything new)
  status     exit 0 ready, 1 running but not answering, 3 stopped
  logs [-f]  print (or follow) the broker log
  env        print the path of secure.env (exit 3 when the broker is stopped)
EOF
}

# build_kready (re)builds the readiness probe when its sources are newer.

kready_args() {
  printf '%s\0' -brokers "${HOST}:${PORT}" -tls-ca "${CA_FILE}" \
    -sasl-mechanism SCRAM-SHA-512 -sasl-user "${CLIENT_USER}" -sasl-password-file "${PASSWORD_FILE}"
}

# make_pki writes a throwaway CA and a server certificate for 127.0.0.1/localhost
# signed by it. Kafka reads both as PEM: the key must be unencrypted PKCS#8.
make_pki() {
  command -v openssl >/dev/null || die "openssl not found"
  mkdir -p "${TLS_DIR}"
  chmod 700 "${TLS_DIR}"
  local ossl_log="${TLS_DIR}/openssl.log"
  {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${TLS_DIR}/ca.key" &&
      openssl req -x509 -new -key "${TLS_DIR}/ca.key" -sha256 -days 2 \
        -subj "/CN=vigil throwaway test CA $(date -u +%FT%TZ)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "${CA_FILE}" &&
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${TLS_DIR}/server.key" &&
      openssl req -new -key "${TLS_DIR}/server.key" -subj "/CN=localhost" -out "${TLS_DIR}/server.csr" &&
      printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=IP:${HOST},DNS:localhost" >"${TLS_DIR}/server.ext" &&
      openssl x509 -req -in "${TLS_DIR}/server.csr" -CA "${CA_FILE}" -CAkey "${TLS_DIR}/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "${TLS_DIR}/server.ext" \
        -out "${TLS_DIR}/server.crt"
  } >"${ossl_log}" 2>&1 || { cat "${ossl_log}" >&2; die "openssl could not make the test PKI"; }
  # keystore: private key then certificate chain, one PEM file
  cat "${TLS_DIR}/server.key" "${TLS_DIR}/server.crt" "${CA_FILE}" >"${TLS_DIR}/keystore.pem"
  chmod 600 "${TLS_DIR}"/*.key "${TLS_DIR}/keystore.pem"
  rm -f "${TLS_DIR}/server.csr" "${TLS_DIR}/ca.srl"
}

# make_secrets writes fresh random passwords for the client and the broker's own user.
make_secrets() {
  umask 077
  openssl rand -hex 24 >"${PASSWORD_FILE}"
  openssl rand -hex 24 >"${RUN_DIR}/broker-password"
}

write_properties() {
  local broker_pw
  broker_pw="$(cat "${RUN_DIR}/broker-password")"
  (
    umask 077
    cat >"${PROPS_FILE}" <<EOF
# Written by scripts/kafka/kafka-secure.sh on every fresh start; edit the script, not this file.
process.roles=broker,controller
node.id=1
listeners=SASL_SSL://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=SASL_SSL://${HOST}:${PORT}
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=${HOST}:${CONTROLLER_PORT}
log.dirs=${DATA_DIR}

# SASL/SCRAM-SHA-512 only; the users are created by StorageTool format --add-scram.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${BROKER_USER}" password="${broker_pw}";

# TLS with PEM files from the throwaway CA (make_pki).
ssl.keystore.type=PEM
ssl.keystore.location=${TLS_DIR}/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${CA_FILE}
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2

num.partitions=12
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

group.initial.rebalance.delay.ms=0
group.coordinator.rebalance.protocols=classic,consumer

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=16777216
log.retention.hours=24
log.retention.bytes=268435456
log.retention.check.interval.ms=60000
EOF
  )
}

write_env() {
  (
    umask 077
    cat >"${ENV_FILE}" <<EOF
# Client settings for the SASL_SSL broker of scripts/kafka/kafka-secure.sh (regenerated on every fresh start).
VIGIL_KAFKA_BROKERS=${HOST}:${PORT}
VIGIL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
VIGIL_KAFKA_SASL_USER=${CLIENT_USER}
VIGIL_KAFKA_SASL_PASSWORD_FILE=${PASSWORD_FILE}
VIGIL_KAFKA_TLS=true
VIGIL_KAFKA_TLS_CA_FILE=${CA_FILE}
EOF
  )
}

format_storage() {
  local -a java
  mapfile -d '' java < <(java_cmd)
  local cluster_id
  if ! cluster_id="$("${java[@]}" kafka.tools.StorageTool random-uuid 2>&1)" ||
    [[ ! "${cluster_id}" =~ ^[A-Za-z0-9_-]{22}$ ]]; then
    printf '%s\n' "${cluster_id}" >&2
    die "could not generate a cluster id"
  fi
  log "formatting ${DATA_DIR} (cluster ${cluster_id}) with SCRAM users ${CLIENT_USER}, ${BROKER_USER}"
  # The passwords are on StorageTool's command line for the second it runs; they are random,
  # loopback-only and die with this throwaway broker.
  "${java[@]}" kafka.tools.StorageTool format --standalone \
    -t "${cluster_id}" -c "${PROPS_FILE}" \
    --add-scram "SCRAM-SHA-512=[name=${CLIENT_USER},password=$(cat "${PASSWORD_FILE}")]" \
    --add-scram "SCRAM-SHA-512=[name=${BROKER_USER},password=$(cat "${RUN_DIR}/broker-password")]" \
    >>"${OUT_FILE}" 2>&1 ||
    { show_logs_tail; die "could not format ${DATA_DIR}"; }
}

wait_ready() {
  local pid="$1" kpid rc=0
  local -a args
  mapfile -d '' args < <(kready_args)
  "${KREADY_BIN}" "${args[@]}" -timeout "${READY_TIMEOUT}" >&2 &
  kpid=$!
  while kill -0 "${kpid}" 2>/dev/null; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      kill "${kpid}" 2>/dev/null || true
      wait "${kpid}" 2>/dev/null || true
      rm -f "${PID_FILE}"
      show_logs_tail
      die "broker exited during startup"
    fi
    sleep 0.2
  done
  wait "${kpid}" || rc=$?
  if [[ "${rc}" -ne 0 ]]; then
    show_logs_tail
    if kill -0 "${pid}" 2>/dev/null; then
      log "broker (pid ${pid}) is up but not ready; stopping it"
      stop_broker
    fi
    die "broker did not become ready"
  fi
}

start_broker() {
  local pid started
  started="$(date +%s%N)"
  if pid="$(running_pid)"; then
    local -a args
    mapfile -d '' args < <(kready_args)
    "${KREADY_BIN}" "${args[@]}" -timeout "${READY_TIMEOUT}" -quiet ||
      { show_logs_tail; die "broker (pid ${pid}) runs but is not ready"; }
    log "already running (pid ${pid}) on SASL_SSL ${HOST}:${PORT}; client settings in ${ENV_FILE}"
    return 0
  fi
  local p
  for p in "${PORT}" "${CONTROLLER_PORT}"; do
    if port_busy "${p}"; then
      die "port ${HOST}:${p} is taken by another process; set VIGIL_KAFKA_SECURE_PORT/VIGIL_KAFKA_SECURE_CONTROLLER_PORT"
    fi
  done
  command -v java >/dev/null || die "java not found; install a JDK 17+"

  # A fresh start: nothing from an earlier run is reused but the logs.
  clean_run_dir
  mkdir -p "${RUN_DIR}" "${DATA_DIR}" "${LOG_DIR}"
  chmod 700 "${RUN_DIR}"
  make_pki
  make_secrets
  write_properties
  format_storage

  local -a java
  mapfile -d '' java < <(java_cmd)
  log "starting Kafka ${KAFKA_VERSION} with SASL_SSL on ${HOST}:${PORT} (controller ${CONTROLLER_PORT}), run dir ${RUN_DIR}"
  printf '\n===== start %s =====\n' "$(date -u +%FT%TZ)" >>"${OUT_FILE}"
  # 9>&- keeps the start lock out of the long-lived broker.
  nohup "${java[@]}" kafka.Kafka "${PROPS_FILE}" >>"${OUT_FILE}" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "${pid}" >"${PID_FILE}"
  wait_ready "${pid}"
  write_env
  log "ready (pid ${pid}) after $(( ($(date +%s%N) - started) / 1000000 )) ms; client settings in ${ENV_FILE}"
}

stop_broker() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  local i
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "${PID_FILE}"
  log "stopped"
}

status_broker() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka-secure: stopped"
    return 3
  fi
  local -a args
  mapfile -d '' args < <(kready_args)
  if "${KREADY_BIN}" "${args[@]}" -timeout 5s -quiet 2>/dev/null; then
    echo "kafka-secure: running (pid ${pid}) and ready on SASL_SSL ${HOST}:${PORT}; env ${ENV_FILE}"
    return 0
  fi
  echo "kafka-secure: running (pid ${pid}) but not answering on ${HOST}:${PORT}"
  return 1
}

# clean_run_dir deletes everything but the logs (secrets, CA key, data) of a stopped broker.
clean_run_dir() {
  if [[ -d "${RUN_DIR}" ]] && ! running_pid >/dev/null; then
    find "${RUN_DIR}" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "${cmd}" in
    start)
      # kafka.sh takes its own lock; fetch before taking ours.
      bash "${SCRIPT_DIR}/kafka.sh" fetch
      with_lock
      build_kready
      start_broker
      ;;
    stop)
      with_lock
      stop_broker
      clean_run_dir
      ;;
    restart)
      bash "${SCRIPT_DIR}/kafka.sh" fetch
      with_lock
      build_kready
      stop_broker
      start_broker
      ;;
    status)
      build_kready
      status_broker
      ;;
    logs)
      [[ -f "${SERVER_LOG}" ]] || die "no log yet at ${SERVER_LOG}"
      if [[ "${1:-}" == "-f" ]]; then
        exec tail -n 50 -F "${SERVER_LOG}"
      fi
      tail -n 200 "${SERVER_LOG}"
      ;;
    env)
      running_pid >/dev/null || { log "not running"; exit 3; }
      printf '%s\n' "${ENV_FILE}"
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
