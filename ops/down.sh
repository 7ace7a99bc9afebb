#!/usr/bin/env bash
# Stop what ops/up.sh started: the workers first (they drain), then Prometheus, Kafka and
# PostgreSQL.
set -euo pipefail
JALYTICS_LOG_TAG=down
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in gateway detector baselines; do
    pid_file="$JALYTICS_STATE_DIR/workers/$name.pid"
    pid="$(read_pid "$pid_file" || true)"
    if [[ -n "$pid" ]] && pid_alive "$pid"; then
        log "stopping $name (pid $pid)"
        terminate_pid "$pid" 30 "$name" || true
    fi
    rm -f "$pid_file"
done
bash "$JALYTICS_ROOT/ops/prometheus.sh" stop
bash "$JALYTICS_ROOT/ops/kafka.sh" stop
bash "$JALYTICS_ROOT/ops/postgres.sh" stop
