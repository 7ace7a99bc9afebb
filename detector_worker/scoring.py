"""Pure scoring: (transaction, baselines, config, now) -> verdict. No I/O, no clock, no metrics."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from schemas import ScopeKind, Severity, Transaction, Verdict

# zscore: the seed's (amount - mean) / stddev. log_zscore: the same on ln(amount), which suits
# the log-normal spread of payment amounts (see docs/accuracy.md for the comparison).
Method = Literal["zscore", "log_zscore"]


@dataclass(frozen=True)
class Tiers:
    """z thresholds (inclusive) at which each severity starts."""

    medium: float
    high: float
    critical: float

    def severity(self, z: float) -> tuple[Severity, float] | None:
        """The tier z reaches and its threshold, or None below `medium`."""
        for severity, threshold in (
            ("critical", self.critical),
            ("high", self.high),
            ("medium", self.medium),
        ):
            if z >= threshold:
                return severity, threshold  # type: ignore[return-value]
        return None


@dataclass(frozen=True)
class ScoringConfig:
    tiers: Tiers = Tiers(medium=2.0, high=3.0, critical=5.0)
    strict_tiers: Tiers = Tiers(medium=1.5, high=2.5, critical=4.0)
    strict_mode: bool = False
    method: Method = "zscore"
    # A scope with fewer samples gives no verdict of its own (the seed trusted one sample).
    min_samples: int = 30
    # Below this standard deviation a scope counts as stable and the ratio rule applies.
    stable_stddev: float = 0.01
    stable_multiplier: float = 2.0
    stable_margin: float = 50.0

    @property
    def active_tiers(self) -> Tiers:
        return self.strict_tiers if self.strict_mode else self.tiers


def select_baseline(
    txn: Transaction, baselines: Mapping[ScopeKey, HeldBaseline], min_samples: int
) -> HeldBaseline | None:
    """The most specific scope with enough samples: merchant, then category, else none."""
    for kind, name in ((ScopeKind.MERCHANT, txn.merchant), (ScopeKind.CATEGORY, txn.category)):
        baseline = baselines.get((kind, name, txn.currency))
        if baseline is not None and baseline.count >= min_samples:
            return baseline
    return None


def z_score(amount: float, baseline: HeldBaseline, method: Method) -> tuple[float, Method]:
    """z of `amount` under the method, falling back to the raw z-score without log statistics."""
    log_stddev = baseline.log_stddev
    if method == "log_zscore" and baseline.log_mean is not None and log_stddev:
        return (math.log(amount) - baseline.log_mean) / log_stddev, "log_zscore"
    return (amount - baseline.mean) / baseline.stddev, "zscore"


def format_sigma(threshold: float) -> str:
    return f"{threshold:g}σ"


def score(
    txn: Transaction,
    baselines: Mapping[ScopeKey, HeldBaseline],
    config: ScoringConfig,
    now: datetime,
) -> Verdict:
    """Decide whether `txn` is anomalous against the baselines and explain why."""
    baseline = select_baseline(txn, baselines, config.min_samples)
    if baseline is None:
        return Verdict(transaction_id=txn.id, anomaly=False, scored_at=now)
    amount = float(txn.amount)
    if baseline.stddev <= config.stable_stddev:
        return _score_stable(txn.id, amount, baseline, config, now)
    z, rule = z_score(amount, baseline, config.method)
    tier = config.active_tiers.severity(z)
    if tier is None:
        return Verdict(
            transaction_id=txn.id,
            anomaly=False,
            z_score=z,
            baseline=baseline.model(),
            scored_at=now,
        )
    severity, threshold = tier
    return Verdict(
        transaction_id=txn.id,
        anomaly=True,
        severity=severity,
        rule=rule,
        z_score=z,
        message=f"Amount exceeds {format_sigma(threshold)} baseline",
        baseline=baseline.model(),
        scored_at=now,
    )


def _score_stable(
    txn_id: UUID, amount: float, baseline: HeldBaseline, config: ScoringConfig, now: datetime
) -> Verdict:
    """Seed rule for a scope that barely varies: a z-score would divide by ~0."""
    ratio_hit = amount >= config.stable_multiplier * baseline.mean
    margin_hit = amount - baseline.mean > config.stable_margin
    if not (ratio_hit and margin_hit):
        return Verdict(
            transaction_id=txn_id, anomaly=False, baseline=baseline.model(), scored_at=now
        )
    return Verdict(
        transaction_id=txn_id,
        anomaly=True,
        severity="high",
        rule="low_variance",
        message=f"Amount is more than {config.stable_multiplier:g}x stable baseline",
        baseline=baseline.model(),
        scored_at=now,
    )
