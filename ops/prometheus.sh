#!/usr/bin/env bash
# Local Prometheus for development and CI, no Docker: Debian's `prometheus` package binary with
# its own port, data directory and a config rendered from ops/prometheus/prometheus.yml.template
# that scrapes the four workers and loads ops/prometheus/rules.yml.
set -euo pipefail

JALYTICS_LOG_TAG=prometheus
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMETHEUS_HOST=127.0.0.1
# Not 9090: Debian's package enables a system-wide Prometheus there (where services start).
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9190}"
PROMETHEUS_SCRAPE_INTERVAL="${PROMETHEUS_SCRAPE_INTERVAL:-5s}"
PROMETHEUS_RETENTION="${PROMETHEUS_RETENTION:-7d}"
PROMETHEUS_START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-${JALYTICS_START_TIMEOUT:-60}}"
PROMETHEUS_STOP_TIMEOUT="${PROMETHEUS_STOP_TIMEOUT:-30}"
# Where Prometheus sends its alerts: the Alertmanager of ops/alertmanager.sh.
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9193}"
# The workers' ports, as ops/up.sh starts them.
GATEWAY_PORT="${GATEWAY_PORT:-${PORT:-8000}}"
DETECTOR_METRICS_PORT="${DETECTOR_METRICS_PORT:-9101}"
BASELINE_METRICS_PORT="${BASELINE_METRICS_PORT:-9102}"
NOTIFIER_METRICS_PORT="${NOTIFIER_METRICS_PORT:-9103}"

OPS_DIR="$JALYTICS_ROOT/ops/prometheus"
TEMPLATE="$OPS_DIR/prometheus.yml.template"
# Another rules file only for tests (e.g. one that fires at once).
RULES="$(abs_path "${PROMETHEUS_RULES:-$OPS_DIR/rules.yml}")"
RULES_TESTS="$OPS_DIR/rules.test.yml"

PROM_STATE="$JALYTICS_STATE_DIR/prometheus"
DATA_DIR="$PROM_STATE/data"
CONFIG="$PROM_STATE/prometheus.yml"
PID_FILE="$PROM_STATE/prometheus.pid"
LOG_FILE="$PROM_STATE/prometheus.log"

# Matched against /proc/PID/cmdline: ours is the Prometheus reading our config, never the
# system one of Debian's service.
PID_PATTERN="--config.file=$CONFIG"

usage() {
    cat <<EOF
Usage: ops/prometheus.sh COMMAND

Local Prometheus on $PROMETHEUS_HOST (Debian's 'prometheus' package, installed when missing and
root), scraping the gateway, the detector and the baseline worker, with the alert rules loaded
and its alerts sent to the Alertmanager on ALERTMANAGER_PORT (ops/alertmanager.sh).

Commands:
  start    render the config, start Prometheus in the background, wait until it is ready and
           print the env (idempotent: already running => config re-rendered and reloaded).
           On timeout prints the log's tail, stops it and exits 1
  stop     stop it (SIGTERM, SIGKILL after ${PROMETHEUS_STOP_TIMEOUT}s); no-op when not running
  status   exit 0 if running and ready, 3 if stopped, 1 if the process is up but not ready
  env      print 'export PROMETHEUS_URL=...' for the running Prometheus, and the addresses of
           its alerts and targets pages (PROMETHEUS_ALERTS_URL, PROMETHEUS_TARGETS_URL)
  reload   re-render the config and make the running Prometheus reload it and the rules
  check    promtool: check the rules and the rendered config, then run the rules' unit tests

Typical use:  eval "\$(ops/prometheus.sh start)"

Environment (defaults):
  PROMETHEUS_PORT=9190  PROMETHEUS_SCRAPE_INTERVAL=5s  PROMETHEUS_RETENTION=7d
  GATEWAY_PORT=\${PORT:-8000}  DETECTOR_METRICS_PORT=9101  BASELINE_METRICS_PORT=9102
  NOTIFIER_METRICS_PORT=9103
  ALERTMANAGER_PORT=9193  PROMETHEUS_RULES=ops/prometheus/rules.yml
  PROMETHEUS_START_TIMEOUT=\${JALYTICS_START_TIMEOUT:-60}  PROMETHEUS_STOP_TIMEOUT=30  (seconds)
  PROMETHEUS_BIN / PROMTOOL_BIN  the binaries to use (default: from PATH, else /usr/bin)
  JALYTICS_STATE_DIR=<repo>/.run  (config, data, log and pid under \$JALYTICS_STATE_DIR/prometheus)
EOF
}

