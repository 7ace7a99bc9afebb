"""Alerts with a real-looking baseline, written straight into a test's schema, for the
analyst inbox's tests (the detector's own tests prove how alerts come to be)."""

import json
from typing import Any
from uuid import uuid4

# A scope's fitted upper tail (schemas.TailModel): knots, then a Pareto tail past 80.
TAIL = {
    "amounts": [45.0, 55.0, 65.0, 80.0],
    "survival": [0.3, 0.1, 0.03, 0.01],
    "threshold": 80.0,
    "exceedance": 0.01,
    "shape": 0.1,
    "scale": 12.0,
}
_BASELINE = """
INSERT INTO baseline_history (id, scope_kind, scope_name, currency, sample_count, mean, stddev,
    log_mean, log_stddev, tail, window_days, computed_at, window_end)
VALUES (%s, 'merchant', %s, 'USD', 240, 40, 12, 3.64, 0.3, %s, 30, now(), %s)
"""
# The scope's ordinary days: one transaction every 3 hours over the last 10 days.
_HISTORY = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date, anomaly,
    scored_at, baseline_id)
SELECT gen_random_uuid(), round((30 + 20 * random())::numeric, 2), 'USD', %s, %s,
       now() - make_interval(hours => 3 * n), false, now(), %s
FROM generate_series(1, 80) AS n
"""
_ALERT = """
WITH t AS (
    INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
        anomaly, severity, rule, z_score, baseline_id, scored_at)
    VALUES (gen_random_uuid(), %(amount)s, 'USD', %(category)s, %(merchant)s,
        now() - make_interval(secs => %(age)s), true, %(severity)s, 'tail', 4.1, %(baseline)s,
        now())
    RETURNING id
)
INSERT INTO alerts (id, transaction_id, severity, rule, alert_message, z_score, baseline_id,
    created_at)
SELECT gen_random_uuid(), t.id, %(severity)s, 'tail',
       'Amount is rarer than 1 in 20,000 of its scope',
       4.1, %(baseline)s, now() - make_interval(secs => %(age)s)
FROM t RETURNING id
"""


def seed_scope(
    db: Any,
    merchant: str,
    category: str,
    amounts: list[float],
    severity: str = "high",
    window_end: str | None = None,
    tail: dict[str, Any] | None = None,
) -> list[str]:
    """A merchant scope with its baseline (its upper tail `TAIL` unless given) and history,
    and one alert per amount; the alerts' ids, newest first."""
    baseline = uuid4()
    db.execute(_BASELINE, (baseline, merchant, json.dumps(tail or TAIL), window_end))
    db.execute(_HISTORY, (category, merchant, baseline))
    ids = []
    for age, amount in enumerate(amounts, start=1):
        params = {
            "amount": amount,
            "category": category,
            "merchant": merchant,
            "age": age * 60,
            "severity": severity,
            "baseline": baseline,
        }
        ids.append(str(db.execute(_ALERT, params).fetchone()[0]))
    return ids
