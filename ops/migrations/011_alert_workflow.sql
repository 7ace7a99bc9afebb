-- Alerts people can act on (issue 14): a status workflow with an append-only history,
-- suppression rules, and webhook subscriptions. The gateway owns all of it (through the API);
-- the detector reads the suppression rules to mark new alerts; the webhook notifier's own
-- role and rights come with its migration.

-- Suppression: alerts under a live rule are still stored, marked, and neither webhooked nor
-- paged. A rule names a scope (category and/or merchant, optionally a currency) and/or an
-- amount range; it never ends by deletion, only by expiry (kept for the audit trail).
CREATE TABLE suppressions (
    id              uuid PRIMARY KEY,
    category        text,
    merchant        text,
    currency        text,
    min_amount      numeric(18, 4) CHECK (min_amount > 0),
    max_amount      numeric(18, 4) CHECK (max_amount > 0),
    reason          text NOT NULL CHECK (reason <> ''),
    expires_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The `expected` alert it was made from, if any.
    source_alert_id uuid,
    -- A rule that matches everything would silence the whole system.
    CHECK (category IS NOT NULL OR merchant IS NOT NULL
           OR min_amount IS NOT NULL OR max_amount IS NOT NULL),
    CHECK (min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount)
);
CREATE INDEX suppressions_expires_idx ON suppressions (expires_at);

-- The workflow: open -> acknowledged -> resolved (with a resolution). `resolution` is set
-- exactly when the alert is resolved.
ALTER TABLE alerts
    ADD COLUMN status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    ADD COLUMN resolution text
        CHECK (resolution IN ('confirmed_fraud', 'false_positive', 'expected')),
    ADD COLUMN assignee text,
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN suppressed boolean NOT NULL DEFAULT false,
    ADD COLUMN suppression_id uuid REFERENCES suppressions (id),
    ADD CONSTRAINT alerts_resolution_when_resolved
        CHECK ((status = 'resolved') = (resolution IS NOT NULL)),
    ADD CONSTRAINT alerts_suppressed_by_a_rule
        CHECK (suppressed = (suppression_id IS NOT NULL));
ALTER TABLE suppressions
    ADD CONSTRAINT suppressions_source_alert_fk FOREIGN KEY (source_alert_id) REFERENCES alerts (id);
-- The inbox filters, newest first with the id as tie-breaker (GET /alerts, keyset paging).
-- Unresolved alerts (status=open and/or acknowledged) are the few an inbox lists, and may be
-- an old backlog behind many newer resolved ones: a partial index reads them in order, for
-- one status or several (an index on (status, created_at) gives the order for one status
-- only, and the planner walked alerts_created_idx instead: 30-60 ms at 100k alerts against
-- about 1 ms; docs/performance.md). Resolved alerts are the bulk: alerts_created_idx serves.
CREATE INDEX alerts_unresolved_created_idx ON alerts (created_at DESC, id DESC)
    WHERE status <> 'resolved';
CREATE INDEX alerts_assignee_created_idx ON alerts (assignee, created_at DESC, id DESC)
    WHERE assignee IS NOT NULL;
-- Suppressed alerts are rare: without this, ?suppressed=true reads the whole table.
CREATE INDEX alerts_suppressed_created_idx ON alerts (created_at DESC, id DESC)
    WHERE suppressed;

-- Every change to an alert, appended, never updated: who, when, what from, what to, and the
-- note that came with it. A note alone is a row with field 'note'.
CREATE TABLE alert_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   uuid NOT NULL REFERENCES alerts (id),
    changed_at timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    field      text NOT NULL CHECK (field IN ('status', 'resolution', 'assignee', 'note')),
    from_value text,
    to_value   text,
    note       text
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, id);

-- Webhook subscriptions. The secret signs deliveries (HMAC-SHA256), so the notifier must read
-- it back: it is stored as given and shown to the client once, at creation.
CREATE TABLE webhook_subscriptions (
    id           uuid PRIMARY KEY,
    url          text NOT NULL,
    min_severity text NOT NULL CHECK (min_severity IN ('medium', 'high', 'critical')),
    category     text,
    merchant     text,
    secret       text NOT NULL CHECK (length(secret) >= 16),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- DELETE /webhooks/{id} ends a subscription; the row stays for the delivery records.
    deleted_at   timestamptz
);

-- Gateway: the workflow columns of an alert, its history (append only), the suppression
-- rules (expiry is the only change), the subscriptions (deletion is the only change).
GRANT UPDATE (status, resolution, assignee, updated_at) ON alerts TO jalytics_gateway;
GRANT SELECT, INSERT ON alert_history, suppressions, webhook_subscriptions TO jalytics_gateway;
GRANT UPDATE (expires_at) ON suppressions TO jalytics_gateway;
GRANT UPDATE (deleted_at) ON webhook_subscriptions TO jalytics_gateway;
-- GET /alerts/{id} shows the baseline an alert was judged against.
GRANT SELECT ON baseline_history TO jalytics_gateway;

-- Detector: reads the rules to mark the alerts it writes, and reads back the mark of an alert
-- an earlier attempt stored, so that a replay publishes it as stored.
GRANT SELECT ON suppressions TO jalytics_detector;
GRANT SELECT (suppression_id) ON alerts TO jalytics_detector;