# find_tools [install]: set PROMETHEUS_BIN and PROMTOOL_BIN; with "install", as root, installs
# Debian's package (it ships both) when either is missing.
find_tools() {
    PROMETHEUS_BIN="${PROMETHEUS_BIN:-$(command -v prometheus || true)}"
    PROMTOOL_BIN="${PROMTOOL_BIN:-$(command -v promtool || true)}"
    if [[ -z "$PROMETHEUS_BIN" || -z "$PROMTOOL_BIN" ]]; then
        # No recommends: the node exporter is not ours to run.
        apt_install_missing "${1:-}" prometheus --no-install-recommends
        PROMETHEUS_BIN="$(command -v prometheus || true)"
        PROMTOOL_BIN="$(command -v promtool || true)"
    fi
    [[ -x "$PROMETHEUS_BIN" ]] || die "prometheus not found (apt-get install -y prometheus)"
    [[ -x "$PROMTOOL_BIN" ]] || die "promtool not found (apt-get install -y prometheus)"
}

prom_pid() { read_pid "$PID_FILE"; }

prom_alive() { pid_alive "$(prom_pid)" "$PID_PATTERN"; }

base_url() { printf 'http://%s:%s' "$PROMETHEUS_HOST" "$PROMETHEUS_PORT"; }

# Ready = our process runs and answers /-/ready (config and rules loaded, TSDB open).
# Returns 2 when the process is gone, for wait_ready.
prom_ready() {
    prom_alive || return 2
    curl -fsS --max-time 2 "$(base_url)/-/ready" >/dev/null 2>&1 || return 1
}

# ui_page NAME: the address of the web page NAME (alerts, targets) on the running Prometheus.
# Debian's package has only the classic UI: /alerts is a 404 there and /classic/alerts works;
# an upstream build serves /alerts (and 3.x has no /classic).
ui_page() {
    local url
    for url in "$(base_url)/$1" "$(base_url)/classic/$1"; do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            printf '%s\n' "$url"
            return
        fi
    done
    printf '%s\n' "$(base_url)/$1"
}

print_env() {
    printf 'export PROMETHEUS_URL=%s\n' "$(base_url)"
    printf 'export PROMETHEUS_ALERTS_URL=%s\n' "$(ui_page alerts)"
    printf 'export PROMETHEUS_TARGETS_URL=%s\n' "$(ui_page targets)"
}

check_settings() {
    check_port "$PROMETHEUS_PORT" PROMETHEUS_PORT
    check_port "$GATEWAY_PORT" GATEWAY_PORT
    check_port "$DETECTOR_METRICS_PORT" DETECTOR_METRICS_PORT
    check_port "$BASELINE_METRICS_PORT" BASELINE_METRICS_PORT
    check_port "$NOTIFIER_METRICS_PORT" NOTIFIER_METRICS_PORT
    check_port "$ALERTMANAGER_PORT" ALERTMANAGER_PORT
    [[ "$PROMETHEUS_SCRAPE_INTERVAL" =~ ^[1-9][0-9]*(ms|s|m)$ ]] ||
        die "PROMETHEUS_SCRAPE_INTERVAL must be a duration like 5s (got '$PROMETHEUS_SCRAPE_INTERVAL')"
}

