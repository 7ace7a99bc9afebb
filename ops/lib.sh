# shellcheck shell=bash
# Shared helpers for the ops/*.sh service scripts. Source it; don't run it.
#
# Provides:
#   JALYTICS_ROOT       repo root (the directory that contains ops/)
#   JALYTICS_STATE_DIR  ${JALYTICS_STATE_DIR:-$JALYTICS_ROOT/.run}   (absolute)
#   JALYTICS_CACHE_DIR  ${JALYTICS_CACHE_DIR:-$JALYTICS_ROOT/.cache} (absolute)
# and small functions for logging, timing, pids and ports.
# Diagnostics go to stderr so that stdout stays clean for `eval "$(ops/x.sh start)"`.

JALYTICS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# abs_path PATH: PATH made absolute against $PWD (the path need not exist).
abs_path() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

JALYTICS_STATE_DIR="$(abs_path "${JALYTICS_STATE_DIR:-$JALYTICS_ROOT/.run}")"
JALYTICS_CACHE_DIR="$(abs_path "${JALYTICS_CACHE_DIR:-$JALYTICS_ROOT/.cache}")"
export JALYTICS_ROOT JALYTICS_STATE_DIR JALYTICS_CACHE_DIR

# Tag printed in front of every message; the sourcing script sets it.
JALYTICS_LOG_TAG="${JALYTICS_LOG_TAG:-ops}"

log() { printf '[%s] %s\n' "$JALYTICS_LOG_TAG" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$JALYTICS_LOG_TAG" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$JALYTICS_LOG_TAG" "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# apt_install_missing MODE PACKAGE [OPTION...]: with MODE "install", as root, install Debian's
# PACKAGE (the caller has found its binaries missing); otherwise do nothing.
apt_install_missing() {
    local mode=$1 package=$2
    shift 2
    [[ "$mode" == install ]] && is_root || return 0
    log "$package not found; installing Debian's '$package' package"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" "$package" >&2
}

# require_cmd CMD [HINT]: die unless CMD is on PATH.
require_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH${2:+ ($2)}"
}

# now_ns: monotonic-enough wall clock in nanoseconds (locale-independent, unlike $EPOCHREALTIME).
now_ns() { date +%s%N; }

# elapsed_since START_NS: seconds since START_NS with one decimal, e.g. "7.3".
elapsed_since() {
    local ms=$((($(now_ns) - $1) / 1000000))
    printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100))
}

