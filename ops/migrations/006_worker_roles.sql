-- One group role per worker, with only the rights its SQL needs (issue 7). Workers log in as
-- their own user, a member of one of these NOLOGIN roles (made by ops/postgres.sh, or
-- `jalytics-provision` when given the workers' URLs); only the owner of the schema, which
-- applies these migrations, may create, alter, drop or truncate anything.
--
-- Roles belong to the cluster, grants to this schema: every schema (tests make one each)
-- grants its own. A role that exists already is reused, so a DBA may create the three
-- beforehand and the owner then needs no CREATEROLE. A table added by a later migration is
-- granted there, to the roles that need it (tests/integration/test_roles.py lists every
-- table and fails on one it does not know).
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['jalytics_gateway', 'jalytics_detector', 'jalytics_baseline']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it a moment ago
            END;
        END IF;
    END LOOP;
    EXECUTE format(
        'GRANT USAGE ON SCHEMA %I TO jalytics_gateway, jalytics_detector, jalytics_baseline',
        current_schema()
    );
END
$$;

-- Every worker checks at start-up that the schema is migrated.
GRANT SELECT ON schema_migrations TO jalytics_gateway, jalytics_detector, jalytics_baseline;

-- Gateway: reads transactions, alerts and reversals back; records reversals; keeps the
-- Idempotency-Key answers (claim, replay, store the answer, expire or release the claim).
-- It never writes a transaction or an alert: those come from the detector, through Kafka.
GRANT SELECT ON transactions, alerts TO jalytics_gateway;
GRANT SELECT, INSERT ON reversals TO jalytics_gateway;
GRANT SELECT, INSERT, DELETE, UPDATE (status, response) ON idempotency_keys TO jalytics_gateway;

-- Detector: writes transactions with their verdicts, and alerts. Naming the conflict target
-- (ON CONFLICT (id) DO NOTHING) needs SELECT on that column only: it may learn which ids
-- exist, nothing else. It reads its baselines from Kafka, not from here.
GRANT INSERT, SELECT (id) ON transactions TO jalytics_detector;
GRANT INSERT, SELECT (transaction_id) ON alerts TO jalytics_detector;

-- Baseline worker: reads the daily rollup, appends to the history, and keeps the set of
-- scopes last published (upsert, and delete the scopes it tombstoned).
GRANT SELECT ON baseline_rollup TO jalytics_baseline;
GRANT INSERT ON baseline_history TO jalytics_baseline;
GRANT SELECT, INSERT, DELETE, UPDATE (baseline_id) ON baselines_current TO jalytics_baseline;

-- The rollup trigger (002/005) runs on every insert into transactions, so by default with
-- the detector's rights; it upserts baseline_rollup, which would need INSERT, UPDATE and
-- SELECT there: a detector could then rewrite any scope's sums, and so every baseline.
-- SECURITY DEFINER instead runs this one function as the schema's owner, so the detector
-- holds no right on the rollup and can change it only by storing transactions, which
-- feed it anyway. A definer function must not resolve names through a path its caller
-- controls: search_path is pinned to this schema with pg_temp last (a temporary table
-- named baseline_rollup is never picked), and nobody may call it directly (a trigger
-- function cannot be called outside a trigger anyway; EXECUTE is revoked for clarity).
-- A later CREATE OR REPLACE of this function resets both: repeat them there.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.baseline_rollup_add() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
END
$$;
REVOKE EXECUTE ON FUNCTION baseline_rollup_add() FROM PUBLIC;
