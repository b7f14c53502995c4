#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft, broker+controller) on loopback for
# Vigil's integration and chaos tests. See scripts/kafka/README.md.
#
# usage: kafka.sh start|stop [--wipe]|restart|status|logs [-f]|clean|fetch
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.1.1}"
CACHE_DIR="${VIGIL_CACHE:-${HOME}/.cache/vigil}"
LIBS_HOME="${CACHE_DIR}/kafka-${KAFKA_VERSION}"
LIBS_DIR="${LIBS_HOME}/libs"
LIBS_MARKER="${LIBS_HOME}/.libs-complete"
RUN_DIR="${VIGIL_KAFKA_DIR:-${CACHE_DIR}/kafka-run}"
DATA_DIR="${RUN_DIR}/data"
LOG_DIR="${RUN_DIR}/logs"
PID_FILE="${RUN_DIR}/kafka.pid"
OUT_FILE="${LOG_DIR}/kafka.out"
SERVER_LOG="${LOG_DIR}/server.log"
PROPS_FILE="${RUN_DIR}/server.properties"
LOCK_FILE="${CACHE_DIR}/kafka.lock"
KREADY_BIN="${CACHE_DIR}/bin/kready"

HOST="127.0.0.1"
PORT="${VIGIL_KAFKA_PORT:-39092}"
CONTROLLER_PORT="${VIGIL_KAFKA_CONTROLLER_PORT:-39093}"
HEAP="${VIGIL_KAFKA_HEAP:-512m}"
READY_TIMEOUT="${VIGIL_KAFKA_READY_TIMEOUT:-90s}"
STOP_TIMEOUT=20

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/kafka/lib.sh
source "${SCRIPT_DIR}/lib.sh"

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") <command>
  start           fetch jars if needed, format storage if new, start, wait until ready
  stop [--wipe]   stop the broker (SIGTERM, SIGKILL after ${STOP_TIMEOUT}s); --wipe also deletes the data
  restart         stop then start, keeping the data
  status          say whether the broker runs and answers (exit 0 ready, 1 not ready, 3 stopped)
  logs [-f]       print (or follow) the broker log
  clean           stop and delete the data dir (${RUN_DIR})
  fetch           only download the broker jars into ${LIBS_DIR}
EOF
}

# pom_hash identifies the jar set: a changed pom.xml or version refetches.
pom_hash() {
  { cat "${SCRIPT_DIR}/pom.xml"; printf '%s\n' "${KAFKA_VERSION}"; } | sha256sum | cut -d' ' -f1
}

