-- The detector may read back what a client stated about the transactions it wrote, so that
-- a record reusing a stored id with another body is refused (dead letter `id_conflict`)
-- instead of alerting on a body that was never stored (issue 13, F5). It reads every one of
-- these values on `transactions` anyway; verdict columns and receipt times stay unreadable.
GRANT SELECT (amount, currency, category, merchant, transaction_date, account_id,
              client_transaction_id)
    ON transactions TO jalytics_detector;
