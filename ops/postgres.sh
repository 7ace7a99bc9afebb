#!/usr/bin/env bash
# Local PostgreSQL cluster for development and CI, from the distribution's binaries. No Docker.
#
# Layout ($PG_DIR, normally $JALYTICS_STATE_DIR/postgres):
#   data/              the cluster (PGDATA; postmaster.pid lives here)
#   run/               unix socket (trust auth for the superuser 'postgres'; mode 0700)
#   log/postgres.log   server log; log/initdb.log
#
# Roles (created as the superuser, over the unix socket, on every start: an older cluster gets
# them too): 'jalytics' owns the database and applies the migrations; each worker logs in as
# its own user, a member of the NOLOGIN group role migration 006 grants on every schema:
#   jalytics_gateway_app  -> jalytics_gateway     jalytics_detector_app -> jalytics_detector
#   jalytics_baseline_app -> jalytics_baseline   jalytics_notifier_app -> jalytics_notifier
# Their passwords are random, made once and kept in $JALYTICS_STATE_DIR/secrets/ (mode 0600).
# The owner gets no CREATEROLE: on PostgreSQL 15 and older that right reaches almost as far as
# superuser (it may grant itself pg_execute_server_program), so the superuser makes the roles.
#
# As root: PostgreSQL refuses to run as root, so initdb/pg_ctl run as an unprivileged OS user:
# the owner of an existing cluster, else $JALYTICS_PG_OS_USER if set, else 'postgres' if that
# user exists, else a 'jalytics' system user created with useradd -r. That user must be able to
# reach the data dir; when it cannot (e.g. the repo is under /root, mode 0700) the cluster is put
# in /var/tmp/jalytics-pg-<hash of the state dir path> instead and $JALYTICS_STATE_DIR/postgres is
# made a symlink to it. Note that `rm -rf .run` then removes only the symlink: a later start
# reuses that /var/tmp cluster (delete it by hand for a clean slate).
set -euo pipefail

JALYTICS_LOG_TAG=postgres
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_HOST=127.0.0.1
PG_PORT="${JALYTICS_PG_PORT:-5433}"
PG_START_TIMEOUT="${JALYTICS_PG_START_TIMEOUT:-${JALYTICS_START_TIMEOUT:-90}}"
PG_STOP_TIMEOUT="${JALYTICS_PG_STOP_TIMEOUT:-30}"
PG_SUPERUSER=postgres
APP_ROLE=jalytics
APP_PASSWORD=jalytics
APP_DB=jalytics
# Worker -> its login user (the group role is the user's name without "_app").
WORKERS=(gateway detector baseline notifier)
SECRETS_DIR="$JALYTICS_STATE_DIR/secrets"

STATE_LINK="$JALYTICS_STATE_DIR/postgres"
STATE_HASH="$(printf '%s' "$JALYTICS_STATE_DIR" | sha1sum | cut -c1-12)"
FALLBACK_DIR="/var/tmp/jalytics-pg-$STATE_HASH"

# Set by resolve_paths.
PG_DIR="" PGDATA_DIR="" SOCK_DIR="" PG_LOG=""
# Set by find_pg_bin / pick_os_user.
PG_BIN="" PG_OS_USER=""

