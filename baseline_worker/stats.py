"""Baseline maths from running sums, pure: the same code turns PostgreSQL's daily rollup and
a benchmark's in-memory stream into mean, standard deviation and their log-scale twins."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import ClassVar, Literal, Self

from baseline_worker.histogram import GAMMA

# Enough digits that sums of squared amounts (up to 10^28 each) never round.
_PRECISION = 80


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of amounts and of ln(amount)."""

    count: int = 0
    total: Decimal = Decimal(0)
    total_sq: Decimal = Decimal(0)
    log_total: float = 0.0
    log_total_sq: float = 0.0

    @classmethod
    def of(cls, amount: Decimal) -> "Moments":
        log_amount = math.log(amount)
        with localcontext(prec=_PRECISION):
            return cls(1, amount, amount * amount, log_amount, log_amount * log_amount)

    def __add__(self, other: "Moments") -> "Moments":
        with localcontext(prec=_PRECISION):
            return Moments(
                self.count + other.count,
                self.total + other.total,
                self.total_sq + other.total_sq,
                self.log_total + other.log_total,
                self.log_total_sq + other.log_total_sq,
            )

    def __sub__(self, other: "Moments") -> "Moments":
        with localcontext(prec=_PRECISION):
            return Moments(
                self.count - other.count,
                self.total - other.total,
                self.total_sq - other.total_sq,
                self.log_total - other.log_total,
                self.log_total_sq - other.log_total_sq,
            )

    @property
    def mean(self) -> float:
        return float(self.total / self.count) if self.count else 0.0

    @property
    def stddev(self) -> float:
        """Sample standard deviation, exact up to the final square root (decimal sums)."""
        if self.count < 2:
            return 0.0
        with localcontext(prec=_PRECISION):
            variance = (self.total_sq - self.total * self.total / self.count) / (self.count - 1)
        return math.sqrt(max(float(variance), 0.0))

    @property
    def log_mean(self) -> float:
        return self.log_total / self.count if self.count else 0.0

    @property
    def log_stddev(self) -> float:
        if self.count < 2:
            return 0.0
        variance = (self.log_total_sq - self.log_total**2 / self.count) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))


@dataclass(frozen=True)
class DayWeights:
    """Sums over a window's samples of d, d² and d · ln(amount), d being the sample's day
    in the window (0 for the first): with `Moments`, a least-squares line through ln(amount)
    against the day, i.e. how fast the scope's level moves."""

    days: float = 0.0
    days_sq: float = 0.0
    log_days: float = 0.0

    @classmethod
    def of(cls, day_index: int, moments: Moments) -> "DayWeights":
        return cls(
            moments.count * day_index,
            moments.count * day_index * day_index,
            moments.log_total * day_index,
        )

    def __add__(self, other: "DayWeights") -> "DayWeights":
        return DayWeights(
            self.days + other.days,
            self.days_sq + other.days_sq,
            self.log_days + other.log_days,
        )


# Which line `trend` draws through the window's days (TailFit.trend_through).
TrendThrough = Literal["means", "medians", "sharper"]
# A level change is trusted in proportion to 1 - (this / t^2) (positive-part James-Stein
# shrinkage): a slope within ~2 standard errors of zero counts for (almost) nothing.
_TREND_SHRINK = 4.0
_MAX_LEVEL_RATIO = 2.0
# A trend needs its samples spread over about a week (the variance of a uniform spread over
# 7 days is 4): a young scope's few days say nothing about its level's course, and a
# spurious slope would shift every amount it judges.
_MIN_DAY_VARIANCE = 4.0


@dataclass(frozen=True)
class Trend:
    """The line through ln(amount) by day, as far as the data trust it: `slope` is shrunk
    toward 0 (positive-part James-Stein), `spread` is the share of the window's log-scale
    standard deviation that is left once the trend is taken out."""

    slope: float = 0.0
    mean_day: float = 0.0
    spread: float = 1.0
    # ln(level) at `mean_day` over the window's average level: 0 for one line through the
    # window (it goes through the samples' centroid); not 0 for a bent one (`recent_level`).
    offset: float = 0.0

    def level_ratio(self, today_index: int) -> float:
        ratio = math.exp(self.offset + self.slope * (today_index - self.mean_day))
        return min(max(ratio, 1 / _MAX_LEVEL_RATIO), _MAX_LEVEL_RATIO)


