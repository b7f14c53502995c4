#!/usr/bin/env bash
# Helpers shared by kafka.sh and kafka-secure.sh (sourced; they read the caller's PID_FILE, PROPS_FILE,
# HOST, OUT_FILE, SERVER_LOG, HEAP, LOG_DIR, SCRIPT_DIR, LIBS_DIR, REPO_ROOT, KREADY_BIN, CACHE_DIR and LOCK_FILE).
# shellcheck shell=bash

running_pid() {
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(cat "${PID_FILE}")"
  if [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null &&
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF "kafka.Kafka ${PROPS_FILE}"; then
    printf '%s\n' "${pid}"
    return 0
  fi
  rm -f "${PID_FILE}"
  return 1
}

port_busy() {
  (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null
}

show_logs_tail() {
  local f
  for f in "${OUT_FILE}" "${SERVER_LOG}"; do
    if [[ -s "${f}" ]]; then
      log "last 50 lines of ${f}:"
      tail -n 50 "${f}" >&2
    fi
  done
}

java_cmd() {
  printf '%s\0' java "-Xmx${HEAP}" -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    "-Dkafka.logs.dir=${LOG_DIR}" \
    "-Dlog4j2.configurationFile=${SCRIPT_DIR}/log4j2.properties" \
    -cp "${LIBS_DIR}/*"
}

build_kready() {
  local src="${REPO_ROOT}/pkg/cmd/kready"
  if [[ -x "${KREADY_BIN}" ]] &&
    [[ -z "$(find "${src}" "${REPO_ROOT}/pkg/stream" -name '*.go' -newer "${KREADY_BIN}" -print -quit)" ]]; then
    return 0
  fi
  command -v go >/dev/null || die "go not found; needed to build pkg/cmd/kready"
  mkdir -p "$(dirname "${KREADY_BIN}")"
  (cd "${REPO_ROOT}/pkg" && go build -o "${KREADY_BIN}" ./cmd/kready) || die "go build pkg/cmd/kready"
}

with_lock() {
  mkdir -p "${CACHE_DIR}"
  exec 9>"${LOCK_FILE}"
  flock -w 300 9 || die "could not take ${LOCK_FILE}"
}
