-- Any amount kept out of the baselines that recurs to the cent counts back in, whichever rule
-- judged it (020 counted back only the fixed-price rule's).
--
-- An independent labelled stream (docs/accuracy-blind.md) found the same trap as round 11
-- in scopes judged by their tail: a toll road's 4x vehicle class (5 % of its traffic), a
-- prepaid merchant's $100 top-up, a subscription's plans after a 10 % price rise. A scope
-- with several prices is not "fixed" (its deviation is not ~0), so its tail is fitted; the
-- top of that tail is a price, the excesses over it a few cents wide, and an amount a little
-- above it is read as extreme. Judged high, such a price was kept out, so it stayed extreme
-- at every charge: 204 of the 211 high+ false alerts over three seeds. A price charged twice
-- is a price; a spike, a random amount, almost never recurs to the cent.
--
-- Two guards against teaching the baseline a fraud that repeats one amount (a review's find):
-- the amount must recur on two UTC days at least (a burst within a day is not a price), and
-- a row whose alert an analyst resolved as `confirmed_fraud` never counts.

-- The index is built inside the migration's transaction (not CONCURRENTLY), so it holds
-- back writes to `transactions` while it scans the table once: seconds at 10 M rows; apply it
-- at a quiet moment on a large table.
DROP INDEX transactions_kept_out_prices_idx;
CREATE INDEX transactions_kept_out_idx ON transactions (transaction_date)
    WHERE severity IN ('high', 'critical');

CREATE OR REPLACE FUNCTION baseline_recurring_kept_prices(first_day date, last_day date)
RETURNS TABLE (
    scope_kind text, scope_name text, currency text, amount numeric,
    sample_count bigint, day_total bigint, day_sq_total bigint
)
LANGUAGE sql STABLE AS $$
    SELECT kept.scope_kind, kept.scope_name, t.currency, t.amount, count(*),
           sum(kept.day), sum(kept.day * kept.day)
    FROM transactions AS t
    CROSS JOIN LATERAL (
        VALUES ('category', t.category, (t.transaction_date AT TIME ZONE 'UTC')::date - first_day),
               ('merchant', t.merchant, (t.transaction_date AT TIME ZONE 'UTC')::date - first_day)
    ) AS kept (scope_kind, scope_name, day)
    WHERE t.severity IN ('high', 'critical')
      AND t.transaction_date >= (first_day::timestamp AT TIME ZONE 'UTC')
      AND t.transaction_date < ((last_day + 1)::timestamp AT TIME ZONE 'UTC')
      AND NOT EXISTS (
          SELECT 1 FROM alerts AS a
          WHERE a.transaction_id = t.id AND a.resolution = 'confirmed_fraud'
      )
    GROUP BY kept.scope_kind, kept.scope_name, t.currency, t.amount
    -- Twice or more, and not all on one day (n * sum(d^2) = sum(d)^2 exactly when they are):
    -- baseline_worker.compute.recurs_as_price.
    HAVING count(*) >= 2
       AND count(*) * sum(kept.day * kept.day) <> sum(kept.day) * sum(kept.day)
$$;

-- As the owner, with a pinned search_path (see 006 for why; CREATE OR REPLACE reset what 020
-- set).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_recurring_kept_prices(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_recurring_kept_prices(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_recurring_kept_prices(date, date) TO jalytics_baseline;
