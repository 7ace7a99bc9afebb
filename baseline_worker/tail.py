"""Fit a scope's upper tail from its amount histogram, assuming no shape. Pure.

Where the window holds enough samples (at least `knot_min_count` above an amount), the
survival P(amount >= x) is simply the share of samples at or above x: the empirical survival
at a few knots. Past that, the data alone cannot say how rare an amount is, so a generalized
Pareto distribution (GPD) is fitted to the amounts above a high threshold: by the
Pickands-Balkema-de Haan theorem the excesses over a high threshold of almost any
distribution are GPD (peaks over threshold; Siffer et al., KDD 2017, use the same for
streams). The shape is estimated by probability-weighted moments (Hosking & Wallis 1987) or,
where they read a heavy tail, by Zhang & Stephens' posterior mean (2009; docs/accuracy.md,
round 8), shrunk toward a prior by the number of excesses (a small scope's shape estimate is
mostly noise), and clamped at 0: a negative shape has a finite end point, past which every amount
would get probability 0 (a price that inflates slowly would then alert forever).
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import accumulate, repeat
from operator import mul, neg
from typing import Literal

from baseline_worker.histogram import GAMMA, bin_bounds
from baseline_worker.stats import TrendThrough
from schemas import TailModel

# Knots kept: each one at least this factor rarer than the previous one.
_KNOT_RATIO = 1.5
_MAX_SHAPE = 0.9
# Samples set aside by the outlier screen (`TailFit.outlier_share`): at least a few, so that
# two or three spikes in a small scope do not hide each other (at most `outlier_most`).
_FEWEST_ASIDE = 3
# A top price holds more samples than the bins this close to it together (`_price_top`).
_PRICE_NEIGHBOURS = 3
# A bin holding this many samples is a price, never an outlier (`screened`).
_PRICE_SAMPLES = 2
# The unjudged samples judged at the fit are those among the window's top this many
# (`TailFit.unjudged_rarity`): past the knots' end (10 samples above), after the outlier
# screen set aside at most 10, with room for a history's dozens of spikes.
UNJUDGED_TOP = 40
# Zhang & Stephens' prior on theta: its scale is this many times the excesses' first quartile.
_ZHANG_PRIOR_SCALE = 3.0
_ZHANG_MAX_EXTRA_POINTS = 20
# Samples tied in the threshold's bin that make it a lattice point (see `_threshold`).
_TIED_AT_THRESHOLD = 3
# The truncated fit (`_read_as_truncated`): its rounds (the edge moves with the shape), and
# the fixed-point iteration for the shape (`_truncated_best`): its steps, its tolerance and
# the heaviest shape it reads.
_TRUNCATION_ROUNDS = 2
_TRUNCATED_STEPS = 200
_TRUNCATED_TOLERANCE = 1e-9
_MAX_TRUNCATED_SHAPE = 2.5

# How the GPD shape is estimated before the shrinkage: probability-weighted moments
# ("pwm"), Zhang & Stephens' empirical-Bayes posterior ("zhang"), or PWM where it reads a
# shape under `hybrid_above` and Zhang & Stephens' above ("hybrid").
ShapeEstimator = Literal["pwm", "zhang", "hybrid"]


@dataclass(frozen=True)
class TailFit:
    """How a tail is fitted (chosen by the accuracy benchmark, docs/accuracy.md)."""

    # Share of the samples above the GPD threshold, and the fewest excesses to fit on (the
    # top 10 % and at least 100 were replayed in round 9, docs/accuracy.md: not adopted).
    tail_share: float = 0.05
    min_excesses: int = 20
    # The share above the threshold where the tail reads heavy (PWM at `tail_share` reads
    # `hybrid_above` or more; 0: `tail_share` everywhere). The rows judged high never feed the
    # window, so a large heavy-tailed scope lacks its largest excess, which carries the
    # shape; more excesses weigh it less (docs/accuracy.md, round 9; not adopted).
    heavy_tail_share: float = 0.0
    # The empirical survival is trusted while at least this many samples lie above.
    knot_min_count: int = 10
    # Prior shape and its weight in excesses: with k excesses the shape is
    # (k * estimate + prior_weight * prior_shape) / (k + prior_weight).
    prior_shape: float = 0.1
    prior_weight: float = 10.0
    # Standard errors added to the shape: a shape estimated from few excesses is as often too
    # light as too heavy, and a too-light tail costs far more false alerts than a too-heavy
    # one costs recall.
    shape_margin: float = 0.75
    # The shape's estimator (docs/accuracy.md, round 8): probability-weighted moments are
    # biased light and noisy past a shape of ~0.5 (their variance is infinite there), where
    # the heaviest power laws are; Zhang & Stephens' posterior is not, but on light tails it
    # cost recall in the replay. "hybrid": PWM where it reads under `hybrid_above` (most
    # scopes, and the cheaper), Zhang & Stephens' on the heavy tails.
    shape_estimator: ShapeEstimator = "hybrid"
    hybrid_above: float = 0.25
    # A level that moved over the window (a trend) widens the window's histogram: every
    # day's amounts sit at that day's level. Narrow its log-spread back by the share the
    # trend explains before fitting (baseline_worker.stats.Trend.spread).
    detrend_spread: bool = True
    # A level per hour of day where the scope's hours differ significantly
    # (baseline_worker.stats.hour_ratios): an amount is read against its hour's level. From
    # the window's closed days (ops/migrations/016); docs/accuracy.md, round 3.
    hour_levels: bool = True
    # A level per UTC weekday where the scope's weekdays differ significantly (the same test
    # and shrinkage as the hours, over 7 seasons), read times the hour's: from the window's
    # closed days (ops/migrations/018); docs/accuracy.md, "Weekday levels".
    weekday_levels: bool = True
    # The level's trend as a line through every ln(amount) by day ("means"), through the
    # closed days' medians of ln(amount) ("medians": a point mass, card checks of 1.00, does
    # not flatten it; ops/migrations/019), or whichever stands more standard errors out
    # ("sharper", chosen leave-one-family-out on the eight families): baseline_worker.stats.
    # trend; docs/accuracy.md, round 6.
    trend_through: TrendThrough = "sharper"
    # Today's level (and the slope it moves by) bent to the line through the medians of the
    # last this many closed days, where the window shows a trend (0: the whole window's
    # line): a drift that started mid-window bends the line (baseline_worker.stats.
    # recent_level; docs/accuracy.md, round 7). Replay only (benchmarks.tail_choice): the SQL
    # aggregate reads one row of medians a scope, not each day's, so the baseline worker
    # refuses it rather than ignore it (not adopted; no environment variable sets it).
    recent_trend_days: int = 0
    # Outliers left in the window (a history loaded faster than it could be judged, a spike
    # judged medium while its merchant was young) make the fitted tail heavy, and hide the
    # next spike: the window's top `outlier_share` of samples (one at least) are set aside,
    # the tail is fitted on the rest, and those that tail puts so far out that n samples
    # would reach them less than `outlier_alpha` of the time leave the fit (0: no screen).
    outlier_share: float = 0.004
    outlier_alpha: float = 0.001
    # At most this many samples set aside: the tail fitted without them reads lighter the
    # more of its top it lacks (round 13 replayed 30: docs/accuracy.md).
    outlier_most: int = 10
    # Where the window's top is a price (`_price_top`: a toll's truck class, a plan, a full
    # tank), the excesses below it are a few prices: a GPD fitted to them reads a heavy
    # shape one bin wide, so an amount 2.6x the top price read as 1 in 1,600
    # (docs/accuracy.md, round 13). Past such a top the tail is the fixed-price rule's
    # (detector_worker.scoring.stable_probability and its repricing cap): any amount above
    # it as rare as 1 in n + 1 (no sample of n was), and a step d above the price as
    # (1 + d / price_change_scale) ** -2 of that: prices mostly move by a few percent.
    price_top: bool = True
    price_change_scale: float = 0.1
    # Samples that fed the window without a verdict (scored while no baseline existed: a
    # backfill loaded before the first baselines, a scope's first rows) are judged here as
    # a verdict would have judged them: those past the window's knots are set aside and, in
    # rounds, smallest first, fed back where the tail fitted on the window as it stands
    # reads them less rare than this (the high tier's 1 in 5,000); the rest stay out
    # (`_judged`; 0: none; docs/accuracy.md, round 14).
    unjudged_rarity: float = 1 / 5000
    # A merchant's shape estimate capped at its category peers' (baseline_worker.peers):
    # their median + max(`peer_cap_margin`, `peer_cap_mads` of their spread); peers have
    # `peer_min_samples` samples and there are `peer_min_peers` of them (docs/accuracy.md,
    # round 19). False: each merchant's own estimate alone.
    peer_cap: bool = True
    peer_cap_margin: float = 0.05
    peer_cap_mads: float = 1.5
    peer_min_samples: int = 200
    peer_min_peers: int = 3
    # Rows judged high never feed the window (baseline_worker.rollup), so a large scope's
    # window lacks its own amounts past the high tier's edge, and a heavy tail fitted on the
    # rest reads lighter than it is (docs/accuracy.md, rounds 9 and 20). Its excesses are
    # read as right-truncated at the amount its own tail puts at this rarity (the high
    # tier's), where n samples would hold at least `truncated_min_expected` past it and the
    # excesses read a heavy shape (above `truncated_above`). Unlike putting back a count of
    # kept-out rows, no spike kept out can make the tail heavier. 0: no truncation.
    truncated_at: float = 1 / 5000
    truncated_min_expected: float = 0.5
    truncated_above: float = 0.05
    # The highest the shape estimate may read before the shrinkage: one scope's, set by the
    # recompute from its peers (`peer_cap`), not a setting.
    shape_cap: float = math.inf


@dataclass(frozen=True)
class FittedTail:
    """A scope's tail and the GPD shape its excesses read on their own (before the cap, the
    shrinkage and the margin): None where no GPD was fitted (a price top, no tail, too few
    distinct excesses)."""

    model: TailModel | None
    raw_shape: float | None = None


@dataclass(frozen=True)
class TailLevels:
    """What an amount is divided by before it is read against the tail (schemas.TailModel):
    the scope's level today and by day, by hour, by weekday (1.0, 0.0, None: none)."""

    level_ratio: float = 1.0
    level_slope: float = 0.0
    hour_ratios: list[float] | None = None
    weekday_ratios: list[float] | None = None


