-- Daily per-scope sums of the amounts that count towards baselines, maintained as
-- transactions are inserted. A recompute then reads at most window_days rows per scope,
-- whatever the size of the transactions table.
--
-- Sums of amounts are NUMERIC (exact), so the variance taken from them has no floating-point
-- cancellation; sums of ln(amount) are double precision (values of order 1-30).

CREATE TABLE baseline_rollup (
    scope_kind   text NOT NULL CHECK (scope_kind IN ('category', 'merchant')),
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    day          date NOT NULL,
    sample_count bigint NOT NULL,
    total        numeric NOT NULL,
    total_sq     numeric NOT NULL,
    log_total    double precision NOT NULL,
    log_total_sq double precision NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, day)
);
CREATE INDEX baseline_rollup_day_idx ON baseline_rollup (day);

-- Rows judged anomalous are left out, so outliers never widen the baseline they are judged
-- against. The statement-level trigger sees only rows actually inserted: a replayed
-- transaction that hits ON CONFLICT DO NOTHING is not counted twice.
CREATE FUNCTION baseline_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO baseline_rollup AS r
        (scope_kind, scope_name, currency, day, sample_count, total, total_sq, log_total,
         log_total_sq)
    SELECT kind, name, currency, day, count(*), sum(amount), sum(amount * amount),
           sum(ln(amount::double precision)), sum(ln(amount::double precision) ^ 2)
    FROM (
        SELECT 'category' AS kind, category AS name, currency, amount,
               (transaction_date AT TIME ZONE 'UTC')::date AS day
        FROM new_rows WHERE NOT anomaly
        UNION ALL
        SELECT 'merchant', merchant, currency, amount,
               (transaction_date AT TIME ZONE 'UTC')::date
        FROM new_rows WHERE NOT anomaly
    ) AS samples
    GROUP BY kind, name, currency, day
    -- A fixed order takes the row locks in the same order in every detector: no deadlocks.
    ORDER BY kind, name, currency, day
    ON CONFLICT (scope_kind, scope_name, currency, day) DO UPDATE SET
        sample_count = r.sample_count + EXCLUDED.sample_count,
        total = r.total + EXCLUDED.total,
        total_sq = r.total_sq + EXCLUDED.total_sq,
        log_total = r.log_total + EXCLUDED.log_total,
        log_total_sq = r.log_total_sq + EXCLUDED.log_total_sq;
    RETURN NULL;
END
$$;

CREATE TRIGGER transactions_baseline_rollup
    AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION baseline_rollup_add();

-- Transactions stored before this migration.
INSERT INTO baseline_rollup
    (scope_kind, scope_name, currency, day, sample_count, total, total_sq, log_total, log_total_sq)
SELECT kind, name, currency, day, count(*), sum(amount), sum(amount * amount),
       sum(ln(amount::double precision)), sum(ln(amount::double precision) ^ 2)
FROM (
    SELECT 'category' AS kind, category AS name, currency, amount,
           (transaction_date AT TIME ZONE 'UTC')::date AS day
    FROM transactions WHERE NOT anomaly
    UNION ALL
    SELECT 'merchant', merchant, currency, amount, (transaction_date AT TIME ZONE 'UTC')::date
    FROM transactions WHERE NOT anomaly
) AS samples
GROUP BY kind, name, currency, day;

ALTER TABLE baseline_history
    ADD COLUMN log_mean double precision,
    ADD COLUMN log_stddev double precision;
