#!/usr/bin/env bash
# Runs a throwaway Redis on loopback for Vigil's integration tests: no RDB, no
# AOF, daemonized, pid and log under ${VIGIL_CACHE:-~/.cache/vigil}/redis.
#
# usage: redis.sh start|stop|restart|status
set -euo pipefail

CACHE_DIR="${VIGIL_CACHE:-${HOME}/.cache/vigil}"
REDIS_DIR="${CACHE_DIR}/redis"
HOST="127.0.0.1"
PORT="${VIGIL_REDIS_PORT:-36379}"
PID_FILE="${REDIS_DIR}/redis-${PORT}.pid"
LOG_FILE="${REDIS_DIR}/redis-${PORT}.log"
LOCK_FILE="${REDIS_DIR}/redis-${PORT}.lock"
READY_TRIES=100 # x 0.1 s
STOP_TRIES=100  # x 0.1 s

log() { printf 'redis.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") start|stop|restart|status
  start    install redis-server if missing, start it on ${HOST}:${PORT}, wait for PONG
  stop     stop the Redis on ${HOST}:${PORT}
  restart  stop then start (Redis keeps no data across restarts)
  status   exit 0 when ${HOST}:${PORT} answers PING, 3 otherwise
EOF
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

install_redis() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    return 0
  fi
  log "installing redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if as_root apt-get install -y -q redis-server >&2; then
    return 0
  fi
  log "install failed; running apt-get update and trying again"
  as_root apt-get update -q >&2
  as_root apt-get install -y -q redis-server >&2 || die "could not install redis-server"
}

ping_ok() {
  [[ "$(redis-cli -h "${HOST}" -p "${PORT}" ping 2>/dev/null)" == "PONG" ]]
}

our_pid() {
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(cat "${PID_FILE}")"
  if [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null &&
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q "redis-server"; then
    printf '%s\n' "${pid}"
    return 0
  fi
  rm -f "${PID_FILE}"
  return 1
}

start_redis() {
  if ping_ok; then
    local pid
    if pid="$(our_pid)"; then
      log "already running (pid ${pid}) on ${HOST}:${PORT}"
    else
      log "a Redis not started by this script already answers on ${HOST}:${PORT}; using it"
    fi
    return 0
  fi
  install_redis
  mkdir -p "${REDIS_DIR}"
  log "starting redis-server on ${HOST}:${PORT}"
  # 9>&- keeps the script's lock out of the daemon.
  redis-server --bind "${HOST}" --port "${PORT}" --protected-mode yes \
    --save '' --appendonly no \
    --daemonize yes --pidfile "${PID_FILE}" --logfile "${LOG_FILE}" --dir "${REDIS_DIR}" 9>&- ||
    die "redis-server did not start (log: ${LOG_FILE})"
  local i
  for ((i = 0; i < READY_TRIES; i++)); do
    if ping_ok; then
      log "ready on ${HOST}:${PORT}"
      return 0
    fi
    sleep 0.1
  done
  [[ -f "${LOG_FILE}" ]] && tail -n 50 "${LOG_FILE}" >&2
  die "no PONG from ${HOST}:${PORT} after $((READY_TRIES / 10))s"
}

stop_redis() {
  local pid=""
  if pid="$(our_pid)"; then
    log "stopping (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
  elif ping_ok; then
    log "stopping the Redis on ${HOST}:${PORT} (no pid file) with SHUTDOWN NOSAVE"
    redis-cli -h "${HOST}" -p "${PORT}" shutdown nosave >/dev/null 2>&1 || true
  else
    log "not running"
    return 0
  fi
  local i
  for ((i = 0; i < STOP_TRIES; i++)); do
    if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
      sleep 0.1
      continue
    fi
    if ping_ok; then
      sleep 0.1
      continue
    fi
    rm -f "${PID_FILE}"
    log "stopped"
    return 0
  done
  if [[ -n "${pid}" ]]; then
    log "still running after $((STOP_TRIES / 10))s; sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    rm -f "${PID_FILE}"
    return 0
  fi
  die "Redis on ${HOST}:${PORT} did not stop"
}

status_redis() {
  local pid
  if ping_ok; then
    if pid="$(our_pid)"; then
      echo "redis: running (pid ${pid}) on ${HOST}:${PORT}"
    else
      echo "redis: running on ${HOST}:${PORT} (not started by this script)"
    fi
    return 0
  fi
  echo "redis: stopped"
  return 3
}

with_lock() {
  mkdir -p "${REDIS_DIR}"
  exec 9>"${LOCK_FILE}"
  flock -w 60 9 || die "could not take ${LOCK_FILE}"
}

main() {
  case "${1:-}" in
    start)
      with_lock
      start_redis
      ;;
    stop)
      with_lock
      stop_redis
      ;;
    restart)
      with_lock
      stop_redis
      start_redis
      ;;
    status)
      if ! command -v redis-cli >/dev/null; then
        echo "redis: not installed"
        return 3
      fi
      status_redis
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
