#!/usr/bin/env bash
# Stop what ops/up.sh started: the workers and their supervisord first (they drain), then
# Prometheus, Alertmanager, Kafka and PostgreSQL.
set -euo pipefail
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$JALYTICS_ROOT/ops/workers.sh" stop
bash "$JALYTICS_ROOT/ops/prometheus.sh" stop
bash "$JALYTICS_ROOT/ops/alertmanager.sh" stop
bash "$JALYTICS_ROOT/ops/kafka.sh" stop
bash "$JALYTICS_ROOT/ops/postgres.sh" stop