def trend(
    moments: Moments,
    weights: DayWeights,
    medians: "DayMedians | None" = None,
    through: TrendThrough = "means",
) -> Trend:
    """How the scope's level moves over the window (no trend when the data show none): the
    line through every ln(amount) by day (`through="means"`), through the closed days'
    medians of ln(amount) (`"medians"`, `DayMedians`: a share of the amounts at one price
    that never moves, card checks of 1.00 among drifting purchases, flattens the first line
    by that share, not this one; docs/accuracy.md, round 6), or whichever of the two stands
    more standard errors out (`"sharper"`). The window's mean day and spread are the whole
    window's: the histogram the tail is fitted on is the whole window's."""
    n = moments.count
    if n < 3:
        return Trend()
    mean_day = weights.days / n
    day_variance = weights.days_sq / n - mean_day**2
    if day_variance < _MIN_DAY_VARIANCE:
        return Trend(mean_day=mean_day)
    log_variance = moments.log_stddev**2
    covariance = weights.log_days / n - mean_day * moments.log_total / n
    least_squares = covariance / day_variance
    # What the least-squares line leaves: no line through the same samples leaves less.
    residual = max(log_variance - least_squares**2 * day_variance, 1e-12)
    lines: list[tuple[float, float]] = []
    if through != "medians":
        lines.append((least_squares, least_squares**2 * n * day_variance / residual))
    if through != "means" and medians is not None:
        lines.append(medians.line())
    slope, t_squared = max(lines, key=lambda line: line[1], default=(0.0, 0.0))
    trusted = _shrunk(slope, t_squared)
    return _trend_of(trusted, mean_day, day_variance, log_variance, residual)


def _shrunk(slope: float, t_squared: float) -> float:
    """Positive-part James-Stein: a slope within ~2 standard errors of 0 is (nearly) 0."""
    return slope * max(0.0, 1 - _TREND_SHRINK / t_squared) if t_squared > 0 else 0.0


def _trend_of(
    trusted: float, mean_day: float, day_variance: float, log_variance: float, residual: float
) -> Trend:
    # The spread left is at least the least-squares line's residual: the medians' line can
    # be steeper than every sample's, and would otherwise "explain" more than the window's
    # whole variance (a majority at one moving price: the histogram narrowed to one bin).
    # The means' line, shrunk toward 0, never reaches the floor.
    left = max(log_variance - trusted**2 * day_variance, residual)
    spread = math.sqrt(left / log_variance) if log_variance > 0 else 1.0
    return Trend(trusted, mean_day, spread)


_LOG_GAMMA = math.log(GAMMA)


def day_log_median(bins: Mapping[int, int]) -> float:
    """The median of ln(amount) of a day's histogram (baseline_worker/histogram.py), the
    samples spread evenly across their 2 % bin: ops/migrations/019 computes the same in SQL.
    0.0 for an empty histogram."""
    half = sum(bins.values()) / 2
    below = 0
    for index, count in sorted(bins.items()):
        if count > 0 and below + count >= half:
            return _LOG_GAMMA * (index + (half - below) / count)
        below += count
    return 0.0


