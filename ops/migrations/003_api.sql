-- Reversals (refunds) and idempotency keys for the gateway's POST endpoints.

CREATE TABLE reversals (
    id              uuid PRIMARY KEY,
    -- One reversal per transaction: a second one, under another key, is a conflict.
    transaction_id  uuid NOT NULL UNIQUE REFERENCES transactions (id),
    reason          text,
    idempotency_key text NOT NULL,
    api_key         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The first answer to a POST carrying an Idempotency-Key, replayed to retries.
-- status NULL means the first request is still being processed.
CREATE TABLE idempotency_keys (
    api_key       text NOT NULL,
    key           text NOT NULL,
    method_path   text NOT NULL,
    request_hash  text NOT NULL,
    status        integer,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX alerts_severity_created_idx ON alerts (severity, created_at DESC, id DESC);