# render_config OUT: the template with every placeholder filled, checked by promtool (which
# also loads the rules), written atomically.
render_config() {
    local out="$1" content
    [[ -r "$TEMPLATE" ]] || die "missing $TEMPLATE"
    content="$(<"$TEMPLATE")"
    # Quoted replacements: bash 5.2's patsub_replacement would otherwise expand '&'.
    content="${content//"@SCRAPE_INTERVAL@"/"$PROMETHEUS_SCRAPE_INTERVAL"}"
    # A scrape may take at most the interval (Prometheus refuses a longer timeout).
    content="${content//"@SCRAPE_TIMEOUT@"/"$PROMETHEUS_SCRAPE_INTERVAL"}"
    content="${content//"@RULES_FILE@"/"$RULES"}"
    content="${content//"@GATEWAY_TARGET@"/"127.0.0.1:$GATEWAY_PORT"}"
    content="${content//"@DETECTOR_TARGET@"/"127.0.0.1:$DETECTOR_METRICS_PORT"}"
    content="${content//"@BASELINE_TARGET@"/"127.0.0.1:$BASELINE_METRICS_PORT"}"
    content="${content//"@NOTIFIER_TARGET@"/"127.0.0.1:$NOTIFIER_METRICS_PORT"}"
    content="${content//"@PROMETHEUS_PORT@"/"$PROMETHEUS_PORT"}"
    content="${content//"@ALERTMANAGER_TARGET@"/"127.0.0.1:$ALERTMANAGER_PORT"}"
    [[ "$content" != *@[A-Z_]*@* ]] || die "unfilled placeholder left in $TEMPLATE"
    mkdir -p "$(dirname "$out")"
    printf '%s\n' "$content" >"$out.tmp"
    local verdict
    if ! verdict="$("$PROMTOOL_BIN" check config "$out.tmp" 2>&1)"; then
        printf '%s\n' "$verdict" >&2
        die "promtool rejected the config rendered from $TEMPLATE (or the rules)"
    fi
    mv "$out.tmp" "$out"
}

cmd_start() {
    check_settings
    check_timeout "$PROMETHEUS_START_TIMEOUT" PROMETHEUS_START_TIMEOUT
    require_cmd curl "apt-get install -y curl"
    find_tools install
    take_lock "$PROM_STATE/.start.lock" $((PROMETHEUS_START_TIMEOUT + 300))

    if prom_alive; then
        # The ports may have changed since it started: SIGHUP reloads config and rules.
        render_config "$CONFIG"
        kill -HUP "$(prom_pid)"
        log "already running (pid $(prom_pid)) on $(base_url); config re-rendered and reloaded"
        print_env
        return 0
    fi
    if port_open "$PROMETHEUS_HOST" "$PROMETHEUS_PORT"; then
        die "port $PROMETHEUS_HOST:$PROMETHEUS_PORT is already in use by another process (set PROMETHEUS_PORT)"
    fi

    mkdir -p "$DATA_DIR"
    render_config "$CONFIG"
    launch_daemon prometheus "$PID_FILE" "$PID_PATTERN" "$LOG_FILE" \
        "$PROMETHEUS_START_TIMEOUT" "$PROMETHEUS_STOP_TIMEOUT" prom_ready \
        "$PROMETHEUS_BIN" \
        "--config.file=$CONFIG" \
        "--storage.tsdb.path=$DATA_DIR" \
        "--storage.tsdb.retention.time=$PROMETHEUS_RETENTION" \
        "--web.listen-address=$PROMETHEUS_HOST:$PROMETHEUS_PORT"
    log "listening on $(base_url)"
    print_env
}

cmd_stop() {
    check_timeout "$PROMETHEUS_STOP_TIMEOUT" PROMETHEUS_STOP_TIMEOUT
    stop_daemon prometheus "$PID_FILE" "$PID_PATTERN" "$PROMETHEUS_STOP_TIMEOUT"
}

cmd_status() {
    daemon_status prometheus "$PID_FILE" "$PID_PATTERN" prom_ready "$(base_url)" "$PROM_STATE"
}

cmd_env() {
    prom_alive || die "not running (start it with ops/prometheus.sh start)"
    print_env
}

cmd_reload() {
    check_settings
    find_tools
    prom_alive || die "not running (start it with ops/prometheus.sh start)"
    render_config "$CONFIG"
    kill -HUP "$(prom_pid)"
    log "config and rules reloaded (pid $(prom_pid))"
}

cmd_check() {
    check_settings
    find_tools install
    local scratch
    scratch="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: $scratch is local
    trap "rm -rf '$scratch'" EXIT
    "$PROMTOOL_BIN" check rules "$RULES" >&2
    render_config "$scratch/prometheus.yml"
    "$PROMTOOL_BIN" test rules "$RULES_TESTS" >&2
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        reload) cmd_reload ;;
        check) cmd_check ;;
        -h | --help | help)
            usage
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