NO_LEVELS = TailLevels()


@dataclass(frozen=True)
class _Excesses:
    values: list[tuple[float, int]]  # (excess over the threshold, count), ascending
    count: int
    total: float  # the sum of the excesses
    threshold: float


def fit_tail(
    bins: Mapping[int, int],
    fit: TailFit,
    levels: TailLevels = NO_LEVELS,
    unjudged: Mapping[int, int] | None = None,
) -> TailModel | None:
    """The tail of a scope's window, or None when it has fewer than 2 distinct bins; with
    `levels`, so that the model is built (and validated) once. `unjudged`: the bins of the
    window's samples that fed it without a verdict (`TailFit.unjudged_rarity`)."""
    return fitted_tail(bins, fit, levels, unjudged).model


def fitted_tail(
    bins: Mapping[int, int],
    fit: TailFit,
    levels: TailLevels = NO_LEVELS,
    unjudged: Mapping[int, int] | None = None,
) -> FittedTail:
    """`fit_tail` with the shape the tail's own excesses read (`FittedTail.raw_shape`)."""
    fitted = _fit(bins, fit, levels)
    model = fitted.model
    if unjudged and fit.unjudged_rarity > 0 and model is not None and model.top_price is None:
        return _judged(bins, unjudged, fitted, model, fit, levels)
    return fitted


