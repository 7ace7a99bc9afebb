#!/usr/bin/env bash
# Local Alertmanager for development and CI, no Docker: Debian's `prometheus-alertmanager`
# package binary (never its system service) with its own port, state directory and a config
# rendered from ops/alertmanager/alertmanager.yml.template. ops/prometheus.sh points
# Prometheus at it; it routes every alert to the webhook at $ALERTMANAGER_WEBHOOK_URL.
set -euo pipefail

JALYTICS_LOG_TAG=alertmanager
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALERTMANAGER_HOST=127.0.0.1
# Not 9093: Debian's package enables a system-wide Alertmanager there (where services start).
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9193}"
# Empty: no webhook, alerts show in the Alertmanager UI only.
ALERTMANAGER_WEBHOOK_URL="${ALERTMANAGER_WEBHOOK_URL:-}"
ALERTMANAGER_GROUP_WAIT="${ALERTMANAGER_GROUP_WAIT:-30s}"
ALERTMANAGER_START_TIMEOUT="${ALERTMANAGER_START_TIMEOUT:-${JALYTICS_START_TIMEOUT:-60}}"
ALERTMANAGER_STOP_TIMEOUT="${ALERTMANAGER_STOP_TIMEOUT:-30}"

TEMPLATE="$JALYTICS_ROOT/ops/alertmanager/alertmanager.yml.template"
AM_STATE="$JALYTICS_STATE_DIR/alertmanager"
DATA_DIR="$AM_STATE/data"
CONFIG="$AM_STATE/alertmanager.yml"
PID_FILE="$AM_STATE/alertmanager.pid"
LOG_FILE="$AM_STATE/alertmanager.log"

# Matched against /proc/PID/cmdline: ours reads our config, never the system service's.
PID_PATTERN="--config.file=$CONFIG"

