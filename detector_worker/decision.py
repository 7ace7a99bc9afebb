"""The detector's decision on one batch, as a pure function: raw records in; the rows to store
(each transaction with its verdict, to publish too), the alerts and the dead letters out. No
I/O, no clock, no metrics: the pipeline around it does those.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.records import DeadLetter, DeadLetterReason, RawRecord, decode_transaction
from detector_worker.scoring import ScoringConfig, score
from schemas import Alert, Transaction, Verdict
from schemas.transaction import TransactionFields

# Alert ids derive from the transaction id, so a replay produces the same alert.
_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/alerts")
# What makes two records with one id the same transaction: what the client stated. Not the
# receipt time, which a producer's retry may restamp. Also the stored columns compared.
BODY_FIELDS = tuple(TransactionFields.model_fields)


@dataclass(slots=True)  # not frozen: see RawRecord
class Scored:
    """A transaction with the verdict on it (one row of `transactions`, one verdict to publish,
    to the partition number of `source`: verdicts are co-partitioned with `transactions`)."""

    transaction: Transaction
    verdict: Verdict
    source: RawRecord


@dataclass(frozen=True)
class BatchDecision:
    scored: tuple[Scored, ...]
    alerts: tuple[Alert, ...]
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
        tail_probability=verdict.tail_probability,
        baseline=verdict.baseline,
        amount=txn.amount,
        currency=txn.currency,
        category=txn.category,
        merchant=txn.merchant,
        transaction_date=txn.transaction_date,
        created_at=verdict.scored_at,
    )


def same_body(a: Transaction, b: Transaction) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in BODY_FIELDS)


def decide(
    records: Sequence[RawRecord],
    baselines: Mapping[ScopeKey, HeldBaseline],
    config: ScoringConfig,
    now: datetime,
) -> BatchDecision:
    """Decode, de-duplicate and score a batch; every record ends up scored or dead-lettered."""
    transactions: dict[UUID, tuple[Transaction, RawRecord]] = {}
    dead: list[DeadLetter] = []
    for record in records:
        result = decode_transaction(record)
        if isinstance(result, Transaction) and result.id in transactions:
            # A producer retry can put the same transaction twice in one batch; another body
            # under the same id is refused.
            if not same_body(result, transactions[result.id][0]):
                dead.append(_conflict(record, result.id))
        elif isinstance(result, Transaction):
            transactions[result.id] = (result, record)
        else:
            dead.append(result)
    scored = [Scored(t, score(t, baselines, config, now), r) for t, r in transactions.values()]
    alerts = (alert for alert in map(make_alert, scored) if alert is not None)
    return BatchDecision(tuple(scored), tuple(alerts), tuple(dead))


def refuse_conflicts(decision: BatchDecision, conflicting: Collection[UUID]) -> BatchDecision:
    """The decision without the transactions whose id is stored already with another body:
    each becomes an `id_conflict` dead letter instead of a verdict (and never an alert)."""
    return refuse(decision, "id_conflict", {i: _conflict_message(i) for i in conflicting})


def refuse(
    decision: BatchDecision, reason: DeadLetterReason, errors: Mapping[UUID, str]
) -> BatchDecision:
    """The decision without the transactions named in `errors` (id -> message), none of
    which was stored: each becomes a dead letter for `reason` instead of a verdict (and
    never an alert)."""
    if not errors:
        return decision
    refused = [s for s in decision.scored if s.transaction.id in errors]
    return replace(
        decision,
        scored=tuple(s for s in decision.scored if s.transaction.id not in errors),
        alerts=tuple(a for a in decision.alerts if a.transaction_id not in errors),
        dead_letters=decision.dead_letters
        + tuple(DeadLetter(s.source, reason, errors[s.transaction.id]) for s in refused),
    )


def _conflict(record: RawRecord, transaction_id: UUID) -> DeadLetter:
    return DeadLetter(record, "id_conflict", _conflict_message(transaction_id))


def _conflict_message(transaction_id: UUID) -> str:
    return f"transaction {transaction_id} already exists with another body"


def mark_suppressed(decision: BatchDecision, suppressed: Mapping[UUID, UUID]) -> BatchDecision:
    """The decision with the alerts under a suppression rule (transaction id -> rule id)
    marked, as they were stored: published so, they are neither webhooked nor paged."""
    if not suppressed:
        return decision
    alerts = tuple(
        alert.model_copy(
            update={"suppressed": True, "suppression_id": suppressed[alert.transaction_id]}
        )
        if alert.transaction_id in suppressed
        else alert
        for alert in decision.alerts
    )
    return replace(decision, alerts=alerts)
