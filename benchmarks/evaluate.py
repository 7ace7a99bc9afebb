"""Pure accuracy figures over scored, labelled records: against the oracle, per tier, per family.

What it does: every function takes `ScoredRecord`s (label, family, the oracle's true tail
probability `p_true`, the method's severity and its continuous score, higher = more anomalous)
and computes, with no I/O and no knowledge of the method:

- `recall_at_rate` / `matched_recall`: recall when the threshold on a continuous score is set
  so that at most `rate` false alerts per 10,000 normal records fire, for the method and for
  the oracle (ranking by p_true: the best recall any detector that sees only the amount and
  knows each scope's true distribution can reach at that rate);
- `calibration`: false alerts observed at each tier or above ÷ the tier's nominal rate, with
  the counts and a 95 % interval so a reader sees the uncertainty;
- `at_severity`: precision, recall and false alerts per 10k at a severity floor (high+, medium+);
- `leave_one_family_out`: choose a parameter on all families but one, report on that one;
- `missed_by_method`: the anomalies the oracle catches at a rate and the method does not.

"Oracle" here means the best an amount-only detector can do that knows each scope's true
normal distribution and nothing of the anomalies': it ranks by true rarity. It is the limit in
expectation: on a finite sample, at a rate that allows only a few false alerts (`allowed`), a
method can beat it by chance, so pool seeds until `allowed` is in the tens. `z_equivalent`
and `severity_of` turn p_true into the oracle's own tiers, which are calibrated by construction.
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Generic, TypeVar

from benchmarks.families import normal_sf

FA_RATES: tuple[float, ...] = (2.0, 5.0, 13.0)  # false alerts per 10,000 normal records
SEVERITY_ORDER: tuple[str, ...] = ("medium", "high", "critical")  # least severe first
PER_10K = 10_000


@dataclass(frozen=True)
class ScoredRecord:
    is_anomaly: bool
    family: str
    p_true: float  # the true P(amount >= x) under the scope's normal distribution
    severity: str | None  # the method's tier, None when it did not alert
    score: float  # the method's continuous score, higher = more anomalous; -inf: none
    kind: str | None = None  # the anomaly's kind
    segment: str = ""  # e.g. the merchant's size (large, small, late)


Score = Callable[[ScoredRecord], float]


def method_score(record: ScoredRecord) -> float:
    return record.score


def oracle_score(record: ScoredRecord) -> float:
    """The rarer under the true distribution, the higher."""
    return -record.p_true


def ratio(part: float, whole: float) -> float:
    """part / whole, NaN when there is nothing to divide."""
    return part / whole if whole else math.nan


@dataclass(frozen=True)
class RecallAtRate:
    rate_per_10k: float
    allowed: int  # false alerts the rate allows on these normal records
    false_alerts: int  # those taken: fewer than allowed when normal scores tie at the threshold
    caught: int
    anomalies: int
    threshold: float  # records scoring strictly above it alert

    @property
    def recall(self) -> float:
        return ratio(self.caught, self.anomalies)


def recall_at_rate(
    records: Sequence[ScoredRecord], rate_per_10k: float, score: Score = method_score
) -> RecallAtRate:
    """The most permissive threshold that fires at most rate * normal / 10,000 false alerts."""
    return recall_at_rates(records, [rate_per_10k], score)[0]


def recall_at_rates(
    records: Sequence[ScoredRecord], rates_per_10k: Sequence[float], score: Score = method_score
) -> list[RecallAtRate]:
    """`recall_at_rate` at each rate, the records ranked once (a million-row backtest's
    report would otherwise sort them again for every rate)."""
    normal = sorted((_finite(score(r)) for r in records if not r.is_anomaly), reverse=True)
    anomalous = [_finite(score(r)) for r in records if r.is_anomaly]
    return [_at_rate(normal, anomalous, rate) for rate in rates_per_10k]


def _at_rate(
    normal: Sequence[float], anomalous: Sequence[float], rate_per_10k: float
) -> RecallAtRate:
    allowed = math.floor(rate_per_10k * len(normal) / PER_10K)
    threshold = normal[allowed] if allowed < len(normal) else -math.inf
    return RecallAtRate(
        rate_per_10k=rate_per_10k,
        allowed=allowed,
        false_alerts=sum(1 for s in normal if s > threshold),
        caught=sum(1 for s in anomalous if s > threshold),
        anomalies=len(anomalous),
        threshold=threshold,
    )


def _finite(value: float) -> float:
    """NaN (no score) ranks below everything."""
    return -math.inf if math.isnan(value) else value


@dataclass(frozen=True)
class MatchedRecall:
    method: RecallAtRate
    oracle: RecallAtRate

    @property
    def share_of_oracle(self) -> float:
        return ratio(self.method.recall, self.oracle.recall)


def matched_recall(
    records: Sequence[ScoredRecord], rates: Iterable[float] = FA_RATES
) -> list[MatchedRecall]:
    """Method and oracle at the same false-alert rates."""
    return [
        MatchedRecall(recall_at_rate(records, r), recall_at_rate(records, r, oracle_score))
        for r in rates
    ]


def missed_by_method(records: Sequence[ScoredRecord], rate_per_10k: float) -> list[int]:
    """Indices of the anomalies the oracle catches at `rate_per_10k` and the method does not,
    each ranked by its own threshold on these records (pass one family's records: the
    rate is matched per family, as `matched_recall` does)."""
    method = recall_at_rate(records, rate_per_10k).threshold
    oracle = recall_at_rate(records, rate_per_10k, oracle_score).threshold
    return [
        i
        for i, r in enumerate(records)
        if r.is_anomaly and _finite(oracle_score(r)) > oracle and _finite(r.score) <= method
    ]


def nominal_rate(z: float) -> float:
    """The share of normal records at or above a z-equivalent threshold: 1 - Φ(z), exact far
    into the tail (NormalDist().cdf(-z) loses digits past z = 6)."""
    return normal_sf(z)


def z_equivalent(p: float) -> float:
    """The z whose upper tail is p (the inverse of `nominal_rate`), exact for tiny p;
    +inf for p = 0 and -inf for p = 1."""
    if p <= 0.0:
        return math.inf
    if p >= 1.0:
        return -math.inf
    return -NormalDist().inv_cdf(p)


def severity_of(z: float, thresholds: Sequence[tuple[str, float]]) -> str | None:
    """The most severe tier whose z threshold (inclusive) z reaches, thresholds least first."""
    reached = [tier for tier, threshold in thresholds if z >= threshold]
    return reached[-1] if reached else None


@dataclass(frozen=True)
class TierCalibration:
    tier: str
    nominal_rate: float  # expected share of normal records at this tier or above
    normal: int
    false_alerts: int  # normal records at this tier or above

    @property
    def expected(self) -> float:
        return self.nominal_rate * self.normal

    @property
    def ratio(self) -> float:
        """Observed ÷ nominal: 1 is calibrated, 2 alerts twice as often as promised."""
        return ratio(self.false_alerts, self.expected)

    @property
    def interval(self) -> tuple[float, float]:
        """95 % interval of the ratio (Poisson count, Wilson-Hilferty bounds)."""
        low, high = poisson_interval(self.false_alerts)
        return ratio(low, self.expected), ratio(high, self.expected)


def poisson_interval(count: int, z: float = 1.96) -> tuple[float, float]:
    """Approximate two-sided interval of a Poisson mean given one observed count."""
    low = 0.0
    if count > 0:
        low = count * (1 - 1 / (9 * count) - z / (3 * math.sqrt(count))) ** 3
    upper = count + 1
    high = upper * (1 - 1 / (9 * upper) + z / (3 * math.sqrt(upper))) ** 3
    return max(0.0, low), high


def calibration(
    records: Sequence[ScoredRecord],
    tiers: Sequence[tuple[str, float]],
    order: Sequence[str] = SEVERITY_ORDER,
) -> list[TierCalibration]:
    """Per (tier, nominal rate): how often normal records reached that tier or above."""
    normal = [r for r in records if not r.is_anomaly]
    return [
        TierCalibration(
            tier=tier,
            nominal_rate=rate,
            normal=len(normal),
            false_alerts=sum(1 for r in normal if reaches(r.severity, tier, order)),
        )
        for tier, rate in tiers
    ]


def reaches(severity: str | None, floor: str, order: Sequence[str] = SEVERITY_ORDER) -> bool:
    return severity is not None and order.index(severity) >= order.index(floor)


@dataclass(frozen=True)
class AlertCounts:
    true_positives: int
    false_positives: int
    false_negatives: int
    normal: int

    @property
    def precision(self) -> float:
        return ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def false_alerts_per_10k(self) -> float:
        return PER_10K * ratio(self.false_positives, self.normal)


def at_severity(
    records: Iterable[ScoredRecord], floor: str, order: Sequence[str] = SEVERITY_ORDER
) -> AlertCounts:
    """An alert is a record at `floor` or above (e.g. floor "high": high and critical)."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "normal": 0}
    for record in records:
        alerted = reaches(record.severity, floor, order)
        if record.is_anomaly:
            counts["tp" if alerted else "fn"] += 1
        else:
            counts["normal"] += 1
            counts["fp"] += alerted
    return AlertCounts(counts["tp"], counts["fp"], counts["fn"], counts["normal"])


