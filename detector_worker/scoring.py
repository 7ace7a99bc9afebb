"""Pure scoring: (transaction, baselines, config, now) -> verdict. No I/O, no clock, no metrics."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.tail import bin_share, repricing_band, survival
from schemas import ScopeKind, Severity, Transaction, Verdict
from schemas.rarity import z_equivalent

# tail: z-equivalent of the tail probability P(amount >= x), estimated from the scope's own
# amounts without assuming their shape (docs/accuracy.md). zscore: the seed's
# (amount - mean) / stddev. log_zscore: the same on ln(amount), exact only for log-normal data.
Method = Literal["tail", "zscore", "log_zscore"]
_TIER_NAMES = ("medium", "high", "critical")


@dataclass(frozen=True)
class Tiers:
    """z thresholds (inclusive) at which each severity starts. For `tail` a z is the
    z-equivalent of a rarity: high at 3.54 means "rarer than 1 normal amount in 5,000"."""

    medium: float
    high: float
    critical: float

    def __post_init__(self) -> None:
        if not 0 < self.medium <= self.high <= self.critical:
            raise ValueError("tiers must satisfy 0 < medium <= high <= critical")

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

    @classmethod
    def parse(cls, text: str) -> "Tiers":
        """`seed`, `seed-strict`, or `medium=V,high=V,critical=V` where V is a z (`3`, `3σ`)
        or an alert budget (`1/5000`: one normal transaction in 5,000 reaches the tier)."""
        if text.strip() in PRESETS:
            return PRESETS[text.strip()]
        values = dict(_tier_value(part) for part in text.split(","))
        if sorted(values) != sorted(_TIER_NAMES):
            raise ValueError("name each of medium, high and critical once, or a preset")
        return cls(values["medium"], values["high"], values["critical"])


def _tier_value(part: str) -> tuple[str, float]:
    name, _, value = part.partition("=")
    value = value.strip().removesuffix("σ")
    if "/" in value:
        one, _, every = value.partition("/")
        if float(one) <= 0 or float(every) <= float(one):
            raise ValueError(f"budget {value!r} must be a share below 1, such as 1/5000")
        return name.strip(), z_equivalent(float(one) / float(every))
    return name.strip(), float(value)


# The seed's tiers and its strict mode (2/3/5 sigma, 1.5/2.5/4 sigma).
SEED_TIERS = Tiers(medium=2.0, high=3.0, critical=5.0)
SEED_STRICT_TIERS = Tiers(medium=1.5, high=2.5, critical=4.0)
PRESETS = {"seed": SEED_TIERS, "seed-strict": SEED_STRICT_TIERS}
# Alert budgets chosen by the accuracy benchmark (docs/accuracy.md).
DEFAULT_TIERS = Tiers.parse("medium=1/500,high=1/5000,critical=1/1000000")
DEFAULT_STRICT_TIERS = Tiers.parse("medium=1/100,high=1/1000,critical=1/100000")


@dataclass(frozen=True)
class ScoringConfig:
    """Every scoring setting with its production default, defined here only (the detector's
    settings read their defaults from this class)."""

    tiers: Tiers = DEFAULT_TIERS
    strict_tiers: Tiers = DEFAULT_STRICT_TIERS
    strict_mode: bool = False
    method: Method = "tail"
    # A scope with fewer samples gives no verdict of its own (the seed trusted one sample).
    min_samples: int = 30
    # `tail`: a merchant younger than min_samples (but with `young_merchant_samples`) has its
    # tail mixed with its category's, weighing n / (n + merchant_prior_samples).
    merchant_prior_samples: float = 10.0
    young_merchant_samples: int = 2
    # Below this standard deviation a scope counts as stable and the ratio rule applies.
    stable_stddev: float = 0.01
    stable_multiplier: float = 2.0
    stable_margin: float = 50.0
    # `tail`: above a stable price by more than this share is a change (stable_probability),
    # and changes are mostly within stable_change_scale of the price.
    stable_tolerance: float = 0.02
    stable_change_scale: float = 0.1
    # The share above a stable price that is still a repricing, at most medium: the same
    # +20 % as a price list's `top_price_reprice`. A subscription's jump by a third is not a
    # price rise a payments team waves through (docs/accuracy.md, round 17: +50 % read the
    # blind stream's 1.3-1.5x subscription jumps medium); a larger genuine rise alerts high
    # until it recurs on a second day and counts back (ops/migrations/022).
    stable_reprice: float = 0.2
    # `tail`: an amount up to this share above its scope's top price (`TailModel.top_price`)
    # is at most medium: a price list's new fare is learned within the day instead of
    # alerting high at every charge until it recurs on two days. Narrower than a fixed
    # price's: on the blind stream the jumps labelled fraud at price lists were 1.3-1.6x
    # (docs/accuracy.md, round 13).
    top_price_reprice: float = 0.2
    # `tail`: a young merchant that has charged one price n times weighs by the evidence for
    # its own model (n identical charges), not by its count alone.
    stable_merchant_evidence: bool = True
    # `tail`: a merchant with fewer than `young_merchant_samples` is judged by its category,
    # whose amounts say nothing of this merchant's level: its p is at least this (1 in 1,000
    # sits between the default medium and high), so it is never high on its category alone.
    unseen_merchant_floor: float = 1e-3
    # `tail`: a young merchant's category lends its shape at the merchant's own level: the
    # amount is read in the category's tail moved by n / (n + young_merchant_level_prior) of
    # the gap between the two log-scale means (a category's level is its busiest merchants').
    young_merchant_own_level: bool = True
    young_merchant_level_prior: float = 2.0
    # ... and only ever toward less rare: a level from a few samples is noisy (a new bar seen
    # on weekdays only), and a claim of rarity should not rest on it.
    young_merchant_level_one_sided: bool = True

    @property
    def active_tiers(self) -> Tiers:
        return self.strict_tiers if self.strict_mode else self.tiers


def select_baseline(
    txn: Transaction, baselines: Mapping[ScopeKey, HeldBaseline], min_samples: int
) -> HeldBaseline | None:
    """The most specific scope with enough samples: merchant, then category, else none."""
    return _most_specific(*_scopes_of(txn, baselines), min_samples)


def _scopes_of(
    txn: Transaction, baselines: Mapping[ScopeKey, HeldBaseline]
) -> tuple[HeldBaseline | None, HeldBaseline | None]:
    """The transaction's merchant and category baselines, as held (or None)."""
    merchant = baselines.get((ScopeKind.MERCHANT, txn.merchant, txn.currency))
    return merchant, baselines.get((ScopeKind.CATEGORY, txn.category, txn.currency))


