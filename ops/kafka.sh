#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft combined mode) for development and CI. No Docker:
# the broker jars come from Maven Central through ops/kafka/pom.xml and run on the local JDK.
# The same script starts one node of a local cluster: give each node its own state dir, ports
# and KAFKA_NODE_ID, and all of them the same KAFKA_QUORUM_VOTERS and KAFKA_CLUSTER_ID.
set -euo pipefail

JALYTICS_LOG_TAG=kafka
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-3}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-$KAFKA_NODE_ID@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT}"
KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-1}"
KAFKA_MIN_INSYNC_REPLICAS="${KAFKA_MIN_INSYNC_REPLICAS:-1}"
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-${JALYTICS_START_TIMEOUT:-90}}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

OPS_DIR="$JALYTICS_ROOT/ops/kafka"
POM="$OPS_DIR/pom.xml"
TEMPLATE="$OPS_DIR/server.properties.template"
LOG4J="$OPS_DIR/log4j.properties"

LIBS_DIR="$JALYTICS_CACHE_DIR/kafka/libs"
STAMP="$LIBS_DIR/.jalytics-stamp"

KAFKA_STATE="$JALYTICS_STATE_DIR/kafka"
DATA_DIR="$KAFKA_STATE/data"
LOGS_DIR="$KAFKA_STATE/logs"
PROPS="$KAFKA_STATE/server.properties"
PID_FILE="$KAFKA_STATE/kafka.pid"
CLUSTER_ID_FILE="$KAFKA_STATE/cluster.id"
SERVER_LOG="$LOGS_DIR/server.log"
STDOUT_LOG="$LOGS_DIR/kafka.out"

# Matched against /proc/PID/cmdline so that a recycled pid is never taken for the broker.
PID_PATTERN=kafka.Kafka

