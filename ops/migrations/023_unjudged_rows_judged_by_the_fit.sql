-- The rows scored while no baseline existed fed the baselines without a verdict: a history
-- posted faster than the first baselines were computed (a backfill, an evaluation replayed
-- through `make up`: 113,000 rows in 30 s, the first baselines 12 s later), a new
-- category's first rows. Their spikes were never kept out, so they stay in the window and
-- hide the next ones (docs/accuracy.md, round 14). The baseline worker judges them at the
-- fit instead (baseline_worker.tail.TailFit.unjudged_rarity): it reads the window's top
-- samples that fed it unjudged, by scope, through these two functions.
--
-- The indexes are built inside the migration's transaction (not CONCURRENTLY), so they hold
-- back writes to `transactions` while they scan the table once: apply at a quiet moment on a
-- large table. They hold only the unjudged rows: a deployment's first rows, a new scope's
-- first rows, a backfill loaded before any baseline.
CREATE INDEX transactions_unjudged_idx ON transactions (transaction_date)
    INCLUDE (category, merchant, currency) WHERE baseline_id IS NULL AND severity IS NULL;
CREATE INDEX transactions_unjudged_merchant_idx ON transactions (merchant, currency, amount)
    INCLUDE (transaction_date) WHERE baseline_id IS NULL AND severity IS NULL;
CREATE INDEX transactions_unjudged_category_idx ON transactions (category, currency, amount)
    INCLUDE (transaction_date) WHERE baseline_id IS NULL AND severity IS NULL;

-- The scopes with a row of the window that fed the baselines unjudged (in a steady stream,
-- a new scope's first rows at most: a short index range).
CREATE FUNCTION baseline_unjudged_scopes(first_day date, last_day date)
RETURNS TABLE (scope_kind text, scope_name text, currency text)
LANGUAGE sql STABLE AS $$
    WITH unjudged AS (
        SELECT DISTINCT category, merchant, currency FROM transactions
        WHERE baseline_id IS NULL AND severity IS NULL
          AND transaction_date >= (first_day::timestamp AT TIME ZONE 'UTC')
          AND transaction_date < ((last_day + 1)::timestamp AT TIME ZONE 'UTC')
    )
    SELECT DISTINCT 'category', category, currency FROM unjudged
    UNION ALL
    SELECT DISTINCT 'merchant', merchant, currency FROM unjudged
$$;

-- Each scope's unjudged rows of the window at or above its floor (the lowest amount of its
-- window's top samples: baseline_worker.compute.unjudged_cutoff), by amount: one index range
-- a scope, never the scope's whole history.
CREATE FUNCTION baseline_unjudged_top(
    first_day date, last_day date,
    kinds text[], names text[], currencies text[], floors numeric[]
)
RETURNS TABLE (scope_kind text, scope_name text, currency text, amount numeric, sample_count bigint)
LANGUAGE sql STABLE AS $$
    WITH scopes AS (
        SELECT * FROM unnest(kinds, names, currencies, floors)
            AS s (kind, name, currency, floor_amount)
    ),
    bounds AS (
        SELECT (first_day::timestamp AT TIME ZONE 'UTC') AS since,
               ((last_day + 1)::timestamp AT TIME ZONE 'UTC') AS until
    )
    SELECT 'merchant', s.name, s.currency, t.amount, count(*)
    FROM scopes AS s CROSS JOIN bounds AS b
    JOIN transactions AS t
      ON t.merchant = s.name AND t.currency = s.currency AND t.amount >= s.floor_amount
    WHERE s.kind = 'merchant' AND t.baseline_id IS NULL AND t.severity IS NULL
      AND t.transaction_date >= b.since AND t.transaction_date < b.until
    GROUP BY s.name, s.currency, t.amount
    UNION ALL
    SELECT 'category', s.name, s.currency, t.amount, count(*)
    FROM scopes AS s CROSS JOIN bounds AS b
    JOIN transactions AS t
      ON t.category = s.name AND t.currency = s.currency AND t.amount >= s.floor_amount
    WHERE s.kind = 'category' AND t.baseline_id IS NULL AND t.severity IS NULL
      AND t.transaction_date >= b.since AND t.transaction_date < b.until
    GROUP BY s.name, s.currency, t.amount
$$;

-- As the owner, with a pinned search_path (see 006 for why): the baseline worker's role reads
-- no transaction itself.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_unjudged_scopes(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_unjudged_top(date, date, text[], text[], text[], numeric[]) '
        'SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_unjudged_scopes(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_unjudged_top(date, date, text[], text[], text[], numeric[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_unjudged_scopes(date, date) TO jalytics_baseline;
GRANT EXECUTE ON FUNCTION baseline_unjudged_top(date, date, text[], text[], text[], numeric[])
    TO jalytics_baseline;
