-- The closed days' hours and medians are computed a few days per call, within a time budget,
-- so that a large backlog never makes the recompute outlive its database bound.
--
-- When the window moves (once a day), or late rows arrive for closed days (017), the hours
-- of each closed day whose rows changed are summed again from `transactions` (016, 018), and
-- its median from its histogram (019), all in the recompute's bounded unit of work
-- (DATABASE_TIMEOUT_SECONDS: the connection is cut past it, and the work rolled back). One
-- day is ~1/60 of a 60-day table. But a first start on a table that already holds 10 M rows
-- (an upgrade, a restore), or a backfill of a month of history, makes every closed day
-- stale at once: at 10 M rows that took 142 s on the 2-core box under load, past the
-- baseline worker's bound (120 s by default; the benchmark's pool, 30 s), so the unit was
-- cut, rolled back, and tried again at the next recompute, forever; and the work grows with
-- the table. No baseline was published
-- again: the detector kept scoring against the last ones, whatever happened since.
--
-- Now each function works through its stale days newest first and stops once it has run
-- `jalytics.closed_days_budget` (set by the baseline worker: a quarter of its bound; 5 s
-- when unset), after one day at least: the hours and the medians a budget each. The days left are still stale (their counts
-- differ from the rollup's), and `baseline_window.days_pending` makes the next recompute's
-- move carry on with them even though the window has not moved. Meanwhile the hour,
-- weekday and median levels come from the days done so far. Each day is as exact as before.

ALTER TABLE baseline_window ADD COLUMN days_pending boolean NOT NULL DEFAULT false;

-- Whether a step that started at `since` has run less than the budget. The hours and the
-- medians each have a budget of their own (the medians, cheap, must not wait a day per move
-- behind the hours); the callers check it only before a further day, so a call always does
-- one day at least.
CREATE FUNCTION baseline_closed_days_budget_left(since timestamptz) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() - since
           < coalesce(
               nullif(current_setting('jalytics.closed_days_budget', true), ''),
               '5 seconds'
             )::interval
$$;

-- 016's hours of the closed days (018 renamed it), a day at a time: a stale day's hours are
-- taken out of the window's sum, summed again from `transactions` and added back before the
-- next day, so that whatever is done when the budget runs out is whole and exact.
CREATE OR REPLACE FUNCTION baseline_hours_of_closed_days(new_first date, new_last date)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    stale date[];
    leaving date[];
    day_ date;
    started timestamptz := clock_timestamp();
BEGIN
    SELECT coalesce(array_agg(day ORDER BY day DESC), '{}') INTO stale
    FROM (
        SELECT day, sum(sample_count) AS n FROM baseline_rollup
        WHERE day >= new_first AND day <= new_last
        GROUP BY day
    ) AS kept
    FULL JOIN (
        SELECT day, sum(sample_count) AS n FROM baseline_rollup_hours
        WHERE day >= new_first AND day <= new_last
        GROUP BY day
    ) AS summed USING (day)
    WHERE kept.n IS DISTINCT FROM summed.n;
    SELECT coalesce(array_agg(DISTINCT day), '{}') INTO leaving
    FROM baseline_rollup_hours WHERE day < new_first OR day > new_last;
    PERFORM baseline_window_hours_add(leaving, -1);
    DELETE FROM baseline_rollup_hours WHERE day = ANY (leaving);
    FOREACH day_ IN ARRAY stale LOOP
        IF day_ <> stale[1] AND NOT baseline_closed_days_budget_left(started) THEN
            UPDATE baseline_window SET days_pending = true;
            EXIT;
        END IF;
        PERFORM baseline_window_hours_add(ARRAY[day_], -1);
        DELETE FROM baseline_rollup_hours WHERE day = day_;
        -- One range scan of the day's rows (transactions_date_idx); the bounds are the UTC
        -- midnights whatever the session's time zone.
        INSERT INTO baseline_rollup_hours
            (scope_kind, scope_name, currency, day, sample_count, hours, sample_counts,
             log_totals)
        SELECT kind, name, currency, day_, sum(n), array_agg(hour ORDER BY hour),
               array_agg(n ORDER BY hour), array_agg(log_total ORDER BY hour)
        FROM (
            SELECT scoped.kind, scoped.name, t.currency,
                   extract(hour FROM t.transaction_date AT TIME ZONE 'UTC')::smallint AS hour,
                   count(*) AS n, sum(ln(t.amount::double precision)) AS log_total
            FROM transactions AS t
            CROSS JOIN LATERAL (
                VALUES ('category', t.category), ('merchant', t.merchant)
            ) AS scoped (kind, name)
            WHERE t.transaction_date >= (day_::timestamp AT TIME ZONE 'UTC')
              AND t.transaction_date < ((day_ + 1)::timestamp AT TIME ZONE 'UTC')
              AND (t.severity IS NULL OR t.severity = 'medium')
            GROUP BY 1, 2, 3, 4
        ) AS hourly
        GROUP BY kind, name, currency;
        PERFORM baseline_window_hours_add(ARRAY[day_], 1);
    END LOOP;
    IF (SELECT sum(sample_count) FROM baseline_window_hour_sums)
            IS DISTINCT FROM (SELECT sum(sample_count) FROM baseline_rollup_hours) THEN
        DELETE FROM baseline_window_hour_sums;
        PERFORM baseline_window_hours_add(
            ARRAY(SELECT DISTINCT day FROM baseline_rollup_hours), 1
        );
    END IF;
    DELETE FROM baseline_window_hours;
    INSERT INTO baseline_window_hours
        (scope_kind, scope_name, currency, hours, sample_counts, log_totals)
    SELECT scope_kind, scope_name, currency, array_agg(hour ORDER BY hour),
           array_agg(sample_count ORDER BY hour), array_agg(log_total ORDER BY hour)
    FROM baseline_window_hour_sums
    GROUP BY scope_kind, scope_name, currency;
END
$$;

-- 019's medians of the closed days, a day at a time in the same budget.
CREATE OR REPLACE FUNCTION baseline_medians_of_closed_days(new_first date, new_last date)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    stale date[];
    leaving date[];
    day_ date;
    started timestamptz := clock_timestamp();
BEGIN
    SELECT coalesce(array_agg(day ORDER BY day DESC), '{}') INTO stale
    FROM (
        SELECT day, sum(sample_count) AS n FROM baseline_rollup
        WHERE day >= new_first AND day <= new_last
        GROUP BY day
    ) AS kept
    FULL JOIN (
        SELECT day, sum(sample_count) AS n FROM baseline_rollup_medians
        WHERE day >= new_first AND day <= new_last
        GROUP BY day
    ) AS computed USING (day)
    WHERE kept.n IS DISTINCT FROM computed.n;
    SELECT coalesce(array_agg(DISTINCT day), '{}') INTO leaving
    FROM baseline_rollup_medians WHERE day < new_first OR day > new_last;
    IF cardinality(stale) = 0 AND cardinality(leaving) = 0
       AND (SELECT coalesce(sum(sample_count), 0) FROM baseline_window_medians)
           = (SELECT coalesce(sum(sample_count), 0) FROM baseline_rollup_medians) THEN
        RETURN;
    END IF;
    DELETE FROM baseline_rollup_medians WHERE day = ANY (leaving);
    FOREACH day_ IN ARRAY stale LOOP
        IF day_ <> stale[1] AND NOT baseline_closed_days_budget_left(started) THEN
            UPDATE baseline_window SET days_pending = true;
            EXIT;
        END IF;
        DELETE FROM baseline_rollup_medians WHERE day = day_;
        -- Per scope, the bin where the cumulative count reaches half the day's samples, and
        -- the point within it: ln(1.02) * (bin + (n / 2 - below) / count).
        INSERT INTO baseline_rollup_medians
            (scope_kind, scope_name, currency, day, sample_count, log_median)
        SELECT scope_kind, scope_name, currency, day, n,
               ln(1.02::double precision)
               * (bin + (n::double precision / 2 - below) / sample_count)
        FROM (
            SELECT scope_kind, scope_name, currency, day, bin, sample_count,
                   sum(sample_count) OVER running - sample_count AS below,
                   sum(sample_count) OVER (PARTITION BY scope_kind, scope_name, currency)
                       AS n
            FROM baseline_rollup_bins
            WHERE day = day_ AND sample_count > 0
            WINDOW running AS (
                PARTITION BY scope_kind, scope_name, currency ORDER BY bin
                ROWS UNBOUNDED PRECEDING
            )
        ) AS cumulative
        WHERE below < n::double precision / 2
          AND below + sample_count >= n::double precision / 2;
    END LOOP;
    DELETE FROM baseline_window_medians;
    INSERT INTO baseline_window_medians
        (scope_kind, scope_name, currency, day_count, sample_count, day_total, day_sq_total,
         median_total, day_median_total, median_sq_total)
    SELECT scope_kind, scope_name, currency, count(*), sum(sample_count),
           sum(sample_count * d), sum(sample_count * d * d), sum(sample_count * log_median),
           sum(sample_count * d * log_median), sum(sample_count * log_median * log_median)
    FROM (
        SELECT scope_kind, scope_name, currency, sample_count, log_median,
               (day - DATE '2000-01-03')::bigint AS d
        FROM baseline_rollup_medians
    ) AS days
    GROUP BY scope_kind, scope_name, currency;
END
$$;

-- 019's sequence, which 015's move and 017's catch-up call by name: now it first clears the
-- flag that either step sets again if it leaves days for the next call.
CREATE OR REPLACE FUNCTION baseline_hours_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE baseline_window SET days_pending = false;
    PERFORM baseline_hours_of_closed_days(new_first, new_last);
    PERFORM baseline_weekdays_rebuild();
    PERFORM baseline_medians_of_closed_days(new_first, new_last);
END
$$;

-- 016's move, which returned at once when the window had not moved: now it also carries on
-- with days a budgeted call left. The bins are re-summed only when the window moved.
CREATE OR REPLACE FUNCTION baseline_window_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_first date;
    old_last date;
    pending boolean;
BEGIN
    SELECT first_day, last_day, days_pending INTO old_first, old_last, pending
    FROM baseline_window;
    IF old_first = new_first AND old_last = new_last AND NOT pending THEN
        RETURN;  -- the usual case: no lock taken
    END IF;
    -- Two baseline workers moving at once: the second waits, then re-sums the same days.
    SELECT first_day, last_day INTO old_first, old_last FROM baseline_window FOR UPDATE;
    IF old_first IS DISTINCT FROM new_first OR old_last IS DISTINCT FROM new_last THEN
        DELETE FROM baseline_window_bins;
        INSERT INTO baseline_window_bins (scope_kind, scope_name, currency, bin, sample_count)
        SELECT scope_kind, scope_name, currency, bin, sum(sample_count)
        FROM baseline_rollup_bins
        WHERE day >= new_first AND day <= new_last
        GROUP BY scope_kind, scope_name, currency, bin;
    END IF;
    PERFORM baseline_hours_advance(new_first, new_last);
    UPDATE baseline_window SET first_day = new_first, last_day = new_last;
END
$$;

-- As the owner with a pinned search_path (see 006 for why; CREATE OR REPLACE reset what the
-- earlier migrations set).
DO $$
DECLARE
    signature text;
BEGIN
    FOREACH signature IN ARRAY ARRAY[
        'baseline_hours_of_closed_days(date, date)',
        'baseline_medians_of_closed_days(date, date)',
        'baseline_hours_advance(date, date)',
        'baseline_window_advance(date, date)',
        'baseline_closed_days_budget_left(timestamptz)'
    ] LOOP
        EXECUTE format(
            'ALTER FUNCTION %I.%s SECURITY DEFINER SET search_path = %I, pg_temp',
            current_schema(), signature, current_schema()
        );
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_hours_of_closed_days(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_medians_of_closed_days(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_hours_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_window_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_closed_days_budget_left(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_window_advance(date, date) TO jalytics_baseline;