def _judged(
    bins: Mapping[int, int],
    unjudged: Mapping[int, int],
    fitted: FittedTail,
    model: TailModel,
    fit: TailFit,
    levels: TailLevels,
) -> FittedTail:
    """The tail of the window once its unjudged samples past `model`'s knots are judged as
    a stream's verdicts would have judged them. All are set aside; then, in rounds, those
    the tail of the window as it stands reads less rare than `TailFit.unjudged_rarity` (or
    reaches with its knots) feed it back, smallest first, and the tail is fitted again: a
    sample fed back makes the tail heavier, so the next round may take more. Those left
    out are the spikes a verdict would have kept out: a history's spikes, which no verdict
    judged, no longer hide the next spike (docs/accuracy.md, round 14). Only past the
    knots (the top 10 to 20 samples): setting aside more (the top 40) left small heavy
    scopes without their own top, 14-21 high false alerts per 10k in the replay. A few
    fits, for a scope with unjudged samples there only."""
    last = model.amounts[-1]
    kept = dict(bins)
    aside: list[int] = []
    for b in sorted(unjudged):
        if bin_bounds(b)[0] > last and (take := min(unjudged[b], kept.get(b, 0))):
            aside.extend(repeat(b, take))
            kept[b] -= take
    if not aside:
        return fitted
    current = _fit(kept, fit, levels)
    while aside and (standing := current.model) is not None:
        fed = 0
        for b in aside:
            x = bin_bounds(b)[0]
            if x > standing.amounts[-1] and _survival_past(standing, x) < fit.unjudged_rarity:
                break
            kept[b] += 1
            fed += 1
        if not fed:
            break
        del aside[:fed]
        current = _fit(kept, fit, levels)
    # What is left may hold too few distinct amounts for a tail (a price and its spikes):
    # then the window's own tail, spikes and all, rather than none.
    return fitted if current.model is None else current


def unjudged_cutoff(bins: Mapping[int, int]) -> int | None:
    """The lowest bin of the window's top `UNJUDGED_TOP` samples (None: an empty window)."""
    seen = 0
    for b in sorted(bins, reverse=True):
        seen += bins[b]
        if seen >= UNJUDGED_TOP:
            return b
    return min(bins, default=None)