def _most_specific(
    merchant: HeldBaseline | None, category: HeldBaseline | None, min_samples: int
) -> HeldBaseline | None:
    for baseline in (merchant, category):
        if baseline is not None and baseline.count >= min_samples:
            return baseline
    return None


def z_score(amount: float, baseline: HeldBaseline, method: Method) -> tuple[float, Method]:
    """z of `amount` under a moment method, falling back to the raw z-score without log
    statistics."""
    log_stddev = baseline.log_stddev
    if method == "log_zscore" and baseline.log_mean is not None and log_stddev:
        return (math.log(amount) - baseline.log_mean) / log_stddev, "log_zscore"
    return (amount - baseline.mean) / baseline.stddev, "zscore"


def tail_probability(
    amount: float,
    merchant: HeldBaseline | None,
    category: HeldBaseline | None,
    config: ScoringConfig,
    hour: int | None = None,
    day: int | None = None,
) -> tuple[float, HeldBaseline] | None:
    """P(amount >= x) and the baseline that weighs most in it, or None without a tail.

    A merchant with `min_samples` has a verdict of its own. A younger one (at least
    `young_merchant_samples`) weighs n / (n + merchant_prior_samples) against its category:
    the amount's probability under "this merchant, or a merchant like the others of its
    category". A mixture, not a mean of logarithms: a young merchant whose prices sit far
    above its category's is not an anomaly for it, only for the category. A young merchant
    that has charged one price every time weighs by that evidence instead
    (`stable_merchant_weight`), and a merchant without a model of its own is judged by its
    category no rarer than `unseen_merchant_floor`."""
    p_own = _probability(merchant, amount, config, config.young_merchant_samples, hour, day)
    if p_own is not None and merchant is not None and merchant.count >= config.min_samples:
        # A grown merchant (most transactions): its category's tail is not read at all.
        return p_own, merchant
    p_wide = _probability(category, amount, config, config.min_samples, hour, day)
    if category is None or p_wide is None:
        return None
    weight = _merchant_weight(merchant, category, config) if p_own is not None else 0.0
    if merchant is None or p_own is None or weight == 0.0:
        return max(p_wide, config.unseen_merchant_floor), category
    if config.young_merchant_own_level:
        moved = amount * _level_gap(merchant, category, config)
        # Read at the category's level of today (no `day`), which _level_gap multiplies in:
        # the two cancel, and the young merchant's recent mean sets the level instead.
        p_moved = _probability(category, moved, config, config.min_samples, hour)
        if p_moved is not None:
            p_wide = max(p_wide, p_moved) if config.young_merchant_level_one_sided else p_moved
    p = weight * p_own + (1 - weight) * p_wide
    return p, merchant if weight >= 0.5 else category


