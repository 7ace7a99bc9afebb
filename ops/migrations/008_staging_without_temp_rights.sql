-- Worker roles create nothing, not even temporary objects (issue 13, F13). The right to
-- create temporary tables (TEMPORARY on the database) also lets a role create functions in
-- pg_temp; it is revoked from PUBLIC for the whole database by provisioning (a database
-- right, not this schema's: ops/least_privilege.sql, run by ops/postgres.sh and
-- `jalytics-provision`).
--
-- The detector still needs one temporary table per connection: the batch is COPYed into it,
-- then moved with INSERT ... ON CONFLICT (detector_worker/store.py). This function, run as
-- the schema's owner (SECURITY DEFINER), makes that table in the caller's session and lets
-- the detector fill and read it: the detector holds no right to create anything itself.
-- The table is shaped on `transactions`, so a column added there reaches it too.
CREATE FUNCTION prepare_transaction_staging() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF to_regclass('pg_temp.incoming_transactions') IS NULL THEN
        -- ON COMMIT DELETE ROWS: each batch finds it empty, even after a rolled-back one.
        CREATE TEMPORARY TABLE incoming_transactions (LIKE transactions INCLUDING DEFAULTS)
            ON COMMIT DELETE ROWS;
        GRANT SELECT, INSERT ON pg_temp.incoming_transactions TO jalytics_detector;
    END IF;
END
$$;

-- A definer function resolves names on a path its caller cannot change (see 006).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.prepare_transaction_staging() SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION prepare_transaction_staging() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prepare_transaction_staging() TO jalytics_detector;
