#!/usr/bin/env bash
# The workers (gateway, detector, baseline worker, webhook notifier) under supervisord (Supervisor, from PyPI, installed in .venv by
# `make install`): it restarts a worker that exits, with backoff while one keeps failing at
# start. ops/up.sh renders its config and starts it (`start`); this script also stops, shows
# and tails them.
set -euo pipefail
JALYTICS_LOG_TAG=workers
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUPERVISOR_DIR="$JALYTICS_STATE_DIR/supervisor"
CONFIG="$SUPERVISOR_DIR/supervisord.conf"
PID_FILE="$SUPERVISOR_DIR/supervisord.pid"
LOGS="$JALYTICS_STATE_DIR/logs"
WORKERS=(gateway detector baselines notifier)
# Longer than a worker's own drain (the gateway's is 15 s) plus supervisord's stop timeout.
WORKERS_STOP_TIMEOUT="${WORKERS_STOP_TIMEOUT:-60}"

usage() {
    cat <<EOF
Usage: ops/workers.sh COMMAND

Commands:
  start    render $CONFIG from the environment (see ops/up.sh) and start supervisord, or make a
           running one apply the new config and start any stopped worker
  stop     stop every worker (each drains; SIGKILL after 30 s) and supervisord
  status   each worker's state (exit 0 when all run, 3 when supervisord is not running)
  logs     the last lines of the workers' logs, then follow them (Ctrl-C to quit);
           \`logs NAME\` for one of: ${WORKERS[*]}
  ctl ...  any supervisorctl command, e.g. \`ctl restart detector\`

Logs: $LOGS/<worker>.log (owner-only, rotated at 50 MB, 5 kept).
EOF
}

supervisord_pid() { read_pid "$PID_FILE"; }
supervisord_alive() { pid_alive "$(supervisord_pid)" supervisord; }
ctl() { "$JALYTICS_ROOT/.venv/bin/supervisorctl" -c "$CONFIG" "$@"; }

# env_value VALUE: VALUE quoted for a supervisord `environment=` line ('%' doubled: the file
# is interpolated). A double quote or a newline cannot be expressed there.
env_value() {
    [[ "$1" != *[\"$'\n']* ]] || die "a worker setting contains a double quote or a newline"
    printf '"%s"' "${1//%/%%}"
}

# program NAME MODULE [ENV=VALUE...]: the section that runs `python -m MODULE` with the
# environment of supervisord plus ENV (each worker's own login and settings).
program() {
    local name=$1 module=$2 pairs="" pair
    shift 2
    for pair in "$@"; do
        pairs+="${pairs:+,}${pair%%=*}=$(env_value "${pair#*=}")"
    done
    cat <<EOF

[program:$name]
command=$JALYTICS_ROOT/.venv/bin/python -m $module
directory=$JALYTICS_ROOT
environment=$pairs
autostart=true
; Restart whatever the exit (70 is the detector's answer to an unexpected error). A worker that
; dies within startsecs is retried after 1 s, 2 s, 3 s... and given up (FATAL) after
; startretries tries; JalyticsWorkerDown then pages.
autorestart=true
startsecs=5
startretries=20
stopsignal=TERM
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$LOGS/$name.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=5
EOF
}

# render_config: the config, with the workers' credentials in it, readable by the owner only.
render_config() {
    mkdir -p "$SUPERVISOR_DIR" "$LOGS"
    (
        umask 077
        cat >"$CONFIG.tmp" <<EOF
; Rendered by ops/workers.sh start; holds credentials (mode 600). Do not edit.
[unix_http_server]
file=$SUPERVISOR_DIR/supervisord.sock
chmod=0700

[supervisorctl]
serverurl=unix://$SUPERVISOR_DIR/supervisord.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisord]
logfile=$SUPERVISOR_DIR/supervisord.log
pidfile=$PID_FILE
; Logs it creates are the operator's alone.
umask=077
EOF
        program gateway ingest_gateway DATABASE_URL="$GATEWAY_DATABASE_URL" \
            API_KEYS_SHA256="$API_KEYS_SHA256" >>"$CONFIG.tmp"
        program detector detector_worker DATABASE_URL="$DETECTOR_DATABASE_URL" \
            METRICS_PORT="$DETECTOR_METRICS_PORT" >>"$CONFIG.tmp"
        program baselines baseline_worker DATABASE_URL="$BASELINE_DATABASE_URL" \
            METRICS_PORT="$BASELINE_METRICS_PORT" >>"$CONFIG.tmp"
        program notifier ingest_gateway.webhooks DATABASE_URL="$NOTIFIER_DATABASE_URL" \
            METRICS_PORT="$NOTIFIER_METRICS_PORT" >>"$CONFIG.tmp"
    )
    mv "$CONFIG.tmp" "$CONFIG"
    touch "$SUPERVISOR_DIR/supervisord.log" && chmod 600 "$SUPERVISOR_DIR/supervisord.log"
}

# cmd_start: needs GATEWAY_/DETECTOR_/BASELINE_/NOTIFIER_DATABASE_URL, API_KEYS_SHA256 and the metrics
# ports in the environment of this script, and expects them not exported further (ops/up.sh).
cmd_start() {
    render_config
    local name
    for name in "${WORKERS[@]}"; do
        # Logs are for the operator only, also those an older run left with another mode.
        touch "$LOGS/$name.log" && chmod 600 "$LOGS/$name.log"
    done
    if supervisord_alive; then
        ctl update >&2
        ctl start all >&2 || true # "already started" is not an error here
        log "supervisord already running (pid $(supervisord_pid)); config applied"
        return
    fi
    # The workers inherit this environment: it must hold no other worker's login.
    env -u GATEWAY_DATABASE_URL -u DETECTOR_DATABASE_URL -u BASELINE_DATABASE_URL \
        -u NOTIFIER_DATABASE_URL \
        -u API_KEYS_SHA256 "$JALYTICS_ROOT/.venv/bin/supervisord" -c "$CONFIG"
    log "supervisord started the workers; logs: $LOGS, state: make status"
}

cmd_stop() {
    local pid
    pid="$(supervisord_pid)"
    if ! supervisord_alive; then
        log "workers not running"
        return 0
    fi
    # supervisord stops each worker (SIGTERM, SIGKILL after stopwaitsecs), then exits.
    log "stopping the workers and supervisord (pid $pid)"
    terminate_pid "$pid" "$WORKERS_STOP_TIMEOUT" supervisord
}

cmd_status() {
    if ! supervisord_alive; then
        echo "workers: supervisord not running (make up starts it)"
        return 3
    fi
    ctl status
}

cmd_logs() {
    local files=() name
    for name in "${@:-${WORKERS[@]}}"; do
        [[ " ${WORKERS[*]} " == *" $name "* ]] || die "no worker '$name' (one of: ${WORKERS[*]})"
        files+=("$LOGS/$name.log")
    done
    exec tail -n "${LOG_LINES:-20}" -F "${files[@]}"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        logs) cmd_logs "$@" ;;
        ctl) ctl "$@" ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