usage() {
    cat <<EOF
Usage: ops/postgres.sh COMMAND [ARGS]

Local PostgreSQL cluster on $PG_HOST, no Docker: database '$APP_DB', owner role '$APP_ROLE'
(password '$APP_PASSWORD'), and one login per worker (jalytics_<worker>_app, random password
kept in \$JALYTICS_STATE_DIR/secrets/).

Commands:
  start    initdb once, start the server in the background, wait until pg_isready answers,
           create the roles and database if missing; prints the env (idempotent)
  stop     fast shutdown (SIGINT; SIGQUIT then SIGKILL after ${PG_STOP_TIMEOUT}s); no-op when stopped
  status   exit 0 if running and accepting connections, 3 if stopped, 1 if up but not answering
  env      print 'export DATABASE_URL=...' (the owner) and GATEWAY_/DETECTOR_/BASELINE_/
           NOTIFIER_DATABASE_URL (the workers' logins) for the running server
  psql     run psql as '$APP_ROLE' on the '$APP_DB' database (extra ARGS are passed to psql)

Typical use:  eval "\$(ops/postgres.sh start)"

Environment (defaults):
  JALYTICS_PG_PORT=5433
  JALYTICS_PG_START_TIMEOUT=\${JALYTICS_START_TIMEOUT:-90}  JALYTICS_PG_STOP_TIMEOUT=30 (seconds)
  JALYTICS_PG_OS_USER  (as root only: OS user that runs the server; see the header of this file)
  JALYTICS_PG_BIN      (directory with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin)
  JALYTICS_STATE_DIR=<repo>/.run  (cluster under \$JALYTICS_STATE_DIR/postgres)
EOF
}

# --- binaries, users, paths -------------------------------------------------------------------

newest_pg_bin() {
    local d best="" best_v=-1 v
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" ]] || continue
        v="$(basename "$(dirname "$d")")"
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        if ((v > best_v)); then
            best="$d" best_v="$v"
        fi
    done
    [[ -n "$best" ]] && printf '%s\n' "$best"
    return 0
}

# find_pg_bin [install]: set PG_BIN; with "install", as root, apt-get installs PostgreSQL if absent.
find_pg_bin() {
    if [[ -n "${JALYTICS_PG_BIN:-}" ]]; then
        [[ -x "$JALYTICS_PG_BIN/pg_ctl" ]] || die "JALYTICS_PG_BIN=$JALYTICS_PG_BIN has no pg_ctl"
        PG_BIN="$JALYTICS_PG_BIN"
        return 0
    fi
    PG_BIN="$(newest_pg_bin)"
    if [[ -z "$PG_BIN" ]]; then
        apt_install_missing "${1:-}" postgresql
        PG_BIN="$(newest_pg_bin)"
    fi
    if [[ -z "$PG_BIN" ]] && command -v pg_ctl >/dev/null 2>&1; then
        PG_BIN="$(dirname "$(command -v pg_ctl)")"
    fi
    [[ -n "$PG_BIN" ]] || die "PostgreSQL server binaries not found (apt-get install -y postgresql)"
}

# pick_os_user [create]: set PG_OS_USER; with "create", may create the 'jalytics' system user.
pick_os_user() {
    if ! is_root; then
        PG_OS_USER="$(id -un)"
        return 0
    fi
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
        PG_OS_USER="$(stat -c %U "$PGDATA_DIR")"
    elif [[ -n "${JALYTICS_PG_OS_USER:-}" ]]; then
        PG_OS_USER="$JALYTICS_PG_OS_USER"
    elif id -u postgres >/dev/null 2>&1; then
        PG_OS_USER=postgres
    else
        PG_OS_USER=jalytics
    fi
    [[ "$PG_OS_USER" != root ]] || die "refusing to run PostgreSQL as root"
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        [[ "${1:-}" == create ]] || die "OS user '$PG_OS_USER' does not exist"
        log "creating system user '$PG_OS_USER' to run PostgreSQL"
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$PG_OS_USER"
    fi
}

# as_pg CMD...: run CMD as the PostgreSQL OS user (from / so the user need not reach $PWD).
as_pg() {
    if is_root; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

# resolve_paths: set PG_DIR and friends from what exists (no side effects).
resolve_paths() {
    if [[ -e "$STATE_LINK" ]]; then
        PG_DIR="$(readlink -f "$STATE_LINK")"
    else
        PG_DIR="$STATE_LINK"
    fi
    set_subpaths
}

set_subpaths() {
    PGDATA_DIR="$PG_DIR/data"
    PG_LOG="$PG_DIR/log/postgres.log"
    SOCK_DIR="$PG_DIR/run"
    # A unix socket path is limited to 107 bytes; fall back to a short directory under /tmp.
    if ((${#SOCK_DIR} + ${#PG_PORT} + 12 > 107)); then
        SOCK_DIR="/tmp/jalytics-pg-sock-$STATE_HASH"
    fi
}

# prepare_dirs: create the cluster's directories, moving to $FALLBACK_DIR if the OS user
# cannot reach $STATE_LINK (root only; see the header).
prepare_dirs() {
    if [[ ! -e "$STATE_LINK" ]]; then
        mkdir -p "$STATE_LINK"
        if is_root; then
            chown "$PG_OS_USER:" "$STATE_LINK"
            if ! as_pg test -w "$STATE_LINK" || ! as_pg test -x "$STATE_LINK"; then
                rmdir "$STATE_LINK"
                log "user '$PG_OS_USER' cannot reach $JALYTICS_STATE_DIR; using $FALLBACK_DIR"
                mkdir -p "$FALLBACK_DIR"
                ln -s "$FALLBACK_DIR" "$STATE_LINK"
            fi
        fi
        resolve_paths
    fi
    mkdir -p "$PG_DIR/log" "$SOCK_DIR"
    chmod 0700 "$PG_DIR" "$SOCK_DIR"
    if is_root; then
        chown "$PG_OS_USER:" "$PG_DIR" "$PG_DIR/log" "$SOCK_DIR"
    fi
}

# --- server state -------------------------------------------------------------------------------

postmaster_pid() { read_pid "$PGDATA_DIR/postmaster.pid"; }

server_alive() {
    local pid
    pid="$(postmaster_pid)"
    pid_alive "$pid" postgres
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres -t 2 >/dev/null 2>&1
}

# For wait_ready. STALE_PID is the pid in postmaster.pid before launch (a crashed run's), which
# the new postmaster overwrites early in its startup.
STALE_PID=""
LAUNCH_NS=0
server_ready() {
    local pid
    pid="$(postmaster_pid)"
    if [[ -z "$pid" || "$pid" == "$STALE_PID" ]]; then
        # No pid file yet: give the postmaster 15 s to write it, else it died early.
        (($(now_ns) - LAUNCH_NS < 15000000000)) && return 1
        return 2
    fi
    pid_alive "$pid" postgres || return 2
    pg_ready || return 1
}

worker_user() { printf 'jalytics_%s_app\n' "$1"; }

# worker_password WORKER: the worker's password, made on first use (hex: safe in a URL and SQL).
worker_password() {
    local file="$SECRETS_DIR/postgres-$1.password"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$SECRETS_DIR" &&
            od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$file")
    fi
    first_line "$file"
}

print_env() {
    local worker upper
    printf 'export DATABASE_URL=postgresql://%s:%s@%s:%s/%s\n' \
        "$APP_ROLE" "$APP_PASSWORD" "$PG_HOST" "$PG_PORT" "$APP_DB"
    for worker in "${WORKERS[@]}"; do
        upper="$(printf '%s' "$worker" | tr '[:lower:]' '[:upper:]')"
        printf 'export %s_DATABASE_URL=postgresql://%s:%s@%s:%s/%s\n' "$upper" \
            "$(worker_user "$worker")" "$(worker_password "$worker")" "$PG_HOST" "$PG_PORT" "$APP_DB"
    done
}

superuser_psql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

ensure_role_db() {
    superuser_psql -d postgres >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
    CREATE ROLE $APP_ROLE LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
  ELSE
    ALTER ROLE $APP_ROLE LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $APP_DB OWNER $APP_ROLE ENCODING ''UTF8'''
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$APP_DB')
\gexec
SQL
    ensure_worker_roles
    # Rights every role gets by default that no worker needs (temporary objects, large
    # objects, the maintenance databases): only the superuser may revoke all of them.
    superuser_psql -d "$APP_DB" -f "$JALYTICS_ROOT/ops/least_privilege.sql" >/dev/null
}

# ensure_worker_roles: the group roles (which migration 006 would otherwise have to create, and
# the owner may not) and each worker's login user, in its group, with its current password and
# no settings of its own. PostgreSQL lets every role change its own password and settings
# (ALTER ROLE CURRENT_USER), with no right to revoke: each start undoes what a worker did.
ensure_worker_roles() {
    local worker user sql="SET client_min_messages = warning;
"
    for worker in "${WORKERS[@]}"; do
        user="$(worker_user "$worker")"
        sql+="SELECT format('CREATE ROLE %I NOLOGIN', 'jalytics_$worker')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jalytics_$worker')
\gexec
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = '$user')
    THEN 'ALTER ROLE %I LOGIN INHERIT PASSWORD %L' ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END,
    '$user', '$(worker_password "$worker")')
\gexec
GRANT jalytics_$worker TO $user;
ALTER ROLE $user RESET ALL;
ALTER ROLE $user IN DATABASE $APP_DB RESET ALL;
"
    done
    superuser_psql -d postgres >/dev/null <<<"$sql"
}

# --- setup ------------------------------------------------------------------------------------

init_cluster() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    local locale=C
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale=C.UTF-8
    fi
    local t0
    t0="$(now_ns)"
    log "initdb $PGDATA_DIR (locale $locale, run as OS user '$PG_OS_USER')"
    if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U "$PG_SUPERUSER" \
        --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale="$locale" --no-instructions \
        >"$PG_DIR/log/initdb.log" 2>&1; then
        tail_log "$PG_DIR/log/initdb.log" 50
        die "initdb failed"
    fi
    # Settings that ops/postgres.sh owns live in jalytics.conf, rewritten on every start.
    printf "\n# Added by ops/postgres.sh\ninclude_if_exists = 'jalytics.conf'\n" \
        >>"$PGDATA_DIR/postgresql.conf"
    log "initdb done in $(elapsed_since "$t0")s"
}

write_conf() {
    local conf="$PGDATA_DIR/jalytics.conf" sock="${SOCK_DIR//\'/\'\'}"
    cat >"$conf.tmp" <<EOF
# Written by ops/postgres.sh on every start: edits here are lost.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 256MB
work_mem = 8MB
maintenance_work_mem = 128MB
effective_cache_size = 1GB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    mv "$conf.tmp" "$conf"
    if is_root; then
        chown "$PG_OS_USER:" "$conf"
    fi
}

# --- commands -----------------------------------------------------------------------------------

cmd_start() {
    check_port "$PG_PORT" JALYTICS_PG_PORT
    check_timeout "$PG_START_TIMEOUT" JALYTICS_PG_START_TIMEOUT
    take_lock "$JALYTICS_STATE_DIR/.postgres-start.lock" $((PG_START_TIMEOUT + 600))
    find_pg_bin install
    resolve_paths

    local t0
    if server_alive; then
        if ! pg_ready; then
            log "already starting (pid $(postmaster_pid)); waiting for it"
            t0="$(now_ns)"
            LAUNCH_NS="$t0"
            wait_ready postgres "$PG_START_TIMEOUT" "$PG_LOG" server_ready || exit 1
            log "postgres ready on $PG_HOST:$PG_PORT in $(elapsed_since "$t0")s"
        else
            log "already running (pid $(postmaster_pid)) on $PG_HOST:$PG_PORT"
        fi
        ensure_role_db
        print_env
        return 0
    fi

    if port_open "$PG_HOST" "$PG_PORT"; then
        die "port $PG_HOST:$PG_PORT is already in use by another process (set JALYTICS_PG_PORT)"
    fi

    pick_os_user create
    prepare_dirs
    init_cluster
    write_conf

    STALE_PID="$(postmaster_pid)"
    if [[ -n "$STALE_PID" ]]; then
        # Left by a crashed server. If that postmaster was just killed it may still be a zombie,
        # which makes the new postmaster think it is alive: wait for it to be reaped.
        log "stale postmaster.pid (pid $STALE_PID); the previous server did not shut down cleanly"
        wait_pid_reaped "$STALE_PID" 15 || warn "pid $STALE_PID still exists"
    fi
    t0="$(now_ns)"
    LAUNCH_NS="$t0"
    # pg_ctl -W returns at once, leaving the postmaster running in the background (setsid: in
    # its own session, detached from this shell); readiness is polled with pg_isready below.
    # 8>&-: the server must not inherit the start lock.
    as_pg setsid "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -W -s start >&2 8>&- ||
        die "pg_ctl start failed (log: $PG_LOG)"
    log "started postgres, waiting up to ${PG_START_TIMEOUT}s; log: $PG_LOG"
    if ! wait_ready postgres "$PG_START_TIMEOUT" "$PG_LOG" server_ready; then
        if server_alive; then
            stop_server
        fi
        exit 1
    fi
    log "postgres ready on $PG_HOST:$PG_PORT in $(elapsed_since "$t0")s"
    ensure_role_db
    print_env
}

# SIGTERM would be PostgreSQL's "smart" shutdown, which waits for every client to disconnect;
# SIGINT is the "fast" shutdown (rolls back open transactions, then a clean checkpoint: durable).
# If that does not finish in time: SIGQUIT ("immediate", crash recovery on next start), SIGKILL.
stop_server() {
    local pid t0
    pid="$(postmaster_pid)"
    pid_alive "$pid" postgres || return 0
    t0="$(now_ns)"
    log "stopping postgres (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true
    if wait_pid_exit "$pid" "$PG_STOP_TIMEOUT"; then
        log "postgres stopped in $(elapsed_since "$t0")s"
        return 0
    fi
    warn "still running after ${PG_STOP_TIMEOUT}s; immediate shutdown (SIGQUIT)"
    kill -QUIT "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 10 && return 0
    warn "still running; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 10 || die "postgres (pid $pid) survived SIGKILL"
}

cmd_stop() {
    check_timeout "$PG_STOP_TIMEOUT" JALYTICS_PG_STOP_TIMEOUT
    resolve_paths
    if ! server_alive; then
        log "not running"
        return 0
    fi
    stop_server
}

cmd_status() {
    find_pg_bin
    resolve_paths
    if ! server_alive; then
        echo "postgres: stopped"
        return 3
    fi
    if pg_ready; then
        echo "postgres: running (pid $(postmaster_pid)) on $PG_HOST:$PG_PORT, data in $PGDATA_DIR"
        return 0
    fi
    echo "postgres: process $(postmaster_pid) is up but $PG_HOST:$PG_PORT does not accept connections"
    return 1
}

cmd_env() {
    resolve_paths
    server_alive || die "not running (start it with ops/postgres.sh start)"
    [[ -s "$SECRETS_DIR/postgres-${WORKERS[0]}.password" ]] ||
        die "no worker passwords in $SECRETS_DIR (run ops/postgres.sh start)"
    print_env
}

cmd_psql() {
    find_pg_bin
    resolve_paths
    server_alive || die "not running (start it with ops/postgres.sh start)"
    export PGPASSWORD="$APP_PASSWORD"
    exec "$PG_BIN/psql" \
        -h "$PG_HOST" -p "$PG_PORT" -U "$APP_ROLE" -d "$APP_DB" "$@"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        psql) cmd_psql "$@" ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
