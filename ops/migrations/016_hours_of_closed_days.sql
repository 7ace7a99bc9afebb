-- Each scope's amounts by UTC hour of day over the window's closed days, for the hour-of-day
-- level (baseline_worker.stats.hour_ratios; docs/accuracy.md, round 3).
--
-- Kept off the detector's write path: one more grouped upsert in the rollup trigger cost
-- +60 % per insert (docs/accuracy.md). An hour's level over 30 days moves little within a
-- day, so the baseline worker sums the hours from `transactions` once a day instead, when
-- the window moves (`baseline_window_advance`, 015): only the days that closed since (or
-- whose rows changed), one day's rows each. A recompute reads one row a scope
-- (`baseline_window_hours`), not the ~1.45 M scope-day-hours of a 30-day window.

-- One row per scope and closed day: its hours that saw rows, ascending, with their counts and
-- sums of ln(amount). `sample_count` (their total) is checked against the daily rollup to
-- find a day whose rows changed since it was summed (a late row, or a table just created).
CREATE TABLE baseline_rollup_hours (
    scope_kind    text NOT NULL,
    scope_name    text NOT NULL,
    currency      text NOT NULL,
    day           date NOT NULL,
    sample_count  bigint NOT NULL,
    hours         smallint[] NOT NULL,
    sample_counts bigint[] NOT NULL,
    log_totals    double precision[] NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, day)
);
CREATE INDEX baseline_rollup_hours_day_idx ON baseline_rollup_hours (day);

-- Their sum over the window's closed days, a row per scope and hour, kept by adding the days
-- that change and taking out those that leave: a day's move touches two days' rows, not the
-- window's.
CREATE TABLE baseline_window_hour_sums (
    scope_kind   text NOT NULL,
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    hour         smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    sample_count bigint NOT NULL,
    log_total    double precision NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, hour)
);

-- The same, one row a scope (its hours that saw samples, ascending, with their sums): what a
-- recompute reads, made afresh from the sums when the window moves.
CREATE TABLE baseline_window_hours (
    scope_kind    text NOT NULL,
    scope_name    text NOT NULL,
    currency      text NOT NULL,
    hours         smallint[] NOT NULL,
    sample_counts bigint[] NOT NULL,
    log_totals    double precision[] NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency)
);

-- Add (factor 1) or take out (factor -1) the stored hours of `days` from the window's sum.
CREATE FUNCTION baseline_window_hours_add(days date[], factor integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO baseline_window_hour_sums AS w
        (scope_kind, scope_name, currency, hour, sample_count, log_total)
    SELECT d.scope_kind, d.scope_name, d.currency, u.hour, factor * sum(u.n),
           factor * sum(u.log_total)
    FROM baseline_rollup_hours AS d,
         unnest(d.hours, d.sample_counts, d.log_totals) AS u (hour, n, log_total)
    WHERE d.day = ANY (days)
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (scope_kind, scope_name, currency, hour) DO UPDATE SET
        sample_count = w.sample_count + EXCLUDED.sample_count,
        log_total = w.log_total + EXCLUDED.log_total;
    -- An hour whose samples all left: gone, with whatever rounding its float sum kept.
    DELETE FROM baseline_window_hour_sums WHERE sample_count = 0;
$$;

-- Sum the hours of the closed days [new_first, new_last] (the days of `baseline_window_bins`).
-- Idempotent, and the backfill of an empty table: a day is (re)summed from `transactions`
-- when its count differs from the daily rollup's (never summed, or rows arrived since), a
-- day that left the range is dropped, and the window's sum follows both. Should that sum
-- ever disagree with the days' (a table emptied by hand), it is made afresh from them.
-- Then the one row a scope that a recompute reads.
-- Which rows and which day: the rollup trigger's own rules (the rows that feed baselines,
-- the UTC day of `transaction_date`), so the hours cover the same samples as the moments.
CREATE FUNCTION baseline_hours_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stale date[];
    leaving date[];
    day_ date;
BEGIN
    SELECT coalesce(array_agg(day ORDER BY day), '{}') INTO stale
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
    PERFORM baseline_window_hours_add(stale || leaving, -1);
    DELETE FROM baseline_rollup_hours WHERE day = ANY (stale || leaving);
    FOREACH day_ IN ARRAY stale LOOP
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
    END LOOP;
    PERFORM baseline_window_hours_add(stale, 1);
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

-- 015's function, and once the bins are summed, the hours of the same closed days.
CREATE OR REPLACE FUNCTION baseline_window_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_first date;
    old_last date;
BEGIN
    SELECT first_day, last_day INTO old_first, old_last FROM baseline_window;
    IF old_first = new_first AND old_last = new_last THEN
        RETURN;  -- the usual case: no lock taken
    END IF;
    -- Two baseline workers moving at once: the second waits, then re-sums the same days.
    PERFORM 1 FROM baseline_window FOR UPDATE;
    DELETE FROM baseline_window_bins;
    INSERT INTO baseline_window_bins (scope_kind, scope_name, currency, bin, sample_count)
    SELECT scope_kind, scope_name, currency, bin, sum(sample_count)
    FROM baseline_rollup_bins
    WHERE day >= new_first AND day <= new_last
    GROUP BY scope_kind, scope_name, currency, bin;
    PERFORM baseline_hours_advance(new_first, new_last);
    UPDATE baseline_window SET first_day = new_first, last_day = new_last;
END
$$;

-- Both run as the owner with a pinned search_path (see 006 for why; CREATE OR REPLACE reset
-- what 015 set). The baseline worker may read `transactions` only through them.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_window_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_hours_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_window_hours_add(date[], integer) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_window_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_hours_advance(date, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_window_hours_add(date[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_window_advance(date, date) TO jalytics_baseline;

GRANT SELECT ON baseline_window_hours TO jalytics_baseline;

-- The next recompute moves the window afresh, which fills the hours of every closed day.
UPDATE baseline_window SET first_day = NULL, last_day = NULL;
