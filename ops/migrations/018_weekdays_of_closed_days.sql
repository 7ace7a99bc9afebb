-- Each scope's amounts by UTC weekday over the window's closed days, for the weekday level
-- (baseline_worker.stats.weekday_ratios; docs/accuracy.md, "Weekday levels").
--
-- Off the detector's write path, like the hours (016), and without reading `transactions` at
-- all: a closed day's rows are already summed by hour in `baseline_rollup_hours` (one row a
-- scope and day), and a day has one weekday, so a scope's weekdays are its days' sums grouped
-- by the day's weekday. They are made afresh whenever the hours of the closed days change:
-- when the window moves (once a day, 015/016) and when late rows are caught up (017). A
-- recompute reads one row a scope (`baseline_window_weekdays`), never the scope-days.

-- One row a scope: its weekdays that saw samples (0 Monday .. 6 Sunday, as Python's
-- date.weekday), ascending, with their counts, sums of ln(amount), and sums of the samples'
-- days counted from 2000-01-03 (a weekday's days are not the window's: the baseline worker
-- takes the level's trend out of each weekday at its own days, or a drift would read as a
-- weekly pattern).
CREATE TABLE baseline_window_weekdays (
    scope_kind    text NOT NULL,
    scope_name    text NOT NULL,
    currency      text NOT NULL,
    weekdays      smallint[] NOT NULL,
    sample_counts bigint[] NOT NULL,
    log_totals    double precision[] NOT NULL,
    day_totals    bigint[] NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency)
);

-- The weekdays of the closed days whose hours are stored: ~28 rows a scope read, once a day.
-- Skipped when they already hold as many samples on the same days as the hours (the sums of
-- the counts and of count x day agree): 016 re-sums a day only when its count changed, so
-- equal sums mean the same days' same rows, and a call that changed nothing (a late row
-- for an open day, a repeated move) costs one pass over the scope-days' counts.
CREATE FUNCTION baseline_weekdays_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT (coalesce(sum(sample_count), 0),
                coalesce(sum(sample_count * (day - DATE '2000-01-03')), 0))
        FROM baseline_rollup_hours)
       = (SELECT (coalesce(sum(u.n), 0), coalesce(sum(u.d), 0))
          FROM baseline_window_weekdays, unnest(sample_counts, day_totals) AS u (n, d)) THEN
        RETURN;
    END IF;
    DELETE FROM baseline_window_weekdays;
    INSERT INTO baseline_window_weekdays
        (scope_kind, scope_name, currency, weekdays, sample_counts, log_totals, day_totals)
    SELECT scope_kind, scope_name, currency, array_agg(weekday ORDER BY weekday),
           array_agg(n ORDER BY weekday), array_agg(log_total ORDER BY weekday),
           array_agg(day_total ORDER BY weekday)
    FROM (
        SELECT d.scope_kind, d.scope_name, d.currency,
               (extract(isodow FROM d.day) - 1)::smallint AS weekday,
               sum(d.sample_count) AS n, sum(day_sum.log_total) AS log_total,
               sum(d.sample_count * (d.day - DATE '2000-01-03'))::bigint AS day_total
        FROM baseline_rollup_hours AS d
        CROSS JOIN LATERAL (SELECT sum(x) AS log_total FROM unnest(d.log_totals) AS x) AS day_sum
        GROUP BY 1, 2, 3, 4
    ) AS by_weekday
    GROUP BY scope_kind, scope_name, currency;
END
$$;

-- 016's function keeps its body under another name, and `baseline_hours_advance` (which
-- 015's window move and 017's catch-up call by name) becomes: the hours, then the weekdays
-- made from them. Renaming rather than copying 016's body keeps one definition of the hours.
ALTER FUNCTION baseline_hours_advance(date, date) RENAME TO baseline_hours_of_closed_days;

CREATE FUNCTION baseline_hours_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM baseline_hours_of_closed_days(new_first, new_last);
    PERFORM baseline_weekdays_rebuild();
END
$$;

-- As the owner with a pinned search_path (see 006 for why); the rename kept the old one's.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_hours_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_weekdays_rebuild() SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_hours_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_weekdays_rebuild() FROM PUBLIC;

GRANT SELECT ON baseline_window_weekdays TO jalytics_baseline;

-- Backfill: the weekdays of the closed days already summed by hour.
SELECT baseline_weekdays_rebuild();