def _fit(bins: Mapping[int, int], fit: TailFit, levels: TailLevels) -> FittedTail:
    """`fitted_tail` without the unjudged samples' judgement."""
    keys, counts = _ascending(bins)
    if fit.price_top and (priced := _price_top(keys, counts, fit, levels)) is not None:
        return FittedTail(priced)
    if fit.outlier_share > 0 and (kept := _screened(keys, counts, bins, fit)) is not bins:
        keys, counts = _ascending(kept)
    if len(keys) < 2:
        return FittedTail(None)
    # at_or_above[i]: the samples in bin i and above (exact integers, summed once).
    at_or_above = list(accumulate(reversed(counts)))
    at_or_above.reverse()
    n = at_or_above[0]
    excesses = _tail_excesses(keys, counts, at_or_above, fit)
    if fit.heavy_tail_share and _reads_heavy(excesses, fit):
        excesses = _tail_excesses(keys, counts, at_or_above, fit, fit.heavy_tail_share)
    threshold = excesses.threshold
    raw = _shape_estimate(excesses, fit)
    if raw is not None and _lacks_its_top(raw, n, fit):
        raw = _read_as_truncated(excesses, raw, n, fit)
    capped = raw if raw is None else min(raw, fit.shape_cap)
    shape = _shrunk_shape(capped, excesses.count, fit)
    mean_excess = excesses.total / excesses.count
    amounts, survival = _knots(keys, at_or_above, fit.knot_min_count)
    model = TailModel(
        amounts=amounts,
        survival=survival,
        threshold=threshold,
        exceedance=excesses.count / n,
        shape=shape,
        scale=max(mean_excess * (1 - shape), threshold * 1e-6),
        bin_ratio=GAMMA,
        level_ratio=levels.level_ratio,
        level_slope=levels.level_slope,
        hour_ratios=levels.hour_ratios,
        weekday_ratios=levels.weekday_ratios,
    )
    return FittedTail(model, raw)


def _price_top(
    keys: list[int], counts: list[int], fit: TailFit, levels: TailLevels
) -> TailModel | None:
    """The tail past a top price (`TailFit.price_top`), or None where the window's top is
    no price: its highest bin holding `knot_min_count` samples, with no more samples above
    it than the outlier screen would set aside (a spike or two judged medium), and more
    samples than the bins within `_PRICE_NEIGHBOURS` of it together: a point mass, not the
    crowded top of a narrow continuous scope (a normal of 10 % spread at n = 3,000 has 10
    samples in a bin near its top)."""
    n, above = sum(counts), 0
    few = _set_aside_count(n, fit)
    for top in range(len(keys) - 1, -1, -1):
        if counts[top] >= fit.knot_min_count:
            break
        above += counts[top]
        if above > few:
            return None
    else:
        return None
    if len(keys) < 2 or not _isolated(keys, counts, top):
        return None
    at_or_above = list(accumulate(reversed(counts[: top + 1]), initial=above))[1:]
    at_or_above.reverse()
    amounts, survival = _knots(keys[: top + 1], at_or_above, fit.knot_min_count)
    return _past_a_price(amounts, survival, keys[top], n, above, fit, levels)


def _isolated(keys: list[int], counts: list[int], top: int) -> bool:
    """Whether bin `top` holds more samples than the bins within `_PRICE_NEIGHBOURS` of it."""
    low = bisect_left(keys, keys[top] - _PRICE_NEIGHBOURS)
    high = bisect_right(keys, keys[top] + _PRICE_NEIGHBOURS)
    return counts[top] > sum(counts[low:high]) - counts[top]


def _past_a_price(
    amounts: list[float],
    survival: list[float],
    top: int,
    n: int,
    above: int,
    fit: TailFit,
    levels: TailLevels,
) -> TailModel:
    """The tail past a top price: the knots up to the price; from the next bin on as rare
    as the `above` samples past the price make it, (above + 1) / (n + 1) (Laplace's rule
    of succession); and then a GPD of shape 1/2, whose survival (1 + 0.5 y / scale) ** -2
    is the fixed-price rule's (1 + d / change) ** -2 for a scale of half
    `price_change_scale` times the price. The levels stay: a price list's hours, weekdays
    and trend mostly move the mix of its prices (more $100 gift cards on a Saturday), but
    the same levels carry an inflation that moves every price (dropping them cost more on
    the blind stream than it gained: docs/accuracy.md, round 13); the detector never reads
    the price itself past it (`TailModel.top_price`)."""
    price, edge = bin_bounds(top)
    past = (above + 1) / (n + 1)
    return TailModel(
        amounts=[*amounts[-63:], edge],
        survival=[*survival[-63:], past],
        threshold=edge,
        exceedance=past,
        shape=0.5,
        scale=0.5 * fit.price_change_scale * edge,
        bin_ratio=GAMMA,
        level_ratio=levels.level_ratio,
        level_slope=levels.level_slope,
        hour_ratios=levels.hour_ratios,
        weekday_ratios=levels.weekday_ratios,
        top_price=price,
    )


