-- Each scope's closed days' medians of ln(amount), for a level trend that a point mass cannot
-- flatten (baseline_worker.stats.median_trend; docs/accuracy.md, round 6).
--
-- The trend was a line through every ln(amount) by day: card checks of exactly 1.00 among
-- drifting purchases flatten it by their share. A line through each day's median follows
-- the purchases. Off the detector's write path, like the hours (016) and the weekdays (018),
-- and without reading `transactions`: a day's median comes from its histogram, already kept
-- by the rollup trigger (`baseline_rollup_bins`, 007/015), computed once for each day that
-- closed (or whose rows changed) when the window moves (once a day) or late rows are caught
-- up (017). A recompute reads one row a scope (`baseline_window_medians`): the sums a
-- weighted least-squares line through the days' medians needs, never the scope-days.

-- One row per scope and closed day: its sample count and the median of its ln(amount), the
-- samples spread evenly across their 2 % bin (baseline_worker.stats.day_log_median).
CREATE TABLE baseline_rollup_medians (
    scope_kind   text NOT NULL,
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    day          date NOT NULL,
    sample_count bigint NOT NULL,
    log_median   double precision NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, day)
);
CREATE INDEX baseline_rollup_medians_day_idx ON baseline_rollup_medians (day);

-- One row a scope: over its closed days with samples (n samples, median m, day d counted from
-- 2000-01-03 as the weekdays' are), the number of days and the sums of n, n*d, n*d^2, n*m,
-- n*d*m and n*m^2 (`baseline_worker.stats.DayMedians`; the day sums are exact integers).
CREATE TABLE baseline_window_medians (
    scope_kind       text NOT NULL,
    scope_name       text NOT NULL,
    currency         text NOT NULL,
    day_count        integer NOT NULL,
    sample_count     bigint NOT NULL,
    day_total        bigint NOT NULL,
    day_sq_total     bigint NOT NULL,
    median_total     double precision NOT NULL,
    day_median_total double precision NOT NULL,
    median_sq_total  double precision NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency)
);

-- The medians of the closed days [new_first, new_last]. Idempotent, and the backfill of an
-- empty table: a day is (re)computed from its histograms when its count differs from the
-- daily rollup's (never computed, or rows arrived since), a day that left the range is
-- dropped, and the one row a scope is made afresh when either happened (or when it holds
-- another count than the days': a table emptied by hand). A call that changed nothing (a
-- repeated move, a catch-up of rows for open days) costs one pass over the days' counts.
CREATE FUNCTION baseline_medians_of_closed_days(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stale date[];
    leaving date[];
BEGIN
    SELECT coalesce(array_agg(day ORDER BY day), '{}') INTO stale
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
    DELETE FROM baseline_rollup_medians WHERE day = ANY (stale || leaving);
    -- Per scope and day, the bin where the cumulative count reaches half the day's samples,
    -- and the point within it: ln(1.02) * (bin + (n / 2 - below) / count).
    INSERT INTO baseline_rollup_medians
        (scope_kind, scope_name, currency, day, sample_count, log_median)
    SELECT scope_kind, scope_name, currency, day, n,
           ln(1.02::double precision)
           * (bin + (n::double precision / 2 - below) / sample_count)
    FROM (
        SELECT scope_kind, scope_name, currency, day, bin, sample_count,
               sum(sample_count) OVER running - sample_count AS below,
               sum(sample_count) OVER (PARTITION BY scope_kind, scope_name, currency, day) AS n
        FROM baseline_rollup_bins
        WHERE day = ANY (stale) AND sample_count > 0
        WINDOW running AS (
            PARTITION BY scope_kind, scope_name, currency, day ORDER BY bin
            ROWS UNBOUNDED PRECEDING
        )
    ) AS cumulative
    WHERE below < n::double precision / 2 AND below + sample_count >= n::double precision / 2;
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

-- `baseline_hours_advance` (which 015's window move and 017's catch-up call by name, 018 made
-- it the hours then the weekdays) now ends with the medians of the same closed days.
CREATE OR REPLACE FUNCTION baseline_hours_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM baseline_hours_of_closed_days(new_first, new_last);
    PERFORM baseline_weekdays_rebuild();
    PERFORM baseline_medians_of_closed_days(new_first, new_last);
END
$$;

-- As the owner with a pinned search_path (see 006 for why; CREATE OR REPLACE reset what 018
-- set).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_hours_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_medians_of_closed_days(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_hours_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_medians_of_closed_days(date, date) FROM PUBLIC;

GRANT SELECT ON baseline_window_medians TO jalytics_baseline;

-- Backfill: the medians of the closed days the window holds now (none before its first move;
-- the next recompute's move computes them then).
SELECT baseline_medians_of_closed_days(first_day, last_day)
FROM baseline_window WHERE first_day IS NOT NULL AND first_day <= last_day;
