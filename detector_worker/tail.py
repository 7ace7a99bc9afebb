"""Tail probability of an amount under a scope's fitted tail, and its z-equivalent. Pure.

The baseline worker fits the tail (baseline_worker/tail.py); this side only evaluates it,
a few float operations per transaction.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date

from schemas import TailModel


@dataclass(frozen=True, slots=True)
class HeldTail:
    """A `TailModel` as the detector keeps it: knots in compact arrays (8 bytes a value)."""

    amounts: array[float]
    survival: array[float]
    threshold: float
    exceedance: float
    shape: float
    scale: float
    log_bin_ratio: float
    level_ratio: float
    # Each UTC hour's level times `level_ratio` (None: no time-of-day seasonality).
    hour_levels: array[float] | None = None
    # The trend's change of ln(level) per day, and the day (a date ordinal, UTC) for which
    # `level_ratio` is the level: another day's amounts are read at their own day's level.
    level_slope: float = 0.0
    level_day: int = 0
    # Each UTC weekday's level (Monday first; None: no weekly seasonality), a factor on the
    # hour's: `TailModel.weekday_ratios`.
    weekday_levels: array[float] | None = None
    # The window's top price past which the tail is the fixed-price rule's (0.0: none):
    # `TailModel.top_price`.
    top_price: float = 0.0
    # The merchant's own shape where its category peers' cap lowered it (0.0: not capped):
    # `TailModel.uncapped_shape`, never read by the scorer; kept so that the baseline a
    # verdict or an alert carries is the one published.
    uncapped_shape: float = 0.0

    @classmethod
    def of(cls, model: TailModel, level_day: date | None = None) -> HeldTail:
        """`level_day`: the UTC day the model's level is for, its baseline's window's last
        day (`Baseline.last_day`); None: no trend is read."""
        day = 0 if level_day is None else level_day.toordinal()
        return cls(
            array("d", model.amounts),
            array("d", model.survival),
            model.threshold,
            model.exceedance,
            model.shape,
            model.scale,
            math.log(model.bin_ratio),
            model.level_ratio,
            None
            if model.hour_ratios is None
            else array("d", (model.level_ratio * r for r in model.hour_ratios)),
            model.level_slope if day else 0.0,
            day,
            None if model.weekday_ratios is None else array("d", model.weekday_ratios),
            model.top_price or 0.0,
            model.uncapped_shape or 0.0,
        )

    def model(self) -> TailModel:
        return TailModel(
            amounts=list(self.amounts),
            survival=list(self.survival),
            threshold=self.threshold,
            exceedance=self.exceedance,
            shape=self.shape,
            scale=self.scale,
            bin_ratio=math.exp(self.log_bin_ratio),
            level_ratio=self.level_ratio,
            level_slope=self.level_slope,
            hour_ratios=None
            if self.hour_levels is None
            else [level / self.level_ratio for level in self.hour_levels],
            weekday_ratios=None if self.weekday_levels is None else list(self.weekday_levels),
            top_price=self.top_price or None,
            uncapped_shape=self.uncapped_shape or None,
        )


# The trend's level is never read beyond this factor of the window's (baseline_worker.stats).
_MAX_LEVEL_RATIO = 2.0


def _level(tail: HeldTail, hour: int | None, day: int | None) -> float:
    """The scope's level at `hour` (UTC hour of day; None: the level of the whole day) of
    `day` (a UTC date ordinal, its weekday's level included; None: the baseline's own day,
    any weekday)."""
    level = tail.level_ratio if hour is None or tail.hour_levels is None else tail.hour_levels[hour]
    if day is None:
        return level
    if tail.weekday_levels is not None:
        level *= tail.weekday_levels[_weekday(day)]
    if not tail.level_slope or day == tail.level_day:
        return level
    ratio = tail.level_ratio * math.exp(tail.level_slope * (day - tail.level_day))
    ratio = min(max(ratio, 1 / _MAX_LEVEL_RATIO), _MAX_LEVEL_RATIO)
    return level * ratio / tail.level_ratio


def _weekday(day: int) -> int:
    """`date.fromordinal(day).weekday()` without building the date: day 1 was a Monday."""
    return (day + 6) % 7


def survival(
    tail: HeldTail, amount: float, hour: int | None = None, day: int | None = None
) -> float:
    """P(amount >= x): the empirical knots where they reach, the fitted Pareto tail past them,
    read at the lower edge of the amount's histogram bin (after taking out the level's trend
    at `day`, and at `hour` the hour of day's level). A top price or less is never read past
    the top price: its levels move the mix of a price list, not the prices."""
    step = tail.log_bin_ratio
    read = math.exp(math.floor(math.log(amount / _level(tail, hour, day)) / step) * step)
    if read > tail.top_price > 0 and amount < tail.top_price * math.exp(step):
        read = tail.top_price
    amount = read  # from here on, the amount as the knots read it
    amounts, shares = tail.amounts, tail.survival
    if amount <= amounts[0]:
        return shares[0]
    i = bisect_right(amounts, amount)
    if i < len(amounts):
        return _between(amounts[i - 1], shares[i - 1], amounts[i], shares[i], amount)
    return min(shares[-1], _pareto_tail(tail, amount))


def bin_share(tail: HeldTail, amount: float) -> float:
    """At most the share of the scope's samples in the histogram bin of `amount`: the drop
    of the survival across the bin, or, below the first knot (where the knots say nothing),
    every sample below the bin's upper edge. A top price's share is the drop across its
    own knots (its levels move the mix, not the price)."""
    step = tail.log_bin_ratio
    if 0 < tail.top_price <= amount < tail.top_price * math.exp(step):
        return tail.survival[-2] - tail.survival[-1]
    index = math.floor(math.log(amount / tail.level_ratio) / step)
    next_bin = math.exp((index + 1.5) * step) * tail.level_ratio  # inside the next bin
    above = survival(tail, next_bin)
    if math.exp(index * step) < tail.amounts[0] * (1 - 1e-9):
        return 1.0 - above
    return max(survival(tail, amount) - above, 0.0)


def _between(x0: float, p0: float, x1: float, p1: float, x: float) -> float:
    """Log-log interpolation: exact for a power law, close for any smooth tail."""
    weight = math.log(x / x0) / math.log(x1 / x0)
    return math.exp(math.log(p0) + weight * (math.log(p1) - math.log(p0)))


def repricing_band(tail: HeldTail, hour: int | None = None, day: int | None = None) -> float:
    """Up to where an amount above the scope's top price is a repricing (0.0: no top price),
    before the share the detector allows (`ScoringConfig.top_price_reprice`): the price as
    charged, or moved up by a level above 1 (an inflation moves every price; a level below
    1 moves a price list's mix, not its prices, as in `survival`)."""
    if not tail.top_price:
        return 0.0
    return tail.top_price * max(1.0, _level(tail, hour, day))


def _pareto_tail(tail: HeldTail, amount: float) -> float:
    excess = max(amount - tail.threshold, 0.0) / tail.scale
    if tail.shape < 1e-9:
        return tail.exceedance * math.exp(-excess)
    return tail.exceedance * math.exp(-math.log1p(tail.shape * excess) / tail.shape)
