-- A fixed price's second price (an upgrade tier: 29.99 and 59.98) must not alert forever
-- (docs/accuracy.md, round 11).
--
-- A scope whose window holds one price only is judged by the fixed-price rule: every amount
-- well above the price is `high` and, as every high row, kept out of the baselines (no
-- poisoning). A merchant whose first charges happened to be all at its base price then never
-- learns the second price a few per cent of its customers pay: each of those charges alerts,
-- and stays out, and the scope stays "fixed". One charge above a fixed price is a jump; the
-- same amount charged again is a price. So a recompute reads the amounts kept out by the
-- fixed-price rule that recur (twice or more in the window, per scope) and counts them back
-- into the scope's window (baseline_worker.compute.RecurringPrices): a jump, a random amount,
-- almost never recurs to the cent.
--
-- Those rows are few (the fixed-price rule's high and critical rows only): a partial index
-- finds them without reading the window's transactions. The baseline worker gets them from
-- one function, as it gets everything else (it has no right on `transactions`).

CREATE INDEX transactions_kept_out_prices_idx ON transactions (transaction_date)
    WHERE rule = 'low_variance' AND severity IN ('high', 'critical');

-- Per scope and amount kept out twice or more over the window's UTC days [first_day,
-- last_day]: the rows, and the sums of their day (counted from first_day) and its square.
CREATE FUNCTION baseline_recurring_kept_prices(first_day date, last_day date)
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
    WHERE t.rule = 'low_variance' AND t.severity IN ('high', 'critical')
      AND t.transaction_date >= (first_day::timestamp AT TIME ZONE 'UTC')
      AND t.transaction_date < ((last_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY kept.scope_kind, kept.scope_name, t.currency, t.amount
    HAVING count(*) >= 2
$$;

-- Run as the owner, with a pinned search_path (see 006 for why).
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
