-- Rights PostgreSQL gives every role (PUBLIC) by default that no Jalytics worker needs
-- (issue 13, F13). They belong to the database or the cluster, not to a schema, so the
-- migrations (one set per schema) cannot hold them: ops/postgres.sh runs this file as the
-- superuser on every start, `jalytics-provision` as its own login, which may do less (a
-- database's owner may revoke TEMPORARY only; the rest needs a superuser). A step this login
-- may not take is skipped; `jalytics-provision` then names what is left for a DBA to run.
-- Idempotent.

-- Temporary tables, and functions in pg_temp (which the same right allows). The detector's
-- staging table is made for it by prepare_transaction_staging() (migration 008).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'TEMPORARY stays granted to PUBLIC: needs the database owner';
END
$$;

-- Large objects: any role may create them, and they outlive the session. Server-side
-- lo_import/lo_export need a superuser already; these three need no right at all.
DO $$
BEGIN
    REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea)
        FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'large object functions stay granted to PUBLIC: needs a superuser';
END
$$;

-- The maintenance databases: no worker has business there.
DO $$
BEGIN
    REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'CONNECT on postgres, template1 stays granted to PUBLIC: needs a superuser';
END
$$;
