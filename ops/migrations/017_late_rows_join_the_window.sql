-- Rows that arrive late for a closed day join the window's histogram at the next recompute.
--
-- Since 015 the window's closed days are summed into `baseline_window_bins` once a day, when
-- the window moves. A row dated before yesterday that arrives later (a backfill of history,
-- a terminal's delayed upload) reached the daily rollup at once but the summed histogram only
-- at the next day's re-sum: until then its scope's moments counted it and its histogram did
-- not, and a history loaded in one go left every scope without a histogram, hence without a
-- tail, until midnight UTC (the detector then fell back to log_zscore).
--
-- The baseline worker now notices such scopes at each recompute (their histogram's count
-- differs from their moments' count, which it reads anyway: baseline_worker/compute.py) and
-- re-sums only those scopes' closed days here, and the hours of the closed days whose counts
-- changed (016's baseline_hours_advance). The write path does not change.
CREATE OR REPLACE FUNCTION baseline_window_resum(kinds text[], names text[], currencies text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    closed_first date;
    closed_last date;
BEGIN
    -- The same lock as baseline_window_advance: a re-sum never interleaves with a move.
    SELECT first_day, last_day INTO closed_first, closed_last FROM baseline_window FOR UPDATE;
    DELETE FROM baseline_window_bins w
    USING unnest(kinds, names, currencies) AS s (kind, name, currency)
    WHERE w.scope_kind = s.kind AND w.scope_name = s.name AND w.currency = s.currency;
    -- An empty range (a window of one or two days, or never advanced) leaves them empty.
    INSERT INTO baseline_window_bins (scope_kind, scope_name, currency, bin, sample_count)
    SELECT r.scope_kind, r.scope_name, r.currency, r.bin, sum(r.sample_count)
    FROM baseline_rollup_bins r
    JOIN unnest(kinds, names, currencies) AS s (kind, name, currency)
      ON r.scope_kind = s.kind AND r.scope_name = s.name AND r.currency = s.currency
    WHERE r.day >= closed_first AND r.day <= closed_last
    GROUP BY r.scope_kind, r.scope_name, r.currency, r.bin;
    -- The hours of day of the same closed days (016): only the days whose counts changed
    -- are read again from `transactions`.
    IF closed_first IS NOT NULL AND closed_first <= closed_last THEN
        PERFORM baseline_hours_advance(closed_first, closed_last);
    END IF;
END
$$;

-- As the owner, with a pinned search_path (see 006 for why), for the baseline worker only.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_window_resum(text[], text[], text[]) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_window_resum(text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_window_resum(text[], text[], text[]) TO jalytics_baseline;