@dataclass(frozen=True)
class DayMedians:
    """Per closed day of the window, the median m of its ln(amount) and its sample count n,
    summed as a weighted least-squares line through the medians by day needs them (d is the
    day in the window, as in `DayWeights`): `trend`'s input through the medians. A day's
    median moves with the body of its amounts however many of them sit at one price below
    (or above) it, where a day's mean moves by the body's share only."""

    days: int = 0  # closed days with samples
    count: int = 0  # sum of n
    day_total: float = 0.0  # sum of n * d
    day_sq_total: float = 0.0  # sum of n * d^2
    median_total: float = 0.0  # sum of n * m
    day_median_total: float = 0.0  # sum of n * d * m
    median_sq_total: float = 0.0  # sum of n * m^2

    @classmethod
    def of_day(cls, day_index: int, count: int, log_median: float) -> "DayMedians":
        weighted = count * log_median
        return cls(
            1,
            count,
            count * day_index,
            count * day_index * day_index,
            weighted,
            weighted * day_index,
            weighted * log_median,
        )

    def __add__(self, other: "DayMedians") -> "DayMedians":
        return DayMedians(
            *(getattr(self, name) + getattr(other, name) for name in _DAY_MEDIAN_SUMS)
        )

    def shifted(self, offset: int) -> "DayMedians":
        """The same sums with every day counted `offset` days later (d - offset): the SQL
        keeps days from a fixed epoch, the trend counts them from the window's first day.
        Exact when the day sums are integers (the SQL's are)."""
        return DayMedians(
            self.days,
            self.count,
            self.day_total - offset * self.count,
            self.day_sq_total - 2 * offset * self.day_total + offset * offset * self.count,
            self.median_total,
            self.day_median_total - offset * self.median_total,
            self.median_sq_total,
        )

    def line(self) -> tuple[float, float]:
        """The slope of the line through the days' medians (each weighted by its samples, a
        median's variance being about c / n) and its t² (the slope over its standard error,
        squared; (0, 0) for fewer than 3 days or days spread over less than about a week).
        The standard error is the textbook one of a weighted fit, c estimated from the
        medians' own scatter about the line (days - 2 degrees of freedom): it needs no model
        of a median's noise (a point mass, 2 % bins and a day's few samples all change it),
        and a day-to-day level (a weekday's) counts as noise."""
        fitted = self.weighted_fit()
        if fitted is None:
            return 0.0, 0.0
        slope, s_dd, residual = fitted
        return slope, slope**2 * s_dd / residual

    def weighted_fit(self) -> tuple[float, float, float] | None:
        """`line`'s slope, the days' weighted sum of squares about their mean day, and the
        medians' scatter c about the line (a median's variance being c / n); None for fewer
        than 3 days or days spread over less than about a week."""
        n = self.count
        if self.days < 3 or n < 3:
            return None
        s_dd = self.day_sq_total - self.day_total**2 / n
        if s_dd / n < _MIN_DAY_VARIANCE:
            return None
        s_dm = self.day_median_total - self.day_total * self.median_total / n
        s_mm = self.median_sq_total - self.median_total**2 / n
        slope = s_dm / s_dd
        residual = max((s_mm - slope * s_dm) / (self.days - 2), 1e-12)
        return slope, s_dd, residual

    def slope(self) -> float:
        """The line's slope shrunk as `trend` shrinks it (~2 standard errors or nothing)."""
        return _shrunk(*self.line())


_DAY_MEDIAN_SUMS = tuple(DayMedians.__dataclass_fields__)


def recent_days(days: Sequence[DayMedians], last_day: int, count: int) -> DayMedians:
    """The sums of the closed days (each a `DayMedians.of_day`) among the last `count` up to
    day `last_day` of the window."""
    first = last_day - count + 1
    return sum((d for d in days if d.count and d.day_total >= first * d.count), DayMedians())


def recent_level(level: Trend, medians: DayMedians, recent: DayMedians) -> Trend:
    """Today's level and slope bent to the last days' medians (`recent`, a part of
    `medians`), for a scope whose window shows a trend: a drift that started mid-window is
    a bent line, and one line through the whole window, flattened by the days before the
    bend, reads today's level too low and its slope too flat (docs/accuracy.md, round 7).
    The recent days' level (their weighted mean median) and slope each depart from the
    window's line only as far as they stand out of their noise (positive-part James-Stein
    toward the window's line, as `trend` shrinks a slope toward 0): a straight drift keeps
    the window's line. `level` unchanged without a trend or with too few recent days."""
    fitted = recent.weighted_fit()
    if level.slope == 0 or fitted is None or medians.count == 0:
        return level
    recent_slope, s_dd, residual = fitted
    recent_day = recent.day_total / recent.count
    # The window's line on the medians' scale: the closed days' average moved along it to
    # every sample's mean day, where the line has the window's average level.
    average = medians.median_total / medians.count
    average += level.slope * (level.mean_day - medians.day_total / medians.count)
    on_line = average + level.slope * (recent_day - level.mean_day)
    bend = _shrunk_toward(recent.median_total / recent.count - on_line, residual / recent.count)
    slope = level.slope + _shrunk_toward(recent_slope - level.slope, residual / s_dd)
    offset = on_line + bend + slope * (level.mean_day - recent_day) - average
    return Trend(slope, level.mean_day, level.spread, offset)