fetch_libs() {
  local want
  want="$(pom_hash)"
  if [[ -f "${LIBS_MARKER}" && "$(cat "${LIBS_MARKER}")" == "${want}" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found; install Maven (apt-get install -y maven)"
  log "downloading Kafka ${KAFKA_VERSION} jars into ${LIBS_DIR} (once)"
  rm -rf "${LIBS_DIR}"
  mkdir -p "${LIBS_DIR}"
  local mvn_log="${LIBS_HOME}/mvn.log"
  if ! mvn -B -Dstyle.color=never -f "${SCRIPT_DIR}/pom.xml" \
      -Dkafka.version="${KAFKA_VERSION}" \
      -Dkafka.libs.dir="${LIBS_DIR}" \
      dependency:copy-dependencies@libs >"${mvn_log}" 2>&1; then
    tail -n 50 "${mvn_log}" >&2
    die "mvn could not fetch the Kafka jars (full log: ${mvn_log})"
  fi
  compgen -G "${LIBS_DIR}/kafka_2.13-${KAFKA_VERSION}.jar" >/dev/null ||
    die "kafka_2.13-${KAFKA_VERSION}.jar missing from ${LIBS_DIR} after mvn"
  printf '%s\n' "${want}" >"${LIBS_MARKER}"
}

# build_kready (re)builds the readiness probe when its sources are newer.

write_properties() {
  mkdir -p "${DATA_DIR}" "${LOG_DIR}"
  cat >"${PROPS_FILE}" <<EOF
# Written by scripts/kafka/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=${HOST}:${CONTROLLER_PORT}
log.dirs=${DATA_DIR}

num.partitions=12
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=${VIGIL_KAFKA_AUTO_CREATE_TOPICS:-false}
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

# Small footprint for a test box.
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
}

format_storage() {
  if [[ -f "${DATA_DIR}/meta.properties" ]]; then
    return 0
  fi
  local -a java
  mapfile -d '' java < <(java_cmd)
  local cluster_id
  if ! cluster_id="$("${java[@]}" kafka.tools.StorageTool random-uuid 2>&1)" ||
    [[ ! "${cluster_id}" =~ ^[A-Za-z0-9_-]{22}$ ]]; then
    printf '%s\n' "${cluster_id}" >&2
    die "could not generate a cluster id"
  fi
  log "formatting ${DATA_DIR} (cluster ${cluster_id})"
  "${java[@]}" kafka.tools.StorageTool format --standalone --ignore-formatted \
    -t "${cluster_id}" -c "${PROPS_FILE}" >>"${OUT_FILE}" 2>&1 ||
    { show_logs_tail; die "could not format ${DATA_DIR}"; }
}

# wait_ready runs kready while watching the broker process, so a broker that
# dies during startup fails fast instead of after the whole ready timeout.
wait_ready() {
  local pid="$1" kpid rc=0
  "${KREADY_BIN}" -brokers "${HOST}:${PORT}" -timeout "${READY_TIMEOUT}" >&2 &
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
  local pid
  if pid="$(running_pid)"; then
    "${KREADY_BIN}" -brokers "${HOST}:${PORT}" -timeout "${READY_TIMEOUT}" -quiet ||
      { show_logs_tail; die "broker (pid ${pid}) runs but is not ready"; }
    log "already running (pid ${pid}) on ${HOST}:${PORT}"
    return 0
  fi
  local p
  for p in "${PORT}" "${CONTROLLER_PORT}"; do
    if port_busy "${p}"; then
      die "port ${HOST}:${p} is taken by another process; set VIGIL_KAFKA_PORT/VIGIL_KAFKA_CONTROLLER_PORT"
    fi
  done
  command -v java >/dev/null || die "java not found; install a JDK 17+"

  write_properties
  format_storage

  local -a java
  mapfile -d '' java < <(java_cmd)
  log "starting Kafka ${KAFKA_VERSION} on ${HOST}:${PORT} (controller ${CONTROLLER_PORT}), data ${DATA_DIR}"
  printf '\n===== start %s =====\n' "$(date -u +%FT%TZ)" >>"${OUT_FILE}"
  # 9>&- keeps the start lock out of the long-lived broker.
  nohup "${java[@]}" kafka.Kafka "${PROPS_FILE}" >>"${OUT_FILE}" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "${pid}" >"${PID_FILE}"
  wait_ready "${pid}"
  log "ready (pid ${pid})"
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

wipe_data() {
  log "deleting ${RUN_DIR}"
  rm -rf "${RUN_DIR}"
}

status_broker() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka: stopped"
    return 3
  fi
  if "${KREADY_BIN}" -brokers "${HOST}:${PORT}" -timeout 3s -quiet 2>/dev/null; then
    echo "kafka: running (pid ${pid}) and ready on ${HOST}:${PORT}"
    return 0
  fi
  echo "kafka: running (pid ${pid}) but not answering on ${HOST}:${PORT}"
  return 1
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "${cmd}" in
    start)
      with_lock
      fetch_libs
      build_kready
      start_broker
      ;;
    stop)
      with_lock
      stop_broker
      if [[ "${1:-}" == "--wipe" ]]; then wipe_data; fi
      ;;
    restart)
      with_lock
      fetch_libs
      build_kready
      stop_broker
      start_broker
      ;;
    clean)
      with_lock
      stop_broker
      wipe_data
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
    fetch)
      with_lock
      fetch_libs
      log "jars ready in ${LIBS_DIR}"
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
