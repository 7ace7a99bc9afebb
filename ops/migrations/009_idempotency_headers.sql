-- The headers of a kept answer that a replay repeats (the transaction id and the key to retry
-- with), so a replay says what the first answer said.
ALTER TABLE idempotency_keys ADD COLUMN headers jsonb;
GRANT UPDATE (headers) ON idempotency_keys TO jalytics_gateway;
