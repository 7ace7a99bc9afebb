-- Each merchant's category, for its shape cap (baseline_worker.peers, docs/accuracy.md round
-- 19): a merchant's tail shape is capped at those of its category's other merchants, so the
-- baseline worker needs to know which merchants sell alike. The rollup keeps scopes apart
-- (a category's sums, a merchant's sums), and the transactions themselves are too many to
-- read at each recompute: the trigger keeps one row a merchant and currency, with the
-- category of its latest row that fed the baselines (in a batch, the newest by
-- transaction_date). A merchant seldom changes category, so the upsert writes nothing for
-- most rows (`WHERE ... IS DISTINCT FROM`); its row locks come in a fixed order (merchant,
-- currency), as the rollup's do.
CREATE TABLE merchant_categories (
    merchant text NOT NULL,
    currency text NOT NULL,
    category text NOT NULL,
    PRIMARY KEY (merchant, currency)
);

INSERT INTO merchant_categories (merchant, currency, category)
SELECT DISTINCT ON (merchant, currency) merchant, currency, category
FROM transactions
WHERE severity IS NULL OR severity = 'medium'
ORDER BY merchant, currency, transaction_date DESC, category;

CREATE OR REPLACE FUNCTION baseline_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One statement: the samples (the rows that feed baselines, once per scope) are read
    -- once and feed the daily sums and the daily histograms. Each insert takes its row locks
    -- in a fixed order, the same in every detector: no deadlocks.
    WITH samples AS (
        SELECT kind, name, currency, amount, day,
               floor(ln(amount::double precision) / ln(1.02::double precision))::integer AS bin
        FROM (
            SELECT 'category' AS kind, category AS name, currency, amount,
                   (transaction_date AT TIME ZONE 'UTC')::date AS day
            FROM new_rows WHERE severity IS NULL OR severity = 'medium'
            UNION ALL
            SELECT 'merchant', merchant, currency, amount,
                   (transaction_date AT TIME ZONE 'UTC')::date
            FROM new_rows WHERE severity IS NULL OR severity = 'medium'
        ) AS scoped
    ),
    daily_sums AS (
        INSERT INTO baseline_rollup AS r
            (scope_kind, scope_name, currency, day, sample_count, total, total_sq, log_total,
             log_total_sq)
        SELECT kind, name, currency, day, count(*), sum(amount), sum(amount * amount),
               sum(ln(amount::double precision)), sum(ln(amount::double precision) ^ 2)
        FROM samples
        GROUP BY kind, name, currency, day
        ORDER BY kind, name, currency, day
        ON CONFLICT (scope_kind, scope_name, currency, day) DO UPDATE SET
            sample_count = r.sample_count + EXCLUDED.sample_count,
            total = r.total + EXCLUDED.total,
            total_sq = r.total_sq + EXCLUDED.total_sq,
            log_total = r.log_total + EXCLUDED.log_total,
            log_total_sq = r.log_total_sq + EXCLUDED.log_total_sq
    ),
    categories AS (
        INSERT INTO merchant_categories AS m (merchant, currency, category)
        SELECT merchant, currency, category
        FROM (
            SELECT DISTINCT ON (merchant, currency) merchant, currency, category
            FROM new_rows
            WHERE severity IS NULL OR severity = 'medium'
            ORDER BY merchant, currency, transaction_date DESC, category
        ) AS latest
        WHERE NOT EXISTS (
            SELECT FROM merchant_categories AS known
            WHERE (known.merchant, known.currency, known.category)
                = (latest.merchant, latest.currency, latest.category)
        )
        ORDER BY merchant, currency
        ON CONFLICT (merchant, currency) DO UPDATE SET category = EXCLUDED.category
    )
    INSERT INTO baseline_rollup_bins AS h
        (scope_kind, scope_name, currency, day, bin, sample_count)
    SELECT kind, name, currency, day, bin, count(*)
    FROM samples
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

GRANT SELECT ON merchant_categories TO jalytics_baseline;
