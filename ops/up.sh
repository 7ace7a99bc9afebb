#!/usr/bin/env bash
# Bring up the whole system locally, no Docker: PostgreSQL, Kafka (KRaft), then the gateway,
# one detector, the baseline worker and the webhook notifier under supervisord (ops/workers.sh) with logs under
# .run/logs, and Prometheus scraping them with the alert rules loaded, its alerts routed by
# Alertmanager to the webhook at $ALERTMANAGER_WEBHOOK_URL (if set).
set -euo pipefail
JALYTICS_LOG_TAG=up
# shellcheck source=ops/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OPS="$JALYTICS_ROOT/ops"
LOGS="$JALYTICS_STATE_DIR/logs"
mkdir -p "$LOGS"

bash "$OPS/python.sh"
# DATABASE_URL: the schema owner (migrations); GATEWAY_/DETECTOR_/BASELINE_/NOTIFIER_DATABASE_URL:
# each worker's own least-privileged login. Kept as shell variables, never exported: a worker's
# environment holds only its own login (the public gateway must not hold the detector's).
eval "$(bash "$OPS/postgres.sh" start | sed 's/^export //')"
CREDENTIALS=(DATABASE_URL GATEWAY_DATABASE_URL DETECTOR_DATABASE_URL BASELINE_DATABASE_URL
    NOTIFIER_DATABASE_URL)
export -n "${CREDENTIALS[@]}" API_KEYS_SHA256 # in case the caller's environment had them
eval "$(bash "$OPS/kafka.sh" start)"
export KAFKA_BOOTSTRAP_SERVERS
export PORT="${PORT:-8000}"
DETECTOR_METRICS_PORT="${DETECTOR_METRICS_PORT:-9101}"
BASELINE_METRICS_PORT="${BASELINE_METRICS_PORT:-9102}"
NOTIFIER_METRICS_PORT="${NOTIFIER_METRICS_PORT:-9103}"

# As the owner: migrations, a check that each worker's login works, topics. The workers then
# only check that the schema is migrated (they may not change it).
(export "${CREDENTIALS[@]}" && exec "$JALYTICS_ROOT/.venv/bin/jalytics-provision") >&2

# A local API key (an admin's: every scope), made once and kept in the state dir; the gateway
# only gets its hash.
API_KEY_FILE="$JALYTICS_STATE_DIR/api-key"
if [[ ! -s "$API_KEY_FILE" ]]; then
    (umask 077 && "$JALYTICS_ROOT/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$API_KEY_FILE")
fi
API_KEY="$(first_line "$API_KEY_FILE")"
API_KEYS_SHA256="${API_KEYS_SHA256:-local:$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1):admin}"

# Under supervisord, which restarts a worker that exits. Each worker gets only its own login.
GATEWAY_DATABASE_URL="$GATEWAY_DATABASE_URL" DETECTOR_DATABASE_URL="$DETECTOR_DATABASE_URL" \
    BASELINE_DATABASE_URL="$BASELINE_DATABASE_URL" API_KEYS_SHA256="$API_KEYS_SHA256" \
    NOTIFIER_DATABASE_URL="$NOTIFIER_DATABASE_URL" NOTIFIER_METRICS_PORT="$NOTIFIER_METRICS_PORT" \
    DETECTOR_METRICS_PORT="$DETECTOR_METRICS_PORT" BASELINE_METRICS_PORT="$BASELINE_METRICS_PORT" \
    bash "$OPS/workers.sh" start

for url in "http://127.0.0.1:$PORT/health" "http://127.0.0.1:$DETECTOR_METRICS_PORT/health" \
    "http://127.0.0.1:$BASELINE_METRICS_PORT/health" "http://127.0.0.1:$NOTIFIER_METRICS_PORT/health"; do
    deadline=$((SECONDS + 90))
    until curl -fsS "$url" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "no answer from $url; see make status, make logs"
        sleep 0.5
    done
done

# Alertmanager first, so that Prometheus's first alerts have somewhere to go.
export ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9193}"
eval "$(bash "$OPS/alertmanager.sh" start)"
eval "$(GATEWAY_PORT="$PORT" DETECTOR_METRICS_PORT="$DETECTOR_METRICS_PORT" \
    BASELINE_METRICS_PORT="$BASELINE_METRICS_PORT" NOTIFIER_METRICS_PORT="$NOTIFIER_METRICS_PORT" \
    bash "$OPS/prometheus.sh" start)"

cat <<MSG
Jalytics is up.
  API                http://127.0.0.1:$PORT   (POST /transactions, GET /alerts, /webhooks, /health)
  API key            $API_KEY   (from $API_KEY_FILE; send as: Authorization: Bearer <key>)
  API description    http://127.0.0.1:$PORT/openapi.json
  metrics            http://127.0.0.1:$PORT/metrics (gateway)
                     http://127.0.0.1:$DETECTOR_METRICS_PORT/metrics (detector)
                     http://127.0.0.1:$BASELINE_METRICS_PORT/metrics (baseline worker)
                     http://127.0.0.1:$NOTIFIER_METRICS_PORT/metrics (webhook notifier)
  Prometheus         $PROMETHEUS_URL   (alerts: $PROMETHEUS_ALERTS_URL, targets: $PROMETHEUS_TARGETS_URL)
  Alertmanager       $ALERTMANAGER_URL   (webhook: ${ALERTMANAGER_WEBHOOK_URL:-none, alerts in its UI only;
                     set ALERTMANAGER_WEBHOOK_URL before make up})
  dashboards         Grafana comes with docker compose; metrics and alerts: docs/observability.md
  Kafka              $KAFKA_BOOTSTRAP_SERVERS
  PostgreSQL         $DATABASE_URL   (the owner; each worker logs in as
                     jalytics_<worker>_app: bash ops/postgres.sh env)
  workers            under supervisord, restarted when they exit: make status, make logs
  logs               $LOGS
Stop everything with: make down
MSG
