"""The baseline maths' input, read where the data is: the daily rollup over the window.

`baseline_rollup` (daily sums) and `baseline_rollup_bins` (daily amount histograms) are kept
by a trigger on `transactions` (ops/migrations/002, 007, 015), so a recompute reads at most
`window_days` rows (and their histogram bins) per scope however large the transactions table.
The window is whole UTC days: its last day (the newest day with transactions, today in the
steady state: `window_anchor`) and the `days - 1` days before it. The hours of
day, the weekdays and the days' medians are those of the closed days only, summed once a day
(ops/migrations/016, 018, 019): one row a scope each.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

from psycopg import AsyncConnection

from baseline_worker.histogram import bin_bounds, bin_of, bin_of_log
from baseline_worker.stats import DayMedians, DayWeights, HourLevels, Moments, WeekdayLevels
from baseline_worker.tail import unjudged_cutoff
from schemas import BaselineScope, ScopeKind
from schemas.types import EARLIEST_INSTANT

AGGREGATE_SQL = """
SELECT scope_kind, scope_name, currency, sum(sample_count)::bigint, sum(total), sum(total_sq),
       sum(log_total), sum(log_total_sq),
       sum(sample_count * (day - %(first_day)s))::double precision,
       sum(sample_count * (day - %(first_day)s) ^ 2)::double precision,
       sum(log_total * (day - %(first_day)s))
FROM baseline_rollup
WHERE day >= %(first_day)s AND day <= %(last_day)s
GROUP BY scope_kind, scope_name, currency
HAVING sum(sample_count) > 0
"""

# Re-sums the window's closed days into `baseline_window_bins` (ops/migrations/015) and moves
# their hours of day (016): a no-op but once a day. The rollup trigger touches neither, so
# both stay off the detector's write path.
ADVANCE_SQL = "SELECT baseline_window_advance(%(first_day)s, %(closed_last)s)"
# The days still filling (yesterday and today) are read from the daily histograms instead;
# a row that arrives for a closed day is caught up at the next recompute (`stale_scopes`).
OPEN_DAYS = 2

# One row a scope: its window's histogram as two pairs of arrays (bins, their counts), the
# closed days' sum (a bin once) and the open days' (a bin once a day); `_summed` adds them
# up. Re-grouping both parts by scope and bin in SQL, as before, sorted ~200,000 rows by
# scope name at every recompute (and ~400,000 at 10 M stored rows), the largest part of its
# time (docs/performance.md, session 8). `{only}` narrows both parts to some scopes.
_HISTOGRAM = """
SELECT scope_kind, scope_name, currency, closed_days.bins, closed_days.counts,
       open_days.bins, open_days.counts