usage() {
    cat <<EOF
Usage: ops/alertmanager.sh COMMAND

Local Alertmanager on $ALERTMANAGER_HOST (Debian's 'prometheus-alertmanager' package, installed
when missing and root), routing every alert to the webhook at ALERTMANAGER_WEBHOOK_URL.

Commands:
  start    render the config, start Alertmanager in the background, wait until it is ready and
           print the env (idempotent: already running => config re-rendered and reloaded)
  stop     stop it (SIGTERM, SIGKILL after ${ALERTMANAGER_STOP_TIMEOUT}s); no-op when not running
  status   exit 0 if running and ready, 3 if stopped, 1 if the process is up but not ready
  env      print 'export ALERTMANAGER_URL=...' for the running Alertmanager
  check    amtool check-config on the rendered config and on compose.yaml's

Environment (defaults):
  ALERTMANAGER_PORT=9193  ALERTMANAGER_GROUP_WAIT=30s
  ALERTMANAGER_WEBHOOK_URL  where every alert is POSTed (Alertmanager's webhook JSON); unset:
           no webhook, the alerts show in the Alertmanager UI only
  ALERTMANAGER_START_TIMEOUT=\${JALYTICS_START_TIMEOUT:-60}  ALERTMANAGER_STOP_TIMEOUT=30
  ALERTMANAGER_BIN / AMTOOL_BIN  the binaries (default: from PATH)
  JALYTICS_STATE_DIR=<repo>/.run  (config, data, log and pid under \$JALYTICS_STATE_DIR/alertmanager)
EOF
}

# find_tools [install]: set ALERTMANAGER_BIN and AMTOOL_BIN; with "install", as root, installs
# Debian's package (it ships both) when either is missing.
find_tools() {
    ALERTMANAGER_BIN="${ALERTMANAGER_BIN:-$(command -v prometheus-alertmanager || true)}"
    AMTOOL_BIN="${AMTOOL_BIN:-$(command -v amtool || true)}"
    if [[ -z "$ALERTMANAGER_BIN" || -z "$AMTOOL_BIN" ]]; then
        apt_install_missing "${1:-}" prometheus-alertmanager --no-install-recommends
        ALERTMANAGER_BIN="$(command -v prometheus-alertmanager || true)"
        AMTOOL_BIN="$(command -v amtool || true)"
    fi
    local hint="apt-get install -y prometheus-alertmanager"
    [[ -x "$ALERTMANAGER_BIN" ]] || die "prometheus-alertmanager not found ($hint)"
    [[ -x "$AMTOOL_BIN" ]] || die "amtool not found ($hint)"
}

am_pid() { read_pid "$PID_FILE"; }

am_alive() { pid_alive "$(am_pid)" "$PID_PATTERN"; }

base_url() { printf 'http://%s:%s' "$ALERTMANAGER_HOST" "$ALERTMANAGER_PORT"; }

# Returns 2 when the process is gone, for wait_ready.
am_ready() {
    am_alive || return 2
    curl -fsS --max-time 2 "$(base_url)/-/ready" >/dev/null 2>&1 || return 1
}

print_env() { printf 'export ALERTMANAGER_URL=%s\n' "$(base_url)"; }

check_settings() {
    check_port "$ALERTMANAGER_PORT" ALERTMANAGER_PORT
    [[ "$ALERTMANAGER_GROUP_WAIT" =~ ^[0-9]+(ms|s|m)$ ]] ||
        die "ALERTMANAGER_GROUP_WAIT must be a duration like 30s (got '$ALERTMANAGER_GROUP_WAIT')"
    [[ -z "$ALERTMANAGER_WEBHOOK_URL" || "$ALERTMANAGER_WEBHOOK_URL" =~ ^https?://[^[:space:]\"]+$ ]] ||
        die "ALERTMANAGER_WEBHOOK_URL must be an http(s) URL (got '$ALERTMANAGER_WEBHOOK_URL')"
}

webhook_configs() {
    if [[ -n "$ALERTMANAGER_WEBHOOK_URL" ]]; then
        printf '    webhook_configs: [{url: "%s", send_resolved: true}]' "$ALERTMANAGER_WEBHOOK_URL"
    else
        printf '    # No ALERTMANAGER_WEBHOOK_URL: the alerts show in the Alertmanager UI only.'
    fi
}

# render_config OUT: the template filled in, checked by amtool, written atomically.
render_config() {
    local out="$1" content verdict
    [[ -r "$TEMPLATE" ]] || die "missing $TEMPLATE"
    content="$(<"$TEMPLATE")"
    content="${content//"@GROUP_WAIT@"/"$ALERTMANAGER_GROUP_WAIT"}"
    content="${content//"@WEBHOOK_CONFIGS@"/"$(webhook_configs)"}"
    [[ "$content" != *@[A-Z_]*@* ]] || die "unfilled placeholder left in $TEMPLATE"
    mkdir -p "$(dirname "$out")"
    printf '%s\n' "$content" >"$out.tmp"
    if ! verdict="$("$AMTOOL_BIN" check-config "$out.tmp" 2>&1)"; then
        printf '%s\n' "$verdict" >&2
        die "amtool rejected the config rendered from $TEMPLATE"
    fi
    mv "$out.tmp" "$out"
}

cmd_start() {
    check_settings
    check_timeout "$ALERTMANAGER_START_TIMEOUT" ALERTMANAGER_START_TIMEOUT
    require_cmd curl "apt-get install -y curl"
    find_tools install
    take_lock "$AM_STATE/.start.lock" $((ALERTMANAGER_START_TIMEOUT + 300))

    if am_alive; then
        render_config "$CONFIG"
        kill -HUP "$(am_pid)"
        log "already running (pid $(am_pid)) on $(base_url); config re-rendered and reloaded"
        print_env
        return 0
    fi
    if port_open "$ALERTMANAGER_HOST" "$ALERTMANAGER_PORT"; then
        die "port $ALERTMANAGER_HOST:$ALERTMANAGER_PORT is already in use by another process (set ALERTMANAGER_PORT)"
    fi

    mkdir -p "$DATA_DIR"
    render_config "$CONFIG"
    # --cluster.listen-address=: no gossip cluster (it would take port 9094 on every address).
    launch_daemon alertmanager "$PID_FILE" "$PID_PATTERN" "$LOG_FILE" \
        "$ALERTMANAGER_START_TIMEOUT" "$ALERTMANAGER_STOP_TIMEOUT" am_ready \
        "$ALERTMANAGER_BIN" \
        "--config.file=$CONFIG" \
        "--storage.path=$DATA_DIR" \
        "--web.listen-address=$ALERTMANAGER_HOST:$ALERTMANAGER_PORT" \
        "--cluster.listen-address="
    log "listening on $(base_url); webhook: ${ALERTMANAGER_WEBHOOK_URL:-none (alerts in the UI only)}"
    print_env
}

cmd_stop() {
    check_timeout "$ALERTMANAGER_STOP_TIMEOUT" ALERTMANAGER_STOP_TIMEOUT
    stop_daemon alertmanager "$PID_FILE" "$PID_PATTERN" "$ALERTMANAGER_STOP_TIMEOUT"
}

cmd_status() {
    daemon_status alertmanager "$PID_FILE" "$PID_PATTERN" am_ready "$(base_url)" "$AM_STATE"
}

cmd_env() {
    am_alive || die "not running (start it with ops/alertmanager.sh start)"
    print_env
}

cmd_check() {
    check_settings
    find_tools install
    local scratch
    scratch="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: $scratch is local
    trap "rm -rf '$scratch'" EXIT
    render_config "$scratch/alertmanager.yml"
    "$AMTOOL_BIN" check-config "$JALYTICS_ROOT/ops/alertmanager/alertmanager.compose.yml" >&2
    log "amtool: the rendered config and compose.yaml's are valid"
}

main() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        check) cmd_check ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