def screened(bins: Mapping[int, int], fit: TailFit) -> Mapping[int, int]:
    """The histogram without its outliers (`TailFit.outlier_share`): of the top samples set
    aside, those past the first one that the tail fitted without them puts beyond
    `outlier_alpha` / n (the chance that any of n samples from that tail reaches it). A
    sample still within the fitted tail's empirical knots is never one, nor one whose bin
    holds `_PRICE_SAMPLES` or more: an amount that recurs is a price, which a kept-out price
    counted back in (`compute.with_recurring_prices`) must stay, or it would be judged high,
    kept out and counted back again at every charge."""
    return _screened(*_ascending(bins), bins, fit)


def _screened(
    keys: list[int], counts: list[int], bins: Mapping[int, int], fit: TailFit
) -> Mapping[int, int]:
    """`screened`, with the bins already sorted (`bins` itself when nothing leaves)."""
    n = sum(counts)
    aside = min(_set_aside_count(n, fit), n - 2 * fit.min_excesses)
    if aside < 1 or len(keys) < 3:
        return bins
    rest, top = _set_aside(keys, counts, aside)
    # (the price-top rule had its look at the whole window; judged by it, a spike over a
    # few prices would leave the fit and the rest be fitted by a GPD all the same)
    unscreened = replace(fit, outlier_share=0.0, price_top=False)
    model = _fit(rest, unscreened, NO_LEVELS).model
    if model is None:
        return bins
    for at, b in enumerate(top):
        x = bin_bounds(b)[0]
        if x > model.amounts[-1] and _survival_past(model, x) * n < fit.outlier_alpha:
            kept = dict(rest)
            for back in top[:at] + [p for p in top[at:] if bins[p] >= _PRICE_SAMPLES]:
                kept[back] = kept.get(back, 0) + 1
            return kept
    return bins


def _set_aside_count(n: int, fit: TailFit) -> int:
    """How many of a window's n samples the outlier screen sets aside."""
    return min(max(math.ceil(fit.outlier_share * n), _FEWEST_ASIDE), fit.outlier_most)


def _set_aside(keys: list[int], counts: list[int], aside: int) -> tuple[dict[int, int], list[int]]:
    """The histogram without its top `aside` samples, and their bins, ascending."""
    rest = dict(zip(keys, counts, strict=True))
    top: list[int] = []
    for b in reversed(keys):
        take = min(rest[b], aside - len(top))
        top.extend([b] * take)
        rest[b] -= take
        if not rest[b]:
            del rest[b]
        if len(top) == aside:
            break
    top.reverse()
    return rest, top


def _survival_past(model: TailModel, x: float) -> float:
    """P(amount >= x) past the model's last knot: its generalized Pareto tail."""
    excess = max(x - model.threshold, 0.0) / model.scale
    if model.shape < 1e-9:
        return model.exceedance * math.exp(-excess)
    return model.exceedance * math.exp(-math.log1p(model.shape * excess) / model.shape)


def narrowed(bins: Mapping[int, int], log_mean: float, spread: float) -> dict[int, int]:
    """The histogram with every bin's distance to the log-scale mean times `spread` (< 1):
    a window whose level drifted, seen as if every day had sat at the window's average level
    (exact when the amounts are log-normal and the drift linear; the centre and the order
    of the bins are kept)."""
    centre = log_mean / math.log(GAMMA)
    moved: dict[int, int] = {}
    for b, c in bins.items():
        target = math.floor(centre + (b + 0.5 - centre) * spread)
        moved[target] = moved.get(target, 0) + c
    return moved