# port_open HOST PORT: true if a TCP connection to HOST:PORT succeeds.
port_open() {
    # shellcheck disable=SC2016 # $0/$1 are expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# first_line FILE: print the first line of FILE (nothing if FILE is missing or unreadable).
first_line() {
    local line=""
    if [[ -r "$1" ]]; then
        IFS= read -r line <"$1" || true
    fi
    printf '%s\n' "$line"
}

# read_pid FILE: print the pid stored in FILE (nothing if missing or garbage).
read_pid() {
    local pid
    pid="$(first_line "$1")"
    if [[ "$pid" =~ ^[0-9]+$ ]]; then
        printf '%s\n' "$pid"
    fi
}

# proc_running PID: true if PID exists and is not a zombie. Services detach from the shell that
# started them, so a dead one is reaped by PID 1, which may take a while (over a second here).
# Every thread counts: a JVM's main thread can exit (and show as a zombie) while its shutdown
# hook threads still serve clients, so the leader's state alone is not enough.
proc_running() {
    local stat task
    kill -0 "$1" 2>/dev/null || return 1
    for task in /proc/"$1"/task/*/stat; do
        stat="$(cat "$task" 2>/dev/null)" || continue
        stat="${stat##*) }" # the field after "(comm)" is the state
        [[ "${stat:0:1}" != Z ]] && return 0
    done
    return 1
}

# pid_alive PID [PATTERN]: true if PID is running (and, given PATTERN, its command line contains
# PATTERN, so that a recycled pid is not mistaken for our service).
pid_alive() {
    local pid="$1" pattern="${2:-}" cmdline
    [[ -n "$pid" ]] && proc_running "$pid" || return 1
    [[ -z "$pattern" ]] && return 0
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$pattern"* ]]
}

# wait_exec PID PATTERN: a child just started with `nohup setsid CMD &` shows the shell's own
# command line until it has exec'd, and pid_alive with a PATTERN would call it dead (seen in CI:
# "prometheus exited during startup" with an empty log). Wait, up to 10 s, until its command
# line shows PATTERN or it is gone.
wait_exec() {
    local pid="$1" pattern="$2" deadline=$(($(now_ns) + 10 * 1000000000))
    while proc_running "$pid" && ! pid_alive "$pid" "$pattern"; do
        (($(now_ns) >= deadline)) && return 1
        sleep 0.05
    done
    return 0
}

# wait_pid_exit PID TIMEOUT_S: wait for PID to go away; false on timeout.
wait_pid_exit() {
    local pid="$1" deadline=$(($(now_ns) + $2 * 1000000000))
    while proc_running "$pid"; do
        (($(now_ns) >= deadline)) && return 1
        sleep 0.2
    done
    return 0
}

# wait_pid_reaped PID TIMEOUT_S: like wait_pid_exit, but also waits for a zombie to be reaped
# (a zombie's pid still "exists", e.g. for PostgreSQL's stale postmaster.pid check).
wait_pid_reaped() {
    local pid="$1" deadline=$(($(now_ns) + $2 * 1000000000))
    while kill -0 "$pid" 2>/dev/null; do
        (($(now_ns) >= deadline)) && return 1
        sleep 0.2
    done
    return 0
}

# terminate_pid PID [TIMEOUT_S] [NAME]: SIGTERM, wait up to TIMEOUT_S (default 30), then SIGKILL.
terminate_pid() {
    local pid="$1" timeout_s="${2:-30}" name="${3:-process}" t0
    t0="$(now_ns)"
    kill -TERM "$pid" 2>/dev/null || return 0
    if wait_pid_exit "$pid" "$timeout_s"; then
        log "$name (pid $pid) stopped in $(elapsed_since "$t0")s"
        return 0
    fi
    warn "$name (pid $pid) still running after ${timeout_s}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 10 || die "$name (pid $pid) survived SIGKILL"
}

# wait_ready NAME TIMEOUT_S LOGFILE CHECK_FN [ARGS...]
# Polls CHECK_FN every 0.25 s. CHECK_FN returns 0 when ready, 1 for "not yet", 2 for "gave up"
# (e.g. the process died). Returns 0 when ready (printing nothing: the caller reports the time);
# on death or timeout prints the last 50 lines of LOGFILE and returns 1.
wait_ready() {
    local name="$1" timeout_s="$2" logfile="$3" rc
    shift 3
    local deadline=$(($(now_ns) + timeout_s * 1000000000))
    while true; do
        rc=0
        "$@" || rc=$?
        case "$rc" in
            0) return 0 ;;
            2)
                log "$name exited during startup; last 50 lines of $logfile:"
                tail_log "$logfile" 50
                return 1
                ;;
        esac
        if (($(now_ns) >= deadline)); then
            log "$name not ready after ${timeout_s}s; last 50 lines of $logfile:"
            tail_log "$logfile" 50
            return 1
        fi
        sleep 0.25
    done
}

# take_lock FILE TIMEOUT_S: hold an exclusive lock on FILE (fd 8) until the script exits, so
# that concurrent `start`s of one service run one after the other. Start long-running children
# with `8>&-`, or they keep the lock after the script exits.
take_lock() {
    mkdir -p "$(dirname "$1")"
    exec 8>"$1"
    flock -w "$2" 8 || die "could not lock $1 within $2s (another start still running?)"
}

# tail_log FILE N: last N lines of FILE to stderr, indented.
tail_log() {
    if [[ -r "$1" ]]; then
        tail -n "$2" "$1" | sed 's/^/    | /' >&2
    else
        printf '    (no log file at %s)\n' "$1" >&2
    fi
}

# check_timeout VALUE NAME: die unless VALUE is a positive integer number of seconds.
check_timeout() {
    [[ "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || die "$2 must be a positive number of seconds (got '$1')"
}

# check_port VALUE NAME: die unless VALUE is a TCP port number.
check_port() {
    [[ "$1" =~ ^[0-9]+$ && "$1" -ge 1 && "$1" -le 65535 ]] || die "$2 must be a TCP port (got '$1')"
}

# launch_daemon NAME PID_FILE PATTERN LOG_FILE START_TIMEOUT STOP_TIMEOUT READY_FN CMD...
# Starts CMD in the background, detached (setsid: it outlives the calling shell; 8>&-: it does
# not inherit take_lock's lock), its pid in PID_FILE, its output in LOG_FILE (the previous one
# kept as LOG_FILE.prev), and waits until READY_FN (see wait_ready) says it is ready. On death
# or timeout: prints the log's tail, stops it and exits 1.
launch_daemon() {
    local name="$1" pid_file="$2" pattern="$3" log_file="$4" start_timeout="$5" stop_timeout="$6"
    local ready_fn="$7" t0 pid
    shift 7
    rm -f "$pid_file"
    if [[ -f "$log_file" ]]; then
        mv -f "$log_file" "$log_file.prev"
    fi
    t0="$(now_ns)"
    nohup setsid "$@" >"$log_file" 2>&1 </dev/null 8>&- &
    pid=$!
    wait_exec "$pid" "$pattern" || true
    printf '%s\n' "$pid" >"$pid_file"
    log "started (pid $pid), waiting up to ${start_timeout}s; log: $log_file"
    if ! wait_ready "$name" "$start_timeout" "$log_file" "$ready_fn"; then
        if pid_alive "$pid" "$pattern"; then
            terminate_pid "$pid" "$stop_timeout" "$name"
        fi
        rm -f "$pid_file"
        exit 1
    fi
    log "ready in $(elapsed_since "$t0")s"
}

# stop_daemon NAME PID_FILE PATTERN STOP_TIMEOUT: stop what launch_daemon started (SIGTERM,
# SIGKILL after STOP_TIMEOUT); no-op when it is not running.
stop_daemon() {
    local name="$1" pid_file="$2" pattern="$3" stop_timeout="$4" pid
    pid="$(read_pid "$pid_file")"
    if ! pid_alive "$pid" "$pattern"; then
        log "not running"
        rm -f "$pid_file"
        return 0
    fi
    log "stopping (pid $pid)"
    terminate_pid "$pid" "$stop_timeout" "$name"
    rm -f "$pid_file"
}

# daemon_status NAME PID_FILE PATTERN READY_FN URL STATE_DIR: prints the state of what
# launch_daemon started; returns 0 if running and ready, 3 if stopped, 1 if up but not ready.
daemon_status() {
    local name="$1" pid_file="$2" pattern="$3" ready_fn="$4" url="$5" state_dir="$6" pid
    pid="$(read_pid "$pid_file")"
    if ! pid_alive "$pid" "$pattern"; then
        echo "$name: stopped"
        return 3
    fi
    if "$ready_fn"; then
        echo "$name: running (pid $pid) on $url, state in $state_dir"
        return 0
    fi
    echo "$name: process $pid is up but $url/-/ready does not answer (starting?)"
    return 1
}
