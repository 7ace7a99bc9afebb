"""The detector: consumes `transactions`, scores each against the latest baselines, persists
the verdicts and alerts in PostgreSQL, then publishes `alerts` and `verdicts`."""