FROM (
    SELECT scope_kind, scope_name, currency, array_agg(bin) AS bins,
           array_agg(sample_count) AS counts
    FROM baseline_window_bins
    WHERE true {only}
    GROUP BY scope_kind, scope_name, currency
) AS closed_days
FULL JOIN (
    SELECT scope_kind, scope_name, currency, array_agg(bin) AS bins,
           array_agg(sample_count) AS counts
    FROM baseline_rollup_bins
    WHERE day > %(closed_last)s AND day >= %(first_day)s AND day <= %(last_day)s {only}
    GROUP BY scope_kind, scope_name, currency
) AS open_days USING (scope_kind, scope_name, currency)
"""
HISTOGRAM_SQL = _HISTOGRAM.format(only="")
_ONLY = """AND (scope_kind, scope_name, currency) IN (
            SELECT * FROM unnest(%(kinds)s::text[], %(names)s::text[], %(currencies)s::text[]))"""
# The histograms of the scopes just re-summed (`RESUM_SQL`, ops/migrations/017).
SCOPED_HISTOGRAM_SQL = _HISTOGRAM.format(only=_ONLY)
RESUM_SQL = "SELECT baseline_window_resum(%(kinds)s, %(names)s, %(currencies)s)"


ScopeKey = tuple[str, str, str]  # (scope_kind, scope_name, currency)


def stale_scopes(
    counts: Mapping[ScopeKey, int], histograms: Mapping[ScopeKey, Mapping[int, int]]
) -> list[ScopeKey]:
    """The scopes whose summed histogram disagrees with their moments' count: both come from
    the same rows (the rollup trigger feeds them in one statement), so a difference means
    rows arrived for a closed day after it was summed."""
    return sorted(
        scope
        for scope in counts.keys() | histograms.keys()
        if counts.get(scope, 0) != sum(histograms.get(scope, {}).values())
    )


async def _histograms(
    conn: AsyncConnection, query: str, params: Mapping[str, object]
) -> dict[ScopeKey, dict[int, int]]:
    # Binary: psycopg reads the ~200,000 array elements a quarter as fast from their text.
    rows = await (await conn.execute(query, params, binary=True)).fetchall()
    return {(kind, name, currency): _summed(*parts) for kind, name, currency, *parts in rows}


def _summed(
    closed_bins: list[int] | None,
    closed_counts: list[int] | None,
    open_bins: list[int] | None,
    open_counts: list[int] | None,
) -> dict[int, int]:
    """The closed days' histogram plus the open days' (either may be missing: NULL), whose
    bins may come twice (yesterday's and today's)."""
    summed = dict(zip(closed_bins or (), closed_counts or (), strict=True))
    for bin_index, count in zip(open_bins or (), open_counts or (), strict=True):
        summed[bin_index] = summed.get(bin_index, 0) + count
    return summed


# One row a scope: its closed days' hours of day (ops/migrations/016), summed when the window
# last moved; the open days' hours are not kept anywhere (the trigger stays as it is).
HOURS_SQL = """
SELECT scope_kind, scope_name, currency, hours, sample_counts, log_totals
FROM baseline_window_hours
"""

# The same closed days by UTC weekday (ops/migrations/018, summed from the hours' days), with
# the sum of the samples' days counted from `WEEKDAY_EPOCH`.
WEEKDAYS_SQL = """
SELECT scope_kind, scope_name, currency, weekdays, sample_counts, log_totals, day_totals
FROM baseline_window_weekdays
"""
WEEKDAY_EPOCH = date(2000, 1, 3)

# The closed days' medians of ln(amount) summed for a line through them (ops/migrations/019),
# the days counted from `WEEKDAY_EPOCH` too.
MEDIANS_SQL = """
SELECT scope_kind, scope_name, currency, day_count, sample_count, day_total, day_sq_total,
       median_total, day_median_total, median_sq_total
