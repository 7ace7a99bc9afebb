-- The gateway writes a webhook's secret once (POST /webhooks, which shows it from the request,
-- not from the row) and never reads it back: only the notifier, which signs, may. A flaw in
-- the public-facing gateway's reads then cannot reveal any subscriber's secret.
REVOKE SELECT ON webhook_subscriptions FROM jalytics_gateway;
GRANT SELECT (id, url, min_severity, category, merchant, created_by, created_at, deleted_at)
    ON webhook_subscriptions TO jalytics_gateway;
