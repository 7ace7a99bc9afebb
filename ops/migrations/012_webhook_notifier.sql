-- The webhook notifier (issue 14): its group role, what it reads, and its dead letters.
--
-- It reads the live subscriptions (with their secrets, to sign) and records deliveries it gave
-- up on; it touches nothing else. Like 006, the role is made here if missing (a DBA may create
-- it beforehand, and the owner then needs no CREATEROLE; ops/postgres.sh makes it as the
-- superuser).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jalytics_notifier') THEN
        BEGIN
            CREATE ROLE jalytics_notifier NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it a moment ago
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role jalytics_notifier is missing and % may not create it',
                    current_user
                    USING HINT = 'as a superuser: CREATE ROLE jalytics_notifier NOLOGIN '
                        '(ops/postgres.sh start does), then migrate again';
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO jalytics_notifier', current_schema());
END
$$;

-- An event the notifier could not deliver (retries exhausted, a 4xx, a refused address):
-- what it was, where it was going, how many attempts, and the last error. One per event id
-- (alert x subscription): a replay after a crash adds nothing.
CREATE TABLE webhook_dead_letters (
    event_id        uuid PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id),
    alert_id        uuid NOT NULL,
    transaction_id  uuid NOT NULL,
    attempts        integer NOT NULL CHECK (attempts >= 0),
    last_error      text NOT NULL,
    last_status     integer,
    event           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dead_letters_subscription_idx
    ON webhook_dead_letters (subscription_id, created_at);

GRANT SELECT ON schema_migrations, webhook_subscriptions TO jalytics_notifier;
-- ON CONFLICT (event_id) DO NOTHING reads the conflict target: that column only.
GRANT INSERT, SELECT (event_id) ON webhook_dead_letters TO jalytics_notifier;
-- Operators read the dead letters through the owner's login; the gateway does not serve them.