def _ascending(bins: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """The bins that hold samples, ascending, and their counts."""
    keys = sorted(bins)
    counts = list(map(bins.__getitem__, keys))
    if min(counts, default=0) <= 0:  # an empty bin (rare): left out
        keys = [b for b, c in zip(keys, counts, strict=True) if c > 0]
        counts = [c for c in counts if c > 0]
    return keys, counts


def _tail_excesses(
    keys: list[int], counts: list[int], at_or_above: list[int], fit: TailFit, share: float = 0.0
) -> _Excesses:
    """The excesses over the lowest bin of the top `share` (default `tail_share`)."""
    top = _threshold_index(at_or_above, at_or_above[0], fit, share or fit.tail_share)
    threshold = _threshold(keys, counts, top)
    tail_bins = zip(keys[top:], counts[top:], strict=True)
    return _excesses(tail_bins, threshold, at_or_above[top])


def _threshold(keys: list[int], counts: list[int], top: int) -> float:
    """The threshold below the bin `top`: its lower edge, or half a step lower on a lattice.

    Metered amounts (2.75 a unit of parking, 0.50 a kilometre) fill only every few bins,
    and the threshold bin then holds as many tied samples as any other point. At its lower
    edge their excesses sit at almost 0 and the rest at whole steps, a shape no GPD has:
    the estimators read that pile as a very heavy tail, and a jump to three times the top
    unit read as 1 in 3,000. Half a step below (the geometric midpoint to the point
    underneath, as a continuity correction does for counts) the same lattice reads light.
    Only where the bin is a lattice point: tied samples, empty bins below it, and a point
    above it (without one, a merchant's top price is a price, not a step of a lattice)."""
    edge = bin_bounds(keys[top])[0]
    if counts[top] < _TIED_AT_THRESHOLD or top + 1 >= len(keys) or keys[top] - keys[top - 1] <= 1:
        return edge
    centre = _centre(keys[top])
    step = min(centre / _centre(keys[top - 1]), _centre(keys[top + 1]) / centre)
    return min(max(centre / math.sqrt(step), bin_bounds(keys[top - 1])[1]), edge)


def _centre(index: int) -> float:
    """A bin's geometric centre, where its samples are taken to stand (bins are 2 % wide)."""
    lo, hi = bin_bounds(index)
    return math.sqrt(lo * hi)


def _reads_heavy(excesses: _Excesses, fit: TailFit) -> bool:
    pwm = _pwm_shape(excesses)
    return pwm is not None and pwm >= fit.hybrid_above


def _threshold_index(at_or_above: list[int], n: int, fit: TailFit, share: float) -> int:
    """The lowest bin of the top `share` (at least `min_excesses`, at most half): the
    highest bin with that many samples at or above it, never the lowest bin."""
    wanted = min(max(share * n, fit.min_excesses), n / 2)
    return max(_count_at_least(at_or_above, wanted) - 1, 1)


def _count_at_least(at_or_above: list[int], wanted: float) -> int:
    """How many of the bins have at least `wanted` samples at or above them (a prefix: the
    counts only fall)."""
    return bisect_right(at_or_above, -wanted, key=neg)


def _excesses(tail_bins: Iterable[tuple[int, int]], threshold: float, count: int) -> _Excesses:
    """Each sample stands at its bin's geometric centre (bins are 2 % wide)."""
    values = [(_centre(b) - threshold, c) for b, c in tail_bins]
    return _Excesses(values, count, sum(e * c for e, c in values), threshold)


def _shape_estimate(excesses: _Excesses, fit: TailFit) -> float | None:
    if fit.shape_estimator == "zhang":
        return _zhang_shape(excesses)
    pwm = _pwm_shape(excesses)
    if fit.shape_estimator == "pwm" or pwm is None or pwm < fit.hybrid_above:
        return pwm
    # Where Zhang & Stephens have no estimate, PWM's heavy reading beats none (the prior).
    zhang = _zhang_shape(excesses)
    return pwm if zhang is None else zhang


def _pwm_shape(excesses: _Excesses) -> float | None:
    """Hosking & Wallis' probability-weighted-moment estimate of the GPD shape."""
    k = excesses.count
    if k < 3:
        return None
    a0 = excesses.total / k
    # a1 = mean of x_(i) * (k - i) / (k - 1) over ascending ranks i = 1..k; a group of c
    # equal values at ranks r+1..r+c contributes x * (c * (k - r) - c * (c + 1) / 2).
    weighted, rank = 0.0, 0
    for excess, c in excesses.values:
        weighted += excess * (c * (k - rank) - c * (c + 1) / 2)
        rank += c
    a1 = weighted / (k * (k - 1))
    spread = a0 - 2 * a1
    if a0 <= 0 or spread <= 1e-9 * a0:
        return None  # all excesses (nearly) equal: the data say nothing about the shape
    return 2 - a0 / spread


def _zhang_shape(excesses: _Excesses) -> float | None:
    """Zhang & Stephens' (Technometrics 2009) estimate of the GPD shape: the posterior mean of
    theta = -shape / scale over a grid of m = 20 + sqrt(k) values (its profile likelihood is
    explicit: the shape given theta is the mean of ln(1 + theta x)), then the shape given that
    theta. Defined for every shape, nearly as efficient as maximum likelihood where that
    exists, and what PSIS (Vehtari et al. 2024) fits its tails with; the excesses are grouped
    by bin, so the cost is m (at most 40) times the bins above the threshold, not the
    samples."""
    k, values = excesses.count, excesses.values
    if k < 3 or values[-1][0] <= values[0][0]:
        return None
    xs = [x for x, _ in values]
    counts = [c for _, c in values]
    theta = _posterior_theta(xs, counts, _excess_at_rank(values, int(k / 4 + 0.5)), k)
    if theta is None:
        return None
    estimate = _mean_log1p(theta, xs, counts, k)
    return estimate if math.isfinite(estimate) else None


def _posterior_theta(xs: list[float], counts: list[int], quartile: float, k: int) -> float | None:
    """The posterior mean of theta over Zhang & Stephens' grid (their prior: dense near
    -1 / largest excess, the heaviest shapes, with a scale of 3 first quartiles)."""
    log_likelihoods, thetas = [], []
    for theta in _zhang_grid(xs[-1], quartile, k):
        shape = _mean_log1p(theta, xs, counts, k)
        if theta == 0 or shape == 0 or theta / shape <= 0:
            continue
        log_likelihoods.append(k * (math.log(theta / shape) - shape - 1))
        thetas.append(theta)
    return _posterior_mean(thetas, log_likelihoods) if thetas else None


def _zhang_grid(largest: float, quartile: float, k: int) -> list[float]:
    """Zhang & Stephens' grid of theta (their prior: dense near -1 / largest excess, the
    heaviest shapes, with a scale of 3 first quartiles); empty where the excesses give none."""
    if quartile <= 0 or largest <= 0:
        return []
    # Zhang's m = 20 + sqrt(k), at most 40: past k = 400 more points move the estimate by
    # under 1e-4 (scratch check, k up to 5,000) and cost a logarithm per bin each.
    m = 20 + min(math.isqrt(k), _ZHANG_MAX_EXTRA_POINTS)
    return [
        -1 / largest - (1 - math.sqrt(m / (j - 0.5))) / (_ZHANG_PRIOR_SCALE * quartile)
        for j in range(1, m + 1)
    ]


def _posterior_mean(thetas: list[float], log_likelihoods: list[float]) -> float:
    """The mean of theta under the softmax of the log-likelihoods: the posterior's."""
    top = max(log_likelihoods)
    weights = [math.exp(ll - top) for ll in log_likelihoods]
    weighted: float = sum(map(mul, weights, thetas))
    return weighted / sum(weights)


def _mean_log1p(theta: float, xs: list[float], counts: list[int], k: int) -> float:
    """The mean of ln(1 + theta x) over the k grouped excesses (maps: the fit's inner loop)."""
    logs: Iterable[float] = map(math.log1p, map(mul, repeat(theta, len(xs)), xs))
    total: float = sum(map(mul, counts, logs))
    return total / k


def _excess_at_rank(values: list[tuple[float, int]], rank: int) -> float:
    """The excess of ascending rank `rank` (1-based) among the grouped excesses."""
    seen = 0
    for excess, c in values:
        seen += c
        if seen >= rank:
            return excess
    return values[-1][0]


def _lacks_its_top(raw: float, n: int, fit: TailFit) -> bool:
    """Whether the window would miss amounts past the high edge that matter to its shape:
    a heavy reading, and enough samples that some lie past the edge (`TailFit.truncated_at`)."""
    return (
        fit.truncated_at > 0
        and raw > fit.truncated_above
        and n * fit.truncated_at >= fit.truncated_min_expected
    )


def _read_as_truncated(excesses: _Excesses, raw: float, n: int, fit: TailFit) -> float:
    """The shape of `excesses` read as right-truncated at the edge where the tail as scored
    (shrunk, with its margin) puts `TailFit.truncated_at`; the edge moves with the shape,
    so twice. Where an excess lies past the edge (a row that fed before the tail moved) the
    window is not truncated there, and the estimate so far stands."""
    k, values = excesses.count, excesses.values
    mean_excess = excesses.total / k
    xs, counts = [x for x, _ in values], [c for _, c in values]
    # Zhang & Stephens' positive thetas (heavy tails) with the sum of ln(1 + theta x) over
    # the excesses: all the truncated likelihood needs of the data, whatever the edge.
    quartile = _excess_at_rank(values, int(k / 4 + 0.5))
    grid = [
        (theta, k * _mean_log1p(theta, xs, counts, k))
        for theta in _zhang_grid(xs[-1], quartile, k)
        if theta > 0
    ]
    estimate = raw
    for _ in range(_TRUNCATION_ROUNDS):
        scored = _shrunk_shape(min(estimate, fit.shape_cap), k, fit)
        edge = _excess_at_rarity(scored, mean_excess * (1 - scored), k / n, fit.truncated_at)
        if edge <= xs[-1] or not grid:
            break
        estimate = _truncated_shape(xs, counts, k, grid, edge)
    return estimate


def _excess_at_rarity(shape: float, scale: float, exceedance: float, rarity: float) -> float:
    """The excess over the threshold that a GPD tail covering `exceedance` puts at `rarity`."""
    if shape < 1e-9:
        return scale * math.log(exceedance / rarity)
    return scale / shape * math.expm1(-shape * math.log(rarity / exceedance))


def _truncated_shape(
    xs: list[float], counts: list[int], k: int, grid: list[tuple[float, float]], edge: float
) -> float:
    """Zhang & Stephens' estimate (`_zhang_shape`) with every excess known to lie below
    `edge`: each density is divided by the GPD's P(excess < edge). For each (theta, sum of
    ln(1 + theta x)) of the grid the profile likelihood is the truncated one at its best
    shape (`_truncated_best`); the shape is read at the posterior mean of theta."""
    log_likelihoods = [_truncated_best(theta, log_sum, k, edge)[1] for theta, log_sum in grid]
    theta = _posterior_mean([t for t, _ in grid], log_likelihoods)
    return _truncated_best(theta, k * _mean_log1p(theta, xs, counts, k), k, edge)[0]


def _truncated_best(theta: float, log_sum: float, k: int, edge: float) -> tuple[float, float]:
    """(shape, log-likelihood) at the shape that maximises the truncated GPD likelihood for
    this theta (= shape / scale), given log_sum = sum of ln(1 + theta x) over the excesses.

    Its derivative in the shape is k (g(shape) - shape) / shape^2, with g(shape) = log_sum / k
    + reach q / (1 - q), q = exp(-reach / shape) the GPD's P(excess >= edge) and reach =
    ln(1 + theta edge); so the maximum is g's first fixed point, reached by iterating g
    from log_sum / k (Zhang & Stephens' own shape, where the truncation is nothing): g
    rises, so the iterates climb to it. Where g never meets the line (a window so cut off
    that any heavier shape fits it better) the shape stops at the range's top."""
    reach = math.log1p(theta * edge)
    untruncated = log_sum / k
    shape = untruncated
    for _ in range(_TRUNCATED_STEPS):
        past = math.exp(-reach / shape)
        following = untruncated + reach * past / (1 - past)
        if following >= _MAX_TRUNCATED_SHAPE:
            shape = _MAX_TRUNCATED_SHAPE
            break
        converged = following - shape < _TRUNCATED_TOLERANCE
        shape = following
        if converged:
            break
    below = -math.expm1(-reach / shape)  # P(excess < edge)
    log_likelihood = k * (math.log(theta / shape) - math.log(below)) - (1 / shape + 1) * log_sum
    return shape, log_likelihood


def _shrunk_shape(estimate: float | None, k: int, fit: TailFit) -> float:
    if estimate is None:
        estimate, k = fit.prior_shape, 0
    shrunk = (k * estimate + fit.prior_weight * fit.prior_shape) / (k + fit.prior_weight)
    # The standard error of a GPD shape from k excesses is about (1 + shape) / sqrt(k): the
    # maximum-likelihood bound, which Zhang & Stephens' estimate nearly reaches; PWM's is
    # larger past a shape of ~0.3 and infinite past 0.5.
    margin = fit.shape_margin * (1 + max(shrunk, 0.0)) / math.sqrt(max(k, 1) + fit.prior_weight)
    return min(max(shrunk + margin, 0.0), _MAX_SHAPE)


def _knots(
    keys: list[int], at_or_above: list[int], min_count: int
) -> tuple[list[float], list[float]]:
    """Empirical P(amount >= lower edge of a bin), from the median up to where fewer than
    `min_count` samples lie above; thinned to knots each `_KNOT_RATIO` rarer than the last.
    The bins below the median (about half) are skipped, not walked."""
    n = at_or_above[0]
    trusted = _count_at_least(at_or_above, min_count)  # the bins walked up to the last
    last = (keys[trusted - 1], at_or_above[trusted - 1] / n) if trusted else (keys[0], 1.0)
    kept: list[tuple[int, float]] = []  # (bin, share at or above its lower edge)
    # The first bin with at most half the samples at or above it: share <= 0.5, exactly.
    for index in range(bisect_left(at_or_above, -n / 2, key=neg), trusted):
        share = at_or_above[index] / n
        if not kept or share * _KNOT_RATIO <= kept[-1][1]:
            kept.append((keys[index], share))
    if not kept or kept[-1][0] != last[0]:
        kept.append(last)
    kept = kept[-64:]
    return [bin_bounds(b)[0] for b, _ in kept], [share for _, share in kept]
