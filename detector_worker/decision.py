"""The detector's decision on one batch, as a pure function: raw records in; the rows to store,
the alerts, the verdicts to publish and the dead letters out. No I/O, no clock, no metrics:
the pipeline around it does those.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.records import DeadLetter, RawRecord, decode_transaction
from detector_worker.scoring import ScoringConfig, score
from schemas import Alert, Transaction, Verdict

# Alert ids derive from the transaction id, so a replay produces the same alert.
_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/alerts")


@dataclass(frozen=True)
class Scored:
    """A transaction with the verdict on it: one row of the `transactions` table."""

    transaction: Transaction
    verdict: Verdict


@dataclass(frozen=True)
class RoutedVerdict:
    """A verdict to publish, with the partition number its transaction was read from (verdicts
    are co-partitioned with `transactions`)."""

    verdict: Verdict
    source_partition: int


@dataclass(frozen=True)
class BatchDecision:
    scored: tuple[Scored, ...]
    alerts: tuple[Alert, ...]
    verdicts: tuple[RoutedVerdict, ...]
    dead_letters: tuple[DeadLetter, ...]


def alert_id(transaction_id: UUID) -> UUID:
    return uuid5(_ALERT_NAMESPACE, str(transaction_id))


def make_alert(scored: Scored) -> Alert | None:
    """The alert an anomalous verdict yields (None for a normal one)."""
    txn, verdict = scored.transaction, scored.verdict
    if not verdict.anomaly or verdict.severity is None or verdict.rule is None:
        return None
    if verdict.baseline is None or verdict.message is None:
        return None
    return Alert(
        id=alert_id(txn.id),
        transaction_id=txn.id,
        severity=verdict.severity,
        alert_message=verdict.message,
        rule=verdict.rule,
        z_score=verdict.z_score,
        baseline=verdict.baseline,
        amount=txn.amount,
        currency=txn.currency,
        category=txn.category,
        merchant=txn.merchant,
        transaction_date=txn.transaction_date,
        created_at=verdict.scored_at,
    )


def decide(
    records: Sequence[RawRecord],
    baselines: Mapping[ScopeKey, HeldBaseline],
    config: ScoringConfig,
    now: datetime,
) -> BatchDecision:
    """Decode, de-duplicate and score a batch; every record ends up scored or dead-lettered."""
    transactions: dict[UUID, tuple[Transaction, int]] = {}
    dead: list[DeadLetter] = []
    for record in records:
        result = decode_transaction(record)
        if isinstance(result, DeadLetter):
            dead.append(result)
        else:
            # A producer retry can put the same transaction twice in one batch.
            transactions.setdefault(result.id, (result, record.partition))
    scored: list[Scored] = []
    verdicts: list[RoutedVerdict] = []
    for txn, partition in transactions.values():
        verdict = score(txn, baselines, config, now)
        scored.append(Scored(txn, verdict))
        verdicts.append(RoutedVerdict(verdict, partition))
    alerts = (alert for alert in map(make_alert, scored) if alert is not None)
    return BatchDecision(tuple(scored), tuple(alerts), tuple(verdicts), tuple(dead))