def _shrunk_toward(departure: float, variance: float) -> float:
    """A departure from a line kept in proportion to 1 - 4 / t² (t² its square over its
    variance): positive-part James-Stein, as `_shrunk` keeps a slope."""
    return _shrunk(departure, departure**2 / variance if variance > 0 else 0.0)


def level_ratio(moments: Moments, weights: DayWeights, today_index: int) -> float:
    """Today's level of the amounts over the window's average level, from the line through
    ln(amount) by day: a slow inflation moves the whole distribution, and a window of past
    amounts then trails it. 1.0 when the data show no significant trend."""
    return trend(moments, weights).level_ratio(today_index)


HOURS = 24
# Seasonal levels (by hour of day, by weekday) are kept when their spread across seasons is
# this many standard deviations of a chi-square (k - 1 degrees of freedom) above what equal
# seasons would show: about p < 0.001, so a scope whose hours are alike keeps no hour level.
_HOUR_SIGNIFICANCE = 4.0
# Never narrow a window's histogram below this share of its spread.
_MIN_SPREAD = 0.3


@dataclass(frozen=True)
class Levels:
    """Per season (an hour of day, a weekday), the count and sum of ln(amount): with
    `Moments`, how far each season's level sits from the scope's. A subclass fixes the
    seasons' number (`size`) and keeps every season, seen or not."""

    size: ClassVar[int] = 0
    counts: tuple[int, ...] = ()
    log_totals: tuple[float, ...] = ()

    @classmethod
    def of_keys(
        cls, keys: Sequence[int], counts: Sequence[int], log_totals: Sequence[float]
    ) -> Self:
        """From the seasons that saw samples only (ascending or not) and their sums."""
        dense_counts, dense_logs = [0] * cls.size, [0.0] * cls.size
        for key, count, log_total in zip(keys, counts, log_totals, strict=True):
            dense_counts[key] += count
            dense_logs[key] += log_total
        return cls(tuple(dense_counts), tuple(dense_logs))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def __add__(self, other: Self) -> Self:
        return type(self)(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + b for a, b in zip(self.log_totals, other.log_totals, strict=True)),
        )


@dataclass(frozen=True)
class HourLevels(Levels):
    """Per UTC hour of day (0-23): a time-of-day seasonality."""

    size: ClassVar[int] = HOURS
    counts: tuple[int, ...] = (0,) * HOURS
    log_totals: tuple[float, ...] = (0.0,) * HOURS

    @classmethod
    def of_hours(
        cls, hours: Sequence[int], counts: Sequence[int], log_totals: Sequence[float]
    ) -> "HourLevels":
        return cls.of_keys(hours, counts, log_totals)


WEEKDAYS = 7