def group_by(
    records: Iterable[ScoredRecord], key: Callable[[ScoredRecord], str]
) -> dict[str, list[ScoredRecord]]:
    groups: defaultdict[str, list[ScoredRecord]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def by_family(records: Iterable[ScoredRecord]) -> dict[str, list[ScoredRecord]]:
    return group_by(records, lambda record: record.family)


def min_share_of_oracle(
    per_family: Mapping[str, Sequence[ScoredRecord]],
    families: Iterable[str],
    rate_per_10k: float = 5.0,
) -> float:
    """The worst family's recall ÷ the oracle's at one rate: an objective for choosing."""
    shares = [matched_recall(per_family[f], (rate_per_10k,))[0].share_of_oracle for f in families]
    known = [s for s in shares if not math.isnan(s)]
    return min(known) if known else math.nan


Candidate = TypeVar("Candidate")
Report = TypeVar("Report")


@dataclass(frozen=True)
class HeldOut(Generic[Candidate, Report]):
    family: str  # left out of the choice
    chosen: Candidate  # the best candidate on every other family
    report: Report  # what `report` says of the chosen candidate on the held-out family


def leave_one_family_out(
    families: Sequence[str],
    candidates: Sequence[Candidate],
    objective: Callable[[Candidate, Sequence[str]], float],
    report: Callable[[Candidate, str], Report],
) -> list[HeldOut[Candidate, Report]]:
    """For each family: the candidate with the highest objective on all the others (the first
    on ties), reported on the held-out family, which the choice never saw."""
    held_out = []
    for family in families:
        others = [f for f in families if f != family]
        chosen = max(candidates, key=lambda c: _finite(objective(c, others)))
        held_out.append(HeldOut(family, chosen, report(chosen, family)))
    return held_out