def _level_gap(merchant: HeldBaseline, category: HeldBaseline, config: ScoringConfig) -> float:
    """What moves an amount from a young merchant's level to its category's today: the gap
    of their log-scale means, shrunk toward none by the merchant's count, times the
    category's trend (its tail divides by it; a young merchant's own mean is recent)."""
    if merchant.log_mean is None or category.log_mean is None or category.tail is None:
        return 1.0
    if category.stddev <= config.stable_stddev:
        return 1.0
    share = merchant.count / (merchant.count + config.young_merchant_level_prior)
    gap = share * (category.log_mean - merchant.log_mean)
    return math.exp(gap) * category.tail.level_ratio


def _probability(
    baseline: HeldBaseline | None,
    amount: float,
    config: ScoringConfig,
    min_samples: int,
    hour: int | None,
    day: int | None = None,
) -> float | None:
    if baseline is None or baseline.count < min_samples:
        return None
    if baseline.stddev <= config.stable_stddev:
        return stable_probability(amount, baseline, config)
    return None if baseline.tail is None else survival(baseline.tail, amount, hour, day)


def stable_probability(amount: float, baseline: HeldBaseline, config: ScoringConfig) -> float:
    """P(amount >= x) at a fixed price seen n times: a change at all is as rare as 1 in n + 1
    (Laplace's rule of succession), and a change of d (a share of the price) has the chance
    (stable_change_scale / d)^2 among changes: prices mostly move by a few percent, rarely
    double. Within `stable_tolerance` of the price is the price."""
    change = amount / baseline.mean - 1 if baseline.mean > 0 else math.inf
    if change <= config.stable_tolerance:
        return 1.0
    size = min(1.0, (config.stable_change_scale / change) ** 2)
    return size / (baseline.count + 1)


def _merchant_weight(
    merchant: HeldBaseline | None, category: HeldBaseline | None, config: ScoringConfig
) -> float:
    if merchant is None:
        return 0.0
    count, prior = merchant.count, config.merchant_prior_samples
    if count >= config.min_samples:
        return 1.0
    if prior <= 0:
        return 0.0
    if config.stable_merchant_evidence and merchant.stddev <= config.stable_stddev:
        share = _category_share(merchant.mean, category)
        if share is not None:
            return stable_merchant_weight(count, prior, share)
    return count / (count + prior)


def _category_share(price: float, category: HeldBaseline | None) -> float | None:
    if category is None or category.tail is None or price <= 0:
        return None
    return bin_share(category.tail, price)


def stable_merchant_weight(count: int, prior: float, share: float) -> float:
    """The weight of a young merchant's own model when its `count` charges were all one
    price, and its category puts `share` of its amounts in that price's bin: the posterior
    probability of "this merchant has a fixed price" against "this merchant draws like its
    category", from prior odds count / prior and the likelihood ratio of the repeats,
    1 / share^(count - 1) (the first charge is as likely under both)."""
    log_share = math.log(min(max(share, 1e-12), 1.0))
    log_odds = math.log(count / prior) - (count - 1) * log_share
    return 1.0 / (1.0 + math.exp(-min(log_odds, 700.0)))


def format_sigma(threshold: float) -> str:
    return f"{threshold:.3g}σ"


