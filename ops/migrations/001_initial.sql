-- Jalytics schema, version 1. Amounts are NUMERIC, never floating point.

CREATE TABLE baseline_history (
    id           uuid PRIMARY KEY,
    scope_kind   text NOT NULL CHECK (scope_kind IN ('category', 'merchant')),
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    sample_count bigint NOT NULL CHECK (sample_count >= 0),
    mean         numeric NOT NULL,
    stddev       numeric NOT NULL CHECK (stddev >= 0),
    window_days  integer NOT NULL CHECK (window_days >= 1),
    computed_at  timestamptz NOT NULL
);
CREATE INDEX baseline_history_scope_idx
    ON baseline_history (scope_kind, scope_name, currency, computed_at DESC);

-- The scopes last published on the compacted topic: what a later run must tombstone.
CREATE TABLE baselines_current (
    scope_kind  text NOT NULL,
    scope_name  text NOT NULL,
    currency    text NOT NULL,
    baseline_id uuid NOT NULL REFERENCES baseline_history (id),
    PRIMARY KEY (scope_kind, scope_name, currency)
);
CREATE INDEX baselines_current_baseline_idx ON baselines_current (baseline_id);

CREATE TABLE transactions (
    id                    uuid PRIMARY KEY,
    amount                numeric(18, 4) NOT NULL CHECK (amount > 0),
    currency              text NOT NULL,
    category              text NOT NULL,
    merchant              text NOT NULL,
    transaction_date      timestamptz NOT NULL,
    received_at           timestamptz,
    account_id            text,
    client_transaction_id text,
    -- The verdict, written together with the transaction.
    anomaly               boolean NOT NULL,
    severity              text CHECK (severity IN ('medium', 'high', 'critical')),
    rule                  text,
    z_score               double precision,
    -- Which baseline scored it (audit); no foreign key: a pruned history must not stop the stream.
    baseline_id           uuid,
    scored_at             timestamptz NOT NULL,
    persisted_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_date_idx ON transactions (transaction_date);
CREATE INDEX transactions_category_date_idx ON transactions (category, currency, transaction_date);
CREATE INDEX transactions_merchant_date_idx ON transactions (merchant, currency, transaction_date);
CREATE INDEX transactions_baseline_idx ON transactions (baseline_id);

CREATE TABLE alerts (
    id             uuid PRIMARY KEY,
    transaction_id uuid NOT NULL UNIQUE REFERENCES transactions (id),
    severity       text NOT NULL CHECK (severity IN ('medium', 'high', 'critical')),
    rule           text NOT NULL,
    alert_message  text NOT NULL,
    z_score        double precision,
    baseline_id    uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Newest first, with the id as a tie-breaker for cursor pagination.
CREATE INDEX alerts_created_idx ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_baseline_idx ON alerts (baseline_id);