usage() {
    cat <<EOF
Usage: ops/kafka.sh COMMAND

Local single-node Apache Kafka (KRaft, broker+controller) on $KAFKA_HOST, no Docker; or one
node of a local cluster (see KAFKA_NODE_ID below).

Commands:
  start    fetch the jars if needed, format storage once, start the broker in the background
           and wait until it is ready; prints the env (idempotent: already running => env only).
           On timeout prints the log's tail, stops the half-started broker and exits 1
  stop     stop the broker (SIGTERM, SIGKILL after ${KAFKA_STOP_TIMEOUT}s); no-op when not running
  status   exit 0 if running and ready, 3 if stopped, 1 if the process is up but not answering
  env      print 'export KAFKA_BOOTSTRAP_SERVERS=...' for the running broker
  fetch    only resolve the broker jars into the cache (runs Maven if the cache is incomplete)

Typical use:  eval "\$(ops/kafka.sh start)"

Environment (defaults):
  KAFKA_PORT=9092  KAFKA_CONTROLLER_PORT=9093  KAFKA_NUM_PARTITIONS=3
  KAFKA_HEAP_OPTS="-Xms256m -Xmx512m"  KAFKA_OPTS (extra JVM options, empty)
  KAFKA_START_TIMEOUT=\${JALYTICS_START_TIMEOUT:-90}  KAFKA_STOP_TIMEOUT=30  (seconds)
  KAFKA_REPLICATION_FACTOR=1  KAFKA_MIN_INSYNC_REPLICAS=1  (defaults for topics, and the
           internal topics' factor)
  One node of a cluster (each node its own JALYTICS_STATE_DIR and ports; start them all at
  once: a node is ready only when a majority of the quorum is up):
  KAFKA_NODE_ID=1  KAFKA_QUORUM_VOTERS=<id>@127.0.0.1:<controller port>,... (default: this node)
  KAFKA_CLUSTER_ID (22-character base64 id shared by the nodes; default: generated once)
  JALYTICS_STATE_DIR=<repo>/.run   (broker data, logs and pid under \$JALYTICS_STATE_DIR/kafka)
  JALYTICS_CACHE_DIR=<repo>/.cache (jars under \$JALYTICS_CACHE_DIR/kafka/libs)
EOF
}

kafka_version() {
    local v
    v="$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n 1)"
    [[ -n "$v" ]] || die "cannot read <kafka.version> from $POM"
    printf '%s\n' "$v"
}

libs_complete() {
    local stamp
    stamp="$(first_line "$STAMP")"
    [[ "$stamp" == "$(kafka_version)" ]] && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

# Resolve the broker jars into $LIBS_DIR unless a complete copy is already there. Maven copies
# into a temporary folder that replaces the cache only after success, under a lock so that two
# concurrent starts do not interleave.
fetch_libs() {
    if libs_complete; then
        return 0
    fi
    require_cmd mvn "install Maven, e.g. apt-get install -y maven"
    require_cmd java "install a JDK >= 11, e.g. apt-get install -y openjdk-17-jdk-headless"
    mkdir -p "$JALYTICS_CACHE_DIR/kafka"
    local lock="$JALYTICS_CACHE_DIR/kafka/.fetch.lock"
    exec 9>"$lock"
    flock 9
    if libs_complete; then # fetched by a concurrent run while we waited for the lock
        exec 9>&-
        return 0
    fi
    local version tmp t0
    version="$(kafka_version)"
    tmp="$JALYTICS_CACHE_DIR/kafka/libs.tmp.$$"
    rm -rf "$tmp"
    t0="$(now_ns)"
    log "resolving Kafka $version jars with Maven into $LIBS_DIR ..."
    # Maven's output goes to a file (Debian's Maven 3.8 prints stray colour codes even with -q -B)
    # and is shown only on failure.
    local mvn_log="$JALYTICS_CACHE_DIR/kafka/mvn.log"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
        rm -rf "$tmp"
        sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | tail -n 50 >&2
        die "Maven could not resolve the Kafka jars (output above, full log in $mvn_log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || {
        rm -rf "$tmp"
        die "Maven ran but $tmp has no kafka_2.13 jar"
    }
    printf '%s\n' "$version" >"$tmp/.jalytics-stamp"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    exec 9>&-
    log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $(elapsed_since "$t0")s"
}

broker_pid() { read_pid "$PID_FILE"; }

broker_alive() {
    local pid
    pid="$(broker_pid)"
    pid_alive "$pid" "$PID_PATTERN"
}

# Ready = the broker logged that it started (in this run's log) and the port accepts TCP.
# The first time that holds, the broker's pid is written to READY_FILE: server.log rotates,
# and a long-running broker must still count as ready after its start line has rotated away.
# Returns 2 when the process is gone, for wait_ready.
READY_FILE="$KAFKA_STATE/ready.pid"
broker_ready() {
    broker_alive || return 2
    if [ "$(cat "$READY_FILE" 2>/dev/null)" != "$(broker_pid)" ]; then
        grep -q 'Kafka Server started' "$SERVER_LOG" 2>/dev/null || return 1
    fi
    port_open "$KAFKA_HOST" "$KAFKA_PORT" || return 1
    broker_pid >"$READY_FILE"
}

print_env() {
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%s:%s\n' "$KAFKA_HOST" "$KAFKA_PORT"
}

render_props() {
    [[ -r "$TEMPLATE" ]] || die "missing $TEMPLATE"
    local content
    content="$(<"$TEMPLATE")"
    # Quoted replacements: bash 5.2's patsub_replacement would otherwise expand '&'.
    content="${content//"@KAFKA_PORT@"/"$KAFKA_PORT"}"
    content="${content//"@KAFKA_CONTROLLER_PORT@"/"$KAFKA_CONTROLLER_PORT"}"
    content="${content//"@KAFKA_NUM_PARTITIONS@"/"$KAFKA_NUM_PARTITIONS"}"
    content="${content//"@KAFKA_LOG_DIRS@"/"$DATA_DIR"}"
    content="${content//"@KAFKA_NODE_ID@"/"$KAFKA_NODE_ID"}"
    content="${content//"@KAFKA_QUORUM_VOTERS@"/"$KAFKA_QUORUM_VOTERS"}"
    content="${content//"@KAFKA_REPLICATION_FACTOR@"/"$KAFKA_REPLICATION_FACTOR"}"
    content="${content//"@KAFKA_MIN_INSYNC_REPLICAS@"/"$KAFKA_MIN_INSYNC_REPLICAS"}"
    [[ "$content" != *@KAFKA_* ]] || die "unfilled placeholder left in $TEMPLATE"
    printf '%s\n' "$content" >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
}

# Common JVM arguments for the broker and the storage tool.
jvm_common=()
set_jvm_common() {
    jvm_common=(
        -Djava.awt.headless=true
        "-Dlog4j.configuration=file:$LOG4J"
        "-Dkafka.logs.dir=$LOGS_DIR"
        -cp "$LIBS_DIR/*"
    )
}

# Format the KRaft storage once; the cluster id (KAFKA_CLUSTER_ID, else generated) is kept in
# $CLUSTER_ID_FILE.
format_storage() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    local cluster_id="$KAFKA_CLUSTER_ID"
    [[ -n "$cluster_id" ]] || cluster_id="$(first_line "$CLUSTER_ID_FILE")"
    if [[ -z "$cluster_id" ]]; then
        cluster_id="$(java -Xmx128m "${jvm_common[@]}" kafka.tools.StorageTool random-uuid | tail -n 1)"
        [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$cluster_id'"
    fi
    printf '%s\n' "$cluster_id" >"$CLUSTER_ID_FILE"
    log "formatting storage in $DATA_DIR (cluster id $cluster_id)"
    java -Xmx128m "${jvm_common[@]}" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$PROPS" --ignore-formatted >&2 ||
        die "kafka.tools.StorageTool format failed (log: $SERVER_LOG)"
}

check_cluster_settings() {
    [[ "$KAFKA_NODE_ID" =~ ^[0-9]+$ ]] || die "KAFKA_NODE_ID must be a number >= 0"
    local voter='[0-9]+@[^,@:]+:[0-9]+'
    [[ "$KAFKA_QUORUM_VOTERS" =~ ^$voter(,$voter)*$ ]] ||
        die "KAFKA_QUORUM_VOTERS must read id@host:port[,id@host:port...] (got '$KAFKA_QUORUM_VOTERS')"
    [[ ",$KAFKA_QUORUM_VOTERS" == *",$KAFKA_NODE_ID@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"* ]] ||
        die "KAFKA_QUORUM_VOTERS must name this node ($KAFKA_NODE_ID@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT)"
    [[ "$KAFKA_REPLICATION_FACTOR" =~ ^[1-9][0-9]*$ ]] || die "KAFKA_REPLICATION_FACTOR must be >= 1"
    [[ "$KAFKA_MIN_INSYNC_REPLICAS" =~ ^[1-9][0-9]*$ &&
        "$KAFKA_MIN_INSYNC_REPLICAS" -le "$KAFKA_REPLICATION_FACTOR" ]] ||
        die "KAFKA_MIN_INSYNC_REPLICAS must be between 1 and KAFKA_REPLICATION_FACTOR"
    [[ -z "$KAFKA_CLUSTER_ID" || "$KAFKA_CLUSTER_ID" =~ ^[A-Za-z0-9_-]{22}$ ]] ||
        die "KAFKA_CLUSTER_ID must be 22 base64url characters (kafka-storage random-uuid)"
}

cmd_fetch() {
    fetch_libs
    log "jars ready in $LIBS_DIR (Kafka $(kafka_version))"
}

cmd_start() {
    check_port "$KAFKA_PORT" KAFKA_PORT
    check_port "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
    check_timeout "$KAFKA_START_TIMEOUT" KAFKA_START_TIMEOUT
    [[ "$KAFKA_NUM_PARTITIONS" =~ ^[1-9][0-9]*$ ]] || die "KAFKA_NUM_PARTITIONS must be >= 1"
    check_cluster_settings
    require_cmd java "install a JDK >= 11, e.g. apt-get install -y openjdk-17-jdk-headless"
    # Covers a cold Maven fetch plus a full startup of a concurrent `start`.
    take_lock "$KAFKA_STATE/.start.lock" $((KAFKA_START_TIMEOUT + 600))

    local t0
    if broker_alive; then
        if broker_ready; then
            log "already running (pid $(broker_pid)) on $KAFKA_HOST:$KAFKA_PORT"
            print_env
            return 0
        fi
        # Up but not ready yet: most likely another `start` is still waiting for it.
        log "already starting (pid $(broker_pid)); waiting for it"
        t0="$(now_ns)"
        wait_ready kafka "$KAFKA_START_TIMEOUT" "$SERVER_LOG" broker_ready || exit 1
        log "kafka ready on $KAFKA_HOST:$KAFKA_PORT in $(elapsed_since "$t0")s"
        print_env
        return 0
    fi

    fetch_libs

    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$KAFKA_HOST" "$port"; then
            die "port $KAFKA_HOST:$port is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
        fi
    done

    mkdir -p "$DATA_DIR" "$LOGS_DIR"
    rm -f "$PID_FILE" "$READY_FILE"
    render_props
    set_jvm_common

    # A fresh server.log per run: readiness is read from it. The previous run's log is kept.
    if [[ -f "$SERVER_LOG" ]]; then
        mv -f "$SERVER_LOG" "$SERVER_LOG.prev"
    fi
    format_storage

    local heap=() extra=()
    read -r -a heap <<<"$KAFKA_HEAP_OPTS"
    read -r -a extra <<<"${KAFKA_OPTS:-}"

    t0="$(now_ns)"
    # setsid: own session, so the broker outlives the calling shell and its terminal.
    # 8>&-: the broker must not inherit the start lock.
    nohup setsid java "${heap[@]}" \
        -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent \
        "${jvm_common[@]}" "${extra[@]}" \
        kafka.Kafka "$PROPS" >"$STDOUT_LOG" 2>&1 </dev/null 8>&- &
    local pid=$!
    wait_exec "$pid" "$PID_PATTERN" || true
    printf '%s\n' "$pid" >"$PID_FILE"
    log "started broker (pid $pid), waiting up to ${KAFKA_START_TIMEOUT}s; log: $SERVER_LOG"

    if ! wait_ready kafka "$KAFKA_START_TIMEOUT" "$SERVER_LOG" broker_ready; then
        if [[ -s "$STDOUT_LOG" ]]; then
            log "JVM output ($STDOUT_LOG):"
            tail_log "$STDOUT_LOG" 20
        fi
        if broker_alive; then
            terminate_pid "$pid" "$KAFKA_STOP_TIMEOUT" kafka
        fi
        rm -f "$PID_FILE" "$READY_FILE"
        exit 1
    fi
    log "kafka ready on $KAFKA_HOST:$KAFKA_PORT in $(elapsed_since "$t0")s"
    print_env
}

cmd_stop() {
    check_timeout "$KAFKA_STOP_TIMEOUT" KAFKA_STOP_TIMEOUT
    local pid
    pid="$(broker_pid)"
    if ! pid_alive "$pid" "$PID_PATTERN"; then
        log "not running"
        rm -f "$PID_FILE" "$READY_FILE"
        return 0
    fi
    log "stopping broker (pid $pid)"
    terminate_pid "$pid" "$KAFKA_STOP_TIMEOUT" kafka
    rm -f "$PID_FILE" "$READY_FILE"
}

cmd_status() {
    local pid
    pid="$(broker_pid)"
    if ! pid_alive "$pid" "$PID_PATTERN"; then
        echo "kafka: stopped"
        return 3
    fi
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        echo "kafka: running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, state in $KAFKA_STATE"
        return 0
    fi
    echo "kafka: process $pid is up but $KAFKA_HOST:$KAFKA_PORT does not answer (starting?)"
    return 1
}

cmd_env() {
    broker_alive || die "not running (start it with ops/kafka.sh start)"
    print_env
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        fetch) cmd_fetch ;;
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