def score(
    txn: Transaction,
    baselines: Mapping[ScopeKey, HeldBaseline],
    config: ScoringConfig,
    now: datetime,
) -> Verdict:
    """Decide whether `txn` is anomalous against the baselines and explain why."""
    # Both scopes looked up once: the tail method reads both again below.
    merchant, category = _scopes_of(txn, baselines)
    baseline = _most_specific(merchant, category, config.min_samples)
    if baseline is None:
        return Verdict(transaction_id=txn.id, anomaly=False, scored_at=now)
    amount = float(txn.amount)
    if baseline.stddev <= config.stable_stddev:
        return _score_stable(txn.id, amount, baseline, config, now)
    p = estimate = None
    # The hour and the day of the amount, for the scope's level then (time of day, trend).
    at = txn.transaction_date.astimezone(UTC)
    if config.method == "tail":
        estimate = tail_probability(amount, merchant, category, config, at.hour, at.toordinal())
    if estimate is not None:
        p, baseline = estimate
        z, rule = z_equivalent(p), "tail"
    else:
        # A baseline without a tail (an older producer's): the log scale is the next best.
        fallback: Method = "log_zscore" if config.method == "tail" else config.method
        z, rule = z_score(amount, baseline, fallback)
    tier = config.active_tiers.severity(z)
    if tier is not None and rule == "tail" and _repricing(amount, baseline, config, at):
        tier = ("medium", config.active_tiers.medium)
    if tier is None:
        return Verdict(
            transaction_id=txn.id,
            anomaly=False,
            z_score=z,
            tail_probability=p,
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
        tail_probability=p,
        message=f"Amount exceeds {format_sigma(threshold)} baseline",
        baseline=baseline.model(),
        scored_at=now,
    )


def _repricing(
    amount: float, baseline: HeldBaseline, config: ScoringConfig, at: datetime | None = None
) -> bool:
    """An amount within `top_price_reprice` above its merchant's top price
    (`TailModel.top_price`, `repricing_band`): at most medium, as a fixed price's repricing
    (`_score_stable`), so that a toll's new truck fare feeds the baseline and is learned
    instead of alerting all day. A merchant's own: a category's top price says nothing of
    what a young merchant that never charged near it may charge."""
    if baseline.tail is None or baseline.key[0] != ScopeKind.MERCHANT:
        return False
    hour, day = (None, None) if at is None else (at.hour, at.toordinal())
    top = repricing_band(baseline.tail, hour, day)
    return 0 < top < amount <= top * (1 + config.top_price_reprice)


def _score_stable(
    txn_id: UUID, amount: float, baseline: HeldBaseline, config: ScoringConfig, now: datetime
) -> Verdict:
    """Seed rule for a scope that barely varies: a z-score would divide by ~0. With `tail`,
    an amount above a price kept for n samples is as rare as `stable_probability` says, so a
    fixed price alerts on a smaller jump than the seed's 2x and 50."""
    ratio_hit = amount >= config.stable_multiplier * baseline.mean
    margin_hit = amount - baseline.mean > config.stable_margin
    if ratio_hit and margin_hit:
        return Verdict(
            transaction_id=txn_id,
            anomaly=True,
            severity="high",
            rule="low_variance",
            message=f"Amount is more than {config.stable_multiplier:g}x stable baseline",
            baseline=baseline.model(),
            scored_at=now,
        )
    tier = None
    if config.method == "tail":
        p = stable_probability(amount, baseline, config)
        tier = config.active_tiers.severity(z_equivalent(p))
        # A repricing (up to stable_reprice above the price) is at most medium: medium rows
        # feed the baseline, so the new price is learned within days instead of alerting
        # (high, left out of the baseline) forever.
        if tier is not None and amount <= baseline.mean * (1 + config.stable_reprice):
            tier = ("medium", config.active_tiers.medium)
    if tier is None:
        return Verdict(
            transaction_id=txn_id, anomaly=False, baseline=baseline.model(), scored_at=now
        )
    return Verdict(
        transaction_id=txn_id,
        anomaly=True,
        severity=tier[0],
        rule="low_variance",
        z_score=z_equivalent(p),
        tail_probability=p,
        message=f"Amount exceeds a stable baseline kept for {baseline.count:,} samples",
        baseline=baseline.model(),
        scored_at=now,
    )
