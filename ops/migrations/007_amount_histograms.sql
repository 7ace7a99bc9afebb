-- Log-spaced histograms of the amounts that feed baselines, per scope and UTC day, so that a
-- baseline can estimate how rare an amount is from the scope's own data (the `tail` method,
-- baseline_worker/tail.py) instead of assuming a shape from a mean and a deviation.
--
-- An amount x is counted in bin floor(ln x / ln 1.02): each bin spans 2 %, at any scale.
-- baseline_worker/histogram.py computes the same bin in Python. Which rows feed a baseline
-- is unchanged (005; baseline_worker/rollup.py names the rule): every row not judged high
-- or critical. tests/integration/test_baselines.py checks that the SQL and the Python agree.
CREATE TABLE baseline_rollup_bins (
    scope_kind   text NOT NULL CHECK (scope_kind IN ('category', 'merchant')),
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    day          date NOT NULL,
    bin          integer NOT NULL,
    sample_count bigint NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, day, bin)
);
CREATE INDEX baseline_rollup_bins_day_idx ON baseline_rollup_bins (day);

-- The histograms summed over the baseline window, kept as rows arrive, so that a recompute
-- reads one histogram per scope instead of one per scope and day (1M stored transactions
-- already make ~1M daily bins; their sum took 1.9 s, this read ~0.1 s). `baseline_window`
-- holds the days the sum covers; the trigger adds a row to it when its day is among them,
-- and `baseline_window_advance` (called by the baseline worker before each recompute)
-- moves the window: it subtracts the days that left it and adds those that entered.
CREATE TABLE baseline_window (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    first_day date,
    last_day  date
);
INSERT INTO baseline_window DEFAULT VALUES;

CREATE TABLE baseline_window_bins (
    scope_kind   text NOT NULL,
    scope_name   text NOT NULL,
    currency     text NOT NULL,
    bin          integer NOT NULL,
    sample_count bigint NOT NULL,
    PRIMARY KEY (scope_kind, scope_name, currency, bin)
);

CREATE OR REPLACE FUNCTION baseline_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    window_first date;
    window_last date;
BEGIN
    -- FOR SHARE: a window that moves waits for this transaction, and this one for it, so a
    -- row is either in the days the window had when it was added, or in the days the move
    -- adds or subtracts (the move reads the daily bins after taking the lock).
    SELECT first_day, last_day INTO window_first, window_last FROM baseline_window FOR SHARE;

    -- One statement: the samples (the rows that feed baselines, once per scope) are read
    -- once and feed the daily sums, the daily histograms and the window's histograms. Each
    -- insert takes its row locks in a fixed order, the same in every detector: no deadlocks.
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
    daily_bins AS (
        INSERT INTO baseline_rollup_bins AS h
            (scope_kind, scope_name, currency, day, bin, sample_count)
        SELECT kind, name, currency, day, bin, count(*)
        FROM samples
        GROUP BY kind, name, currency, day, bin
        ORDER BY kind, name, currency, day, bin
        ON CONFLICT (scope_kind, scope_name, currency, day, bin) DO UPDATE SET
            sample_count = h.sample_count + EXCLUDED.sample_count
    )
    INSERT INTO baseline_window_bins AS w (scope_kind, scope_name, currency, bin, sample_count)
    SELECT kind, name, currency, bin, count(*)
    FROM samples
    WHERE day >= window_first AND day <= window_last  -- none before the first move
    GROUP BY kind, name, currency, bin
    ORDER BY kind, name, currency, bin
    ON CONFLICT (scope_kind, scope_name, currency, bin) DO UPDATE SET
        sample_count = w.sample_count + EXCLUDED.sample_count;
    RETURN NULL;
END
$$;

-- Move the summed window to [new_first, new_last]: once a day in practice. A window that
-- jumps past the old one, or moves back, is summed afresh.
CREATE FUNCTION baseline_window_advance(new_first date, new_last date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_first date;
    old_last date;
BEGIN
    SELECT first_day, last_day INTO old_first, old_last FROM baseline_window;
    IF old_first = new_first AND old_last = new_last THEN
        RETURN;  -- the usual case: no lock taken
    END IF;
    SELECT first_day, last_day INTO old_first, old_last FROM baseline_window FOR UPDATE;
    IF old_first IS NULL OR new_first > old_last OR new_first < old_first
            OR new_last < old_last THEN
        DELETE FROM baseline_window_bins;
        INSERT INTO baseline_window_bins (scope_kind, scope_name, currency, bin, sample_count)
        SELECT scope_kind, scope_name, currency, bin, sum(sample_count)
        FROM baseline_rollup_bins
        WHERE day >= new_first AND day <= new_last
        GROUP BY scope_kind, scope_name, currency, bin;
    ELSIF old_first <> new_first OR old_last <> new_last THEN
        INSERT INTO baseline_window_bins AS w (scope_kind, scope_name, currency, bin, sample_count)
        SELECT scope_kind, scope_name, currency, bin,
               sum(CASE WHEN day > old_last THEN sample_count ELSE -sample_count END)
        FROM baseline_rollup_bins
        WHERE (day >= old_first AND day < new_first) OR (day > old_last AND day <= new_last)
        GROUP BY scope_kind, scope_name, currency, bin
        ORDER BY scope_kind, scope_name, currency, bin
        ON CONFLICT (scope_kind, scope_name, currency, bin) DO UPDATE SET
            sample_count = w.sample_count + EXCLUDED.sample_count;
        DELETE FROM baseline_window_bins WHERE sample_count = 0;
    END IF;
    UPDATE baseline_window SET first_day = new_first, last_day = new_last;
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

-- The baseline worker moves the window through this function only, run as the owner (the
-- same pinned search_path): it may not write any histogram itself.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_window_advance(date, date) SECURITY DEFINER '
        'SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_window_advance(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION baseline_window_advance(date, date) TO jalytics_baseline;

-- Transactions stored before this migration.
INSERT INTO baseline_rollup_bins (scope_kind, scope_name, currency, day, bin, sample_count)
SELECT kind, name, currency, day, bin, count(*)
FROM (
    SELECT 'category' AS kind, category AS name, currency,
           (transaction_date AT TIME ZONE 'UTC')::date AS day,
           floor(ln(amount::double precision) / ln(1.02::double precision))::integer AS bin
    FROM transactions WHERE severity IS NULL OR severity = 'medium'
    UNION ALL
    SELECT 'merchant', merchant, currency, (transaction_date AT TIME ZONE 'UTC')::date,
           floor(ln(amount::double precision) / ln(1.02::double precision))::integer
    FROM transactions WHERE severity IS NULL OR severity = 'medium'
) AS samples
GROUP BY kind, name, currency, day, bin;

-- The tail each published baseline carried (the audit trail of a `tail` verdict).
ALTER TABLE baseline_history ADD COLUMN tail jsonb;

GRANT SELECT ON baseline_window_bins TO jalytics_baseline;