FROM baseline_window_medians
"""


@dataclass(frozen=True)
class ScopeStats:
    scope: BaselineScope
    moments: Moments
    # The window's amount histogram (baseline_worker/histogram.py): bin -> count.
    bins: Mapping[int, int] = field(default_factory=dict)
    # The samples' days in the window, for the level's trend (stats.level_ratio).
    day_weights: DayWeights = field(default_factory=DayWeights)
    # The closed days' samples by hour of day, for a time-of-day level (stats.hour_ratios).
    hours: HourLevels = field(default_factory=HourLevels)
    # The closed days' samples by weekday, for a weekly level (stats.weekday_ratios).
    weekdays: WeekdayLevels = field(default_factory=WeekdayLevels)
    # The closed days' medians of ln(amount), for a trend a point mass does not flatten
    # (stats.trend through the medians).
    medians: DayMedians = field(default_factory=DayMedians)
    # The same closed days one by one (each a `DayMedians.of_day`), for a recent level
    # (stats.recent_level); empty where they are not read.
    closed_medians: tuple[DayMedians, ...] = ()
    # The window's top samples that fed it without a verdict (scored while no baseline
    # existed), by bin: at least those past the tail's knots (`unjudged_cutoff`), which the
    # tail fit judges (`baseline_worker.tail.TailFit.unjudged_rarity`).
    unjudged: Mapping[int, int] = field(default_factory=dict)
    # A merchant scope's category (its latest row's, ops/migrations/025): its peers are that
    # category's merchants in the same currency (baseline_worker.peers). None: a category
    # scope.
    category: str | None = None


# The amounts kept out that recur in a scope's window (ops/migrations/020, 022).
RECURRING_PRICES_SQL = """
SELECT scope_kind, scope_name, currency, amount, sample_count, day_total, day_sq_total
FROM baseline_recurring_kept_prices(%(first_day)s, %(last_day)s)
"""
# How often an amount kept out must come in a window, on two days at least, to be a price.
PRICE_RECURRENCES = 2


@dataclass(frozen=True)
class RecurringPrice:
    """An amount judged high or critical (so kept out) `count` times in a scope's window, on
    days (counted from the window's first) summing to `day_total`."""

    amount: Decimal
    count: int
    day_total: int
    day_sq_total: int


def recurs_as_price(price: RecurringPrice) -> bool:
    """Whether a kept-out amount counts back as a price: `PRICE_RECURRENCES` times or more,
    and not all on one day (their days' variance is 0 exactly when they are): a burst of one
    amount within a day is no price (ops/migrations/022's HAVING)."""
    return (
        price.count >= PRICE_RECURRENCES
        and price.count * price.day_sq_total != price.day_total * price.day_total
    )


def with_recurring_prices(stats: ScopeStats, prices: Iterable[RecurringPrice]) -> ScopeStats:
    """The scope's window with the kept-out amounts that recur counted in, as if they had
    fed it: a second price of a fixed-price scope (an upgrade tier) that its first charges
    happened not to show is otherwise judged high at every charge, kept out, and never
    learned (docs/accuracy.md, round 11). A jump, a random amount, rarely recurs to the
    cent. The hours, weekdays and days' medians (levels a few per cent of the rows barely
    move) are left as they are."""
    moments, weights, bins = stats.moments, stats.day_weights, Counter(stats.bins)
    for price in prices:
        log_amount = math.log(float(price.amount))
        with localcontext(prec=80):
            moments += Moments(
                price.count,
                price.amount * price.count,
                price.amount * price.amount * price.count,
                log_amount * price.count,
                log_amount * log_amount * price.count,
            )
        weights += DayWeights(price.day_total, price.day_sq_total, log_amount * price.day_total)
        bins[bin_of_log(log_amount)] += price.count
    return replace(stats, moments=moments, day_weights=weights, bins=bins)


def _with_recurring(
    stats: list[ScopeStats], prices: Mapping[ScopeKey, Sequence[RecurringPrice]]
) -> list[ScopeStats]:
    return [
        with_recurring_prices(s, found)
        if (found := prices.get((s.scope.kind.value, s.scope.name, s.scope.currency)))
        else s
        for s in stats
    ]


async def _recurring_prices(
    conn: AsyncConnection, window: Mapping[str, object]
) -> dict[ScopeKey, list[RecurringPrice]]:
    found: dict[ScopeKey, list[RecurringPrice]] = {}
    for kind, name, currency, *price in await (
        await conn.execute(RECURRING_PRICES_SQL, window)
    ).fetchall():
        found.setdefault((kind, name, currency), []).append(RecurringPrice(*price))
    return found


# The window's rows that fed it unjudged (scored while no baseline existed; ops/migrations/023).
UNJUDGED_SCOPES_SQL = """
SELECT scope_kind, scope_name, currency FROM baseline_unjudged_scopes(%(first_day)s, %(last_day)s)
"""
UNJUDGED_SQL = """
SELECT scope_kind, scope_name, currency, amount, sample_count
FROM baseline_unjudged_top(%(first_day)s, %(last_day)s, %(kinds)s::text[], %(names)s::text[],
                           %(currencies)s::text[], %(floors)s::numeric[])
"""


def unjudged_top(bins: Mapping[int, int], unjudged: Mapping[Decimal, int]) -> dict[int, int]:
    """The unjudged amounts in the window's top bins (`unjudged_cutoff`), by bin; but an
    amount that recurs to the cent, which is a price (a fare the history charged again and
    again), as a kept-out amount that recurs counts back (`recurs_as_price`): judged away
    with the spikes, its next charge would read as critical."""
    cutoff = unjudged_cutoff(bins)
    found: Counter[int] = Counter()
    if cutoff is not None:
        for amount, count in unjudged.items():
            if 0 < count < PRICE_RECURRENCES and (b := bin_of(amount)) >= cutoff:
                found[b] += count
    return dict(found)


async def _with_unjudged(
    conn: AsyncConnection, window: Mapping[str, object], stats: list[ScopeStats]
) -> list[ScopeStats]:
    """`stats` with each scope's top samples that fed it unjudged (`ScopeStats.unjudged`):
    the scopes that have any listed first (a new scope's first rows in a steady stream), and
    only those probed for their window's top. The two reads see two snapshots: a row stored
    between them (a backfill still loading) is judged at the next recompute."""
    listed = {
        tuple(row) for row in await (await conn.execute(UNJUDGED_SCOPES_SQL, window)).fetchall()
    }
    if not listed:
        return stats
    columns: dict[str, list[object]] = {"kinds": [], "names": [], "currencies": [], "floors": []}
    for s in stats:
        key = (s.scope.kind.value, s.scope.name, s.scope.currency)
        if key in listed and (cutoff := unjudged_cutoff(s.bins)) is not None:
            columns["kinds"].append(key[0])
            columns["names"].append(key[1])
            columns["currencies"].append(key[2])
            # A hair under the bin's lower edge: the bin itself decides below (float edges).
            columns["floors"].append(Decimal(repr(bin_bounds(cutoff)[0])) * Decimal("0.999999"))
    found: dict[ScopeKey, dict[Decimal, int]] = {}
    for kind, name, currency, amount, count in await (
        await conn.execute(UNJUDGED_SQL, {**window, **columns})
    ).fetchall():
        found.setdefault((kind, name, currency), {})[amount] = count
    return [
        replace(s, unjudged=unjudged_top(s.bins, unjudged))
        if (unjudged := found.get((s.scope.kind.value, s.scope.name, s.scope.currency)))
        else s
        for s in stats
    ]


# The newest day with rows, today at most (baseline_rollup_day_idx: one index probe), and
# within the instants a client may state: a row stored before that range existed (year 1,
# 1 BC) would otherwise make a window Python cannot hold, and no recompute would finish.
ANCHOR_SQL = """
SELECT max(day) FROM baseline_rollup WHERE day <= %(today)s AND day >= %(earliest)s
"""


async def window_anchor(conn: AsyncConnection, now: datetime) -> date:
    """The window's last day: the newest UTC day that holds transactions feeding the
    baselines (a day of nothing but high alerts does not count), today at most.

    The window follows event time, not the clock. In the steady state the two are the same
    day (but in the minutes after midnight UTC before the new day's first row). A history
    loaded or replayed after the fact (its days in the past) would otherwise be judged
    against a window that ends today: its early days would see only the part of their 30
    days that lies within the clock's, and the trend would be read days ahead of them. A
    system with no traffic for a while keeps the baselines of its last days rather than
    letting the clock empty them. A transaction dated in the future (a clock ahead)
    never moves the window past today."""
    today = now.astimezone(UTC).date()
    bounds = {"today": today, "earliest": EARLIEST_INSTANT.date()}
    newest = (await (await conn.execute(ANCHOR_SQL, bounds)).fetchone() or (None,))[0]
    return today if newest is None else newest


def window_days(last_day: date, days: int) -> tuple[date, date]:
    return last_day - timedelta(days=days - 1), last_day


def _window(last_day: date, days: int) -> dict[str, date]:
    first_day, last_day = window_days(last_day, days)
    closed_last = last_day - timedelta(days=OPEN_DAYS)
    return {"first_day": first_day, "last_day": last_day, "closed_last": closed_last}


async def advance_window(conn: AsyncConnection, last_day: date, days: int) -> None:
    await conn.execute(ADVANCE_SQL, _window(last_day, days))


async def budget_closed_days(conn: AsyncConnection, seconds: float) -> None:
    """How long, in the transaction under way, one statement may go on computing closed
    days' hours and medians before it leaves the rest to the next recompute (one day at
    least; ops/migrations/021): a backlog of every closed day at 10 M stored rows outlived the
    bound, was cut and rolled back, and no baseline was ever published again."""
    await conn.execute(
        "SELECT set_config('jalytics.closed_days_budget', %s, true)", (f"{seconds:g} seconds",)
    )


async def _weekdays(conn: AsyncConnection, first_day: date) -> dict[ScopeKey, WeekdayLevels]:
    """One row a scope; the samples' days counted from the window's first day, as the trend
    counts them (`DayWeights`)."""
    offset = (first_day - WEEKDAY_EPOCH).days
    return {
        (kind, name, currency): WeekdayLevels.of_weekdays(
            seen, counts, log_totals, [d - n * offset for d, n in zip(days, counts, strict=True)]
        )
        for kind, name, currency, seen, counts, log_totals, days in (
            await (await conn.execute(WEEKDAYS_SQL)).fetchall()
        )
    }


async def _medians(conn: AsyncConnection, first_day: date) -> dict[ScopeKey, DayMedians]:
    """One row a scope, its days counted from the window's first day (`DayWeights`)."""
    offset = (first_day - WEEKDAY_EPOCH).days
    return {
        (kind, name, currency): DayMedians(*sums).shifted(offset)
        for kind, name, currency, *sums in (await (await conn.execute(MEDIANS_SQL)).fetchall())
    }


# Each merchant's category (ops/migrations/025): one row a merchant and currency.
CATEGORIES_SQL = "SELECT merchant, currency, category FROM merchant_categories"


async def _with_categories(conn: AsyncConnection, stats: list[ScopeStats]) -> list[ScopeStats]:
    categories = {
        (merchant, currency): category
        for merchant, currency, category in await (await conn.execute(CATEGORIES_SQL)).fetchall()
    }
    return [
        replace(s, category=category)
        if s.scope.kind is ScopeKind.MERCHANT
        and (category := categories.get((s.scope.name, s.scope.currency))) is not None
        else s
        for s in stats
    ]


async def aggregate(conn: AsyncConnection, last_day: date, days: int) -> list[ScopeStats]:
    """Every scope's moments, histogram, hours, weekdays and days' medians over the window
    of `days` days to `last_day` (`advance_window` first), and each merchant's category."""
    window = _window(last_day, days)
    moments = await (await conn.execute(AGGREGATE_SQL, window)).fetchall()
    histograms = await _histograms(conn, HISTOGRAM_SQL, window)
    stale = stale_scopes({(k, n, c): count for k, n, c, count, *_ in moments}, histograms)
    if stale:
        # Late rows for closed days: re-sum those scopes now rather than at the next day's
        # move, with the hours of the days they changed (ops/migrations/017), and read their
        # histograms again.
        kinds, names, currencies = (list(column) for column in zip(*stale, strict=True))
        scoped: dict[str, object] = {"kinds": kinds, "names": names, "currencies": currencies}
        await conn.execute(RESUM_SQL, scoped)
        histograms |= await _histograms(conn, SCOPED_HISTOGRAM_SQL, {**window, **scoped})
    hours = {
        (kind, name, currency): HourLevels.of_hours(seen, counts, log_totals)
        for kind, name, currency, seen, counts, log_totals in (
            await (await conn.execute(HOURS_SQL)).fetchall()
        )
    }
    weekdays = await _weekdays(conn, window["first_day"])
    medians = await _medians(conn, window["first_day"])
    prices = await _recurring_prices(conn, window)
    stats = _with_recurring(
        [
            ScopeStats(
                BaselineScope(kind=ScopeKind(kind), name=name, currency=currency),
                Moments(count, total, total_sq, log_total, log_total_sq),
                histograms.get((kind, name, currency), {}),
                DayWeights(days, days_sq, log_days),
                hours.get((kind, name, currency), HourLevels()),
                weekdays.get((kind, name, currency), WeekdayLevels()),
                medians.get((kind, name, currency), DayMedians()),
            )
            for (
                kind,
                name,
                currency,
                count,
                total,
                total_sq,
                log_total,
                log_total_sq,
                days,
                days_sq,
                log_days,
            ) in moments
        ],
        prices,
    )
    return await _with_categories(conn, await _with_unjudged(conn, window, stats))