@dataclass(frozen=True)
class WeekdayLevels(Levels):
    """Per UTC weekday (0 Monday - 6 Sunday, as `date.weekday`): a weekly seasonality. With
    `day_totals`, the sum of the samples' days in the window (as `DayWeights.days`): a
    weekday's days are not the window's (four Mondays sit 6 days before four Sundays), so a
    trend would otherwise read as a weekly pattern (`detrended`)."""

    size: ClassVar[int] = WEEKDAYS
    counts: tuple[int, ...] = (0,) * WEEKDAYS
    log_totals: tuple[float, ...] = (0.0,) * WEEKDAYS
    day_totals: tuple[float, ...] = (0.0,) * WEEKDAYS

    @classmethod
    def of_weekdays(
        cls,
        weekdays: Sequence[int],
        counts: Sequence[int],
        log_totals: Sequence[float],
        day_totals: Sequence[float],
    ) -> "WeekdayLevels":
        """From the weekdays that saw samples only and their sums."""
        sums = cls.of_keys(weekdays, counts, log_totals)
        days = cls.of_keys(weekdays, counts, day_totals).log_totals
        return cls(sums.counts, sums.log_totals, days)

    def __add__(self, other: "WeekdayLevels") -> "WeekdayLevels":
        sums = Levels.__add__(self, other)
        days = tuple(a + b for a, b in zip(self.day_totals, other.day_totals, strict=True))
        return WeekdayLevels(sums.counts, sums.log_totals, days)

    def detrended(self, level: Trend) -> "WeekdayLevels":
        """Each weekday's log sum as if every sample sat at the window's average level: the
        trend's line taken out at the weekday's own days."""
        logs = tuple(
            log_total - level.slope * (day_total - count * level.mean_day)
            for count, log_total, day_total in zip(
                self.counts, self.log_totals, self.day_totals, strict=True
            )
        )
        return WeekdayLevels(self.counts, logs, self.day_totals)


def level_ratios(moments: Moments, seasons: Levels) -> tuple[float, ...] | None:
    """Each season's (hour's, weekday's) level over the scope's, or None when the seasons
    do not differ significantly. Empirical Bayes: the true deviations are taken as spread
    by tau^2 (estimated from how much more the seasons' means differ than sampling noise
    explains), and a season with n samples keeps tau^2 / (tau^2 + sigma^2 / n) of its
    observed deviation, so a quiet hour's few samples move its level little. The seasons
    may cover fewer days than `moments` (production keeps the closed days' only): each is
    read against the mean of the samples they hold, and `moments` gives only the log-scale
    variance."""
    n, variance = seasons.count, moments.log_stddev**2
    seen = [(c, t / c) for c, t in zip(seasons.counts, seasons.log_totals, strict=True) if c > 0]
    if n < 3 or variance <= 0 or len(seen) < 2:
        return None
    mean = sum(seasons.log_totals) / n
    spread = sum(c * (m - mean) ** 2 for c, m in seen) / variance
    freedom = len(seen) - 1
    if spread < freedom + _HOUR_SIGNIFICANCE * math.sqrt(2 * freedom):
        return None
    tau_sq = (spread - freedom) * variance / n
    ratios = []
    for count, log_total in zip(seasons.counts, seasons.log_totals, strict=True):
        deviation = log_total / count - mean if count else 0.0
        kept = tau_sq / (tau_sq + variance / count) if count else 0.0
        ratio = math.exp(kept * deviation)
        ratios.append(min(max(ratio, 1 / _MAX_LEVEL_RATIO), _MAX_LEVEL_RATIO))
    return tuple(ratios)


def level_spread(
    moments: Moments, seasons: Levels, ratios: Sequence[float], spread: float
) -> float:
    """`spread` (the share of the window's log-scale standard deviation left by the trend)
    once the seasons' (hours', weekdays') levels are taken out too: a window that mixes
    every hour's level is wider than any one hour's amounts, and a tail fitted on it is too
    heavy at every hour. The share is that of the samples the seasons hold (the closed
    days, in production); levels of hours and of weekdays are taken out one after the
    other, as if they were independent (every hour sees every weekday)."""
    n, log_variance = seasons.count, moments.log_stddev**2
    if n == 0 or log_variance <= 0:
        return spread
    explained = sum(c * math.log(r) ** 2 for c, r in zip(seasons.counts, ratios, strict=True)) / n
    return math.sqrt(max(spread**2 - explained / log_variance, _MIN_SPREAD**2))


# The hour-of-day levels (round 3) and the weekday levels (docs/accuracy.md, "Weekday
# levels") are the same arithmetic over 24 and 7 seasons.
hour_ratios = level_ratios
hour_spread = level_spread
weekday_ratios = level_ratios
