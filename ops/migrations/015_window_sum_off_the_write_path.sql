-- The window's summed histograms leave the detector's write path (issue 17).
--
-- Since 007 the rollup trigger upserted every batch's bins three times: the daily sums, the
-- daily histograms and the window's histograms (`baseline_window_bins`, under a share lock
-- on `baseline_window`). A 1,000-row insert cost 85.6 ms with it against 32.7 ms before
-- (docs/performance.md). Now the trigger keeps only the daily rows, and the window's sum
-- covers its closed days only: every day of the window but yesterday and today. The
-- baseline worker re-sums them (`baseline_window_advance`) when the window moves, once a day,
-- and adds the two open days from the daily histograms at each recompute
-- (baseline_worker/compute.py). A row more than a day late joins the window at the next day's
-- re-sum instead of at once.
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

-- Sum the closed days [new_first, new_last] afresh when they change (once a day): nothing
-- writes the sum in between, so a re-sum is exact, late rows included. An empty range
-- (a window of one or two days) leaves the sum empty.
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
    UPDATE baseline_window SET first_day = new_first, last_day = new_last;
END
$$;

-- CREATE OR REPLACE reset what 006 and 007 set on the functions: run them as the owner
-- again, with a pinned search_path (see 006 for why).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_rollup_add() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_window_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_rollup_add() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION baseline_window_advance(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_window_advance(date, date) TO jalytics_baseline;

-- The open days are read from the daily histograms at each recompute.
GRANT SELECT ON baseline_rollup_bins TO jalytics_baseline;

-- The sum held until now covered today and yesterday too: the next recompute re-sums.
UPDATE baseline_window SET first_day = NULL, last_day = NULL;
