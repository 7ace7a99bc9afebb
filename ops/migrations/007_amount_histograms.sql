-- Log-spaced histograms of the amounts that feed baselines, per scope and UTC day, so that a
-- baseline can estimate how rare an amount is from the scope's own data (the `tail` method,
-- baseline_worker/tail.py) instead of assuming a shape from a mean and a deviation.
--
-- An amount x is counted in bin floor(ln x / ln 1.02): each bin spans 2 %, at any scale.
-- baseline_worker/histogram.py computes the same bin in Python. Which rows feed a baseline
-- is unchanged (005; baseline_worker/rollup.py names the rule): every row not judged high
-- or critical. tests/integration/test_baselines.py checks that the SQL and the Python agree.
CREATE TABLE baseline_rollup_bins (
    scope_kind   text NOT NULL CHECK (scope_kind IN ('category', 'merchant')),
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    day          date NOT NULL,
    bin          integer NOT NULL,
    sample_count bigint NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, day, bin)
);
CREATE INDEX baseline_rollup_bins_day_idx ON baseline_rollup_bins (day);

CREATE OR REPLACE FUNCTION baseline_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO baseline_rollup AS r
        (scope_kind, scope_name, currency, day, sample_count, total, total_sq, log_total,
         log_total_sq)
    SELECT kind, name, currency, day, count(*), sum(amount), sum(amount * amount),
           sum(ln(amount::double precision)), sum(ln(amount::double precision) ^ 2)
    FROM (
        SELECT 'category' AS kind, category AS name, currency, amount,
               (transaction_date AT TIME ZONE 'UTC')::date AS day
        FROM new_rows WHERE severity IS NULL OR severity = 'medium'
        UNION ALL
        SELECT 'merchant', merchant, currency, amount,
               (transaction_date AT TIME ZONE 'UTC')::date
        FROM new_rows WHERE severity IS NULL OR severity = 'medium'
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

    INSERT INTO baseline_rollup_bins AS h
        (scope_kind, scope_name, currency, day, bin, sample_count)
    SELECT kind, name, currency, day, bin, count(*)
    FROM (
        SELECT 'category' AS kind, category AS name, currency,
               (transaction_date AT TIME ZONE 'UTC')::date AS day,
               floor(ln(amount::double precision) / ln(1.02::double precision))::integer AS bin
        FROM new_rows WHERE severity IS NULL OR severity = 'medium'
        UNION ALL
        SELECT 'merchant', merchant, currency, (transaction_date AT TIME ZONE 'UTC')::date,
               floor(ln(amount::double precision) / ln(1.02::double precision))::integer
        FROM new_rows WHERE severity IS NULL OR severity = 'medium'
    ) AS samples
    GROUP BY kind, name, currency, day, bin
    ORDER BY kind, name, currency, day, bin
    ON CONFLICT (scope_kind, scope_name, currency, day, bin) DO UPDATE SET
        sample_count = h.sample_count + EXCLUDED.sample_count;
    RETURN NULL;
END
$$;

-- CREATE OR REPLACE reset what 006 set on the function: run it as the owner again, with a
-- pinned search_path (see 006 for why).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_rollup_add() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_rollup_add() FROM PUBLIC;

-- Transactions stored before this migration.
INSERT INTO baseline_rollup_bins (scope_kind, scope_name, currency, day, bin, sample_count)
SELECT kind, name, currency, day, bin, count(*)
FROM (
    SELECT 'category' AS kind, category AS name, currency,
           (transaction_date AT TIME ZONE 'UTC')::date AS day,
           floor(ln(amount::double precision) / ln(1.02::double precision))::integer AS bin
    FROM transactions WHERE severity IS NULL OR severity = 'medium'
    UNION ALL
    SELECT 'merchant', merchant, currency, (transaction_date AT TIME ZONE 'UTC')::date,
           floor(ln(amount::double precision) / ln(1.02::double precision))::integer
    FROM transactions WHERE severity IS NULL OR severity = 'medium'
) AS samples
GROUP BY kind, name, currency, day, bin;

-- The tail each published baseline carried (the audit trail of a `tail` verdict).
ALTER TABLE baseline_history ADD COLUMN tail jsonb;

GRANT SELECT ON baseline_rollup_bins TO jalytics_baseline;
