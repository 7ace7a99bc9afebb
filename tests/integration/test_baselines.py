"""Baseline recompute against the real database and broker, and leadership between workers."""

import asyncio
import json
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from psycopg import AsyncConnection

from baseline_worker.compute import ScopeStats, aggregate, window_days
from baseline_worker.leadership import LeaderLock, leader_lock_key
from baseline_worker.metrics import BaselineMetrics
from baseline_worker.recompute import DEFAULT_FIT, Recomputer, scope_tail, to_baselines
from baseline_worker.rollup import MemoryRollup, RollupWindow, feeds_baseline, kept_as_price
from baseline_worker.service import BaselineService
from baseline_worker.settings import BaselineSettings
from baseline_worker.stats import trend
from baseline_worker.tail import TailFit
from detector_worker.baseline_table import BaselineTable
from detector_worker.held_baseline import HeldBaseline
from schemas import Baseline, BaselineScope, ScopeKind, Severity, TailModel, Transaction
from schemas.verdict import Rule
from shared.db import open_pool
from shared.kafka import RenewableProducer, make_producer
from tests.conftest import Isolated
from tests.kafka_helpers import DeadProducer, read_all

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
async def recomputer(isolated: Isolated) -> AsyncIterator[Recomputer]:
    settings = isolated.settings(BaselineSettings, baseline_window_days=30)
    pool = await open_pool(settings.database_url, settings.database_schema)
    producer = make_producer(
        settings.kafka_bootstrap_servers, transactional_id=f"tests-{isolated.schema}"
    )
    await producer.start()
    yield Recomputer(
        pool,
        producer,
        settings.topic_baselines,
        settings.baseline_window_days,
        BaselineMetrics.create(CollectorRegistry()),
    )
    await producer.stop()
    await pool.close()


def insert(
    db: Any,
    amount: str,
    category: str,
    merchant: str,
    days_ago: float,
    severity: str | None = None,
    currency: str = "USD",
    rule: Rule | None = None,
    z_score: float | None = None,
    unjudged: bool = False,
) -> None:
    """A row as the detector stores it: judged against a baseline (its id), or `unjudged`,
    scored while no baseline existed (no id: ops/migrations/023)."""
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, severity, rule, z_score, baseline_id, scored_at) VALUES (gen_random_uuid(),"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " CASE WHEN %s THEN NULL ELSE gen_random_uuid() END, now())",
        (
            amount,
            currency,
            category,
            merchant,
            NOW - timedelta(days=days_ago),
            severity is not None,
            severity,
            rule,
            z_score,
            unjudged,
        ),
    )


async def test_recompute_publishes_every_scope_and_records_history(
    recomputer: Recomputer, isolated: Isolated, db: Any
) -> None:
    for amount in ("90", "110"):
        insert(db, amount, "food", "Cafe", days_ago=1)
    insert(db, "5000", "food", "Cafe", days_ago=1, severity="critical")  # left out
    insert(db, "7000", "food", "Cafe", days_ago=1, severity="high")  # left out
    insert(db, "70", "food", "Cafe", days_ago=45)  # outside the window
    insert(db, "80", "food", "Cafe", days_ago=2, currency="EUR")

    result = await recomputer.run(NOW)

    by_label = {b.scope.label(): b for b in result.published}
    assert set(by_label) == {
        "category:food:USD",
        "merchant:Cafe:USD",
        "category:food:EUR",
        "merchant:Cafe:EUR",
    }
    food = by_label["category:food:USD"]
    assert (food.count, food.mean) == (2, 100.0)
    assert food.stddev == pytest.approx(14.1421356)
    history = db.execute("SELECT count(*) FROM baseline_history").fetchone()
    assert history == (4,)

    table = BaselineTable()
    for record in await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("baselines")
    ):
        table.apply(record.key, record.value)
    assert {held.model().scope.label() for held in table.view.values()} == set(by_label)


async def test_each_history_row_is_the_published_baseline(
    recomputer: Recomputer, isolated: Isolated, db: Any
) -> None:
    for amount in ("90.10", "110.37", "87.5", "1999.99"):
        insert(db, amount, "food", "Cafe", days_ago=1)
    insert(db, "3.14", "travel", 'Café «Ünïcode» "quoted"', days_ago=3)  # one sample

    result = await recomputer.run(NOW)

    rows = db.execute(
        "SELECT id, scope_kind, scope_name, currency, sample_count, mean, stddev, log_mean,"
        " log_stddev, tail, window_days, computed_at, window_end FROM baseline_history"
    ).fetchall()
    stored = {row[0]: row for row in rows}
    assert len(stored) == len(result.published) == 4
    for b in result.published:
        row = stored[b.id]
        assert row[1:5] == (b.scope.kind.value, b.scope.name, b.scope.currency, b.count)
        # Floats stored to their last digit (the float's shortest repr, not 15 digits).
        assert (float(row[5]), float(row[6])) == (b.mean, b.stddev)
        assert (row[7], row[8]) == (b.log_mean, b.log_stddev)
        assert row[9] == (None if b.tail is None else b.tail.model_dump(mode="json"))
        assert (row[10], row[11], row[12]) == (b.window_days, b.computed_at, b.window_end)
        assert b.window_end == (NOW - timedelta(days=1)).date()  # the newest row's day


async def test_a_scope_without_data_left_is_tombstoned(
    recomputer: Recomputer, isolated: Isolated, db: Any
) -> None:
    insert(db, "10", "books", "Shop", days_ago=29)
    insert(db, "4.50", "food", "Cafe", days_ago=0)
    await recomputer.run(NOW)
    # Two days on, the stream has moved the window with it: books' only sample left it.
    insert(db, "4.50", "food", "Cafe", days_ago=-2)
    later = await recomputer.run(NOW + timedelta(days=2))
    assert {b.scope.label() for b in later.published} == {"category:food:USD", "merchant:Cafe:USD"}
    assert {s.label() for s in later.tombstoned} == {"category:books:USD", "merchant:Shop:USD"}

    records = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("baselines"))
    table = BaselineTable()
    for record in records:
        table.apply(record.key, record.value)
    assert len(table) == 2
    assert sum(1 for r in records if r.value is None) == 2
    assert db.execute("SELECT count(*) FROM baselines_current").fetchone() == (2,)
    assert json.loads(records[0].key)["kind"] in {"category", "merchant"}


async def test_the_window_ends_at_the_newest_transaction_not_at_the_clock(
    recomputer: Recomputer, db: Any
) -> None:
    """A history loaded after the fact (its newest row 10 days old) is judged by the 30
    days up to its own last day, as it was on that day, with the level read from that day;
    the clock only bounds the window (a row dated tomorrow does not move it)."""
    rng = random.Random(8)
    for _ in range(300):
        days_ago = rng.uniform(10, 45)
        level = 3 + 0.02 * (45 - days_ago)  # dearer by 2 % a day: a trend, so a level slope
        insert(db, f"{math.exp(rng.gauss(level, 0.4)):.2f}", "food", "Cafe", days_ago=days_ago)
    insert(db, "12.00", "food", "Cafe", days_ago=10)  # the newest day holds a row
    then = NOW - timedelta(days=10)
    on_the_day = {b.scope: b for b in (await recomputer.run(then)).published}
    insert(db, "99.00", "food", "Cafe", days_ago=-1)  # tomorrow's: a clock ahead
    today = {b.scope: b for b in (await recomputer.run(NOW)).published}

    assert on_the_day.keys() == today.keys()
    for scope, baseline in today.items():
        before = on_the_day[scope]
        assert (baseline.count, baseline.mean, baseline.log_stddev) == (
            before.count,
            before.mean,
            before.log_stddev,
        )
        assert before.tail is not None and baseline.tail is not None
        assert before.window_end is None  # the window ended on computed_at's day
        assert baseline.window_end == then.date()
        assert baseline.tail.level_slope > 0
        assert baseline.tail == before.tail
        held, held_before = HeldBaseline.of(baseline), HeldBaseline.of(before)
        assert held.tail is not None and held_before.tail is not None
        assert held.tail.level_day == held_before.tail.level_day == then.toordinal()
    # The window's 30 days to 10 days ago: the rows of 10-39 days ago, not those of 40-45.
    stored = db.execute(
        "SELECT count(*) FROM transactions WHERE transaction_date >= %s",
        (datetime.combine(then.date() - timedelta(days=29), datetime.min.time(), UTC),),
    ).fetchone()[0]
    cafe = today[BaselineScope(kind=ScopeKind.MERCHANT, name="Cafe", currency="USD")]
    assert cafe.count == stored - 1  # all but tomorrow's


async def test_rows_stored_outside_the_instants_a_client_may_state_never_anchor_the_window(
    recomputer: Recomputer, db: Any
) -> None:
    """Rows stored before the gateway bounded dates (tests/integration/test_gateway_hostile.py,
    F3) in year 1 and 1 BC: the window would start before year 1, where no date is held."""
    for stored in ("0001-01-05 10:00:00+00", "0001-12-31 10:00:00+00 BC"):
        db.execute(
            "INSERT INTO transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, baseline_id, scored_at) VALUES (gen_random_uuid(),"
            " 10, 'USD', 'books', 'Shop', %s::timestamptz, false, gen_random_uuid(), now())",
            (stored,),
        )
    assert (await recomputer.run(NOW)).published == []
    insert(db, "10", "books", "Shop", days_ago=3)
    published = (await recomputer.run(NOW)).published
    assert [b.count for b in published] == [1, 1]


async def test_only_one_worker_leads_and_a_standby_takes_over(isolated: Isolated) -> None:
    url, key = isolated.env["DATABASE_URL"], leader_lock_key(isolated.schema)
    async with LeaderLock(url, key) as first, LeaderLock(url, key) as second:
        await first.acquire(poll_seconds=0.05)
        standby = asyncio.create_task(second.acquire(poll_seconds=0.05))
        await asyncio.sleep(0.5)
        assert not standby.done()
        await first.release()  # the leader dies: its session, and so its lock, goes
        await asyncio.wait_for(standby, timeout=5)
        with pytest.raises(Exception, match="no lock session"):
            await first.confirm()
        await second.confirm()


async def test_medium_alerts_still_feed_the_baseline(recomputer: Recomputer, db: Any) -> None:
    # Leaving medium (>= 2 sigma, ~2% of normal traffic) out would shrink every baseline.
    for amount in ("90", "110"):
        insert(db, amount, "food", "Cafe", days_ago=1)
    insert(db, "130", "food", "Cafe", days_ago=1, severity="medium")
    food = next(
        b for b in (await recomputer.run(NOW)).published if b.scope.label() == "category:food:USD"
    )
    assert (food.count, food.mean) == (3, 110.0)


async def test_a_recompute_after_a_dead_producer_gets_a_new_one(
    isolated: Isolated, db: Any
) -> None:
    """After a broker restart the leader's producer may never send again: the failed
    recompute publishes nothing, and the next one runs on a new producer."""
    settings = isolated.settings(BaselineSettings, baseline_window_days=30)
    service = BaselineService(settings, CollectorRegistry(), clock=lambda: NOW)
    insert(db, "10", "books", "Shop", days_ago=1)
    made: list[AIOKafkaProducer] = []

    def first_dead() -> AIOKafkaProducer:
        bootstrap, txn_id = settings.kafka_bootstrap_servers, f"tests-{isolated.schema}"
        if made:
            made.append(make_producer(bootstrap, transactional_id=txn_id))
        else:
            made.append(DeadProducer(bootstrap_servers=bootstrap, transactional_id=txn_id))
        return made[-1]

    producers = RenewableProducer(first_dead)
    await producers.start()
    pool = await open_pool(settings.database_url, settings.database_schema)
    try:
        assert await service.recompute_once(pool, producers) is None
        assert producers.renewals == 1
        result = await service.recompute_once(pool, producers)
    finally:
        await producers.stop()
        await pool.close()
    assert result is not None and len(result.published) == 2
    records = await read_all(settings.kafka_bootstrap_servers, isolated.topic("baselines"))
    assert len(records) == 2  # the failed recompute's transaction was aborted: nothing of it


async def test_the_sql_rollup_and_the_python_arithmetic_agree(
    recomputer: Recomputer, db: Any, isolated: Isolated, database_url: str
) -> None:
    """The trigger (ops/migrations/005, 007), the closed days' hours (016), weekdays (018) and
    medians (019) and `baseline_worker.rollup` on the same rows: which rows feed a baseline,
    its moments, its amount histogram, its hours of day, weekdays and days' medians (the
    closed days' only), and so its tail; also after
    the summed window moved on (days left it, late rows arrived for days still in it, rows
    arrived for days that entered it), and after late rows arrived for its closed days with
    the window where it was (a backfill: ops/migrations/017). Replays (the accuracy
    benchmark, `jalytics-backtest`) rest on this."""
    rng, judge = random.Random(5), random.Random(6)
    memory = MemoryRollup(window_days=30)
    seasonal = weekly = trended = recurring = unjudged = 0
    judged: list[Row] = []
    later = NOW + timedelta(days=3)
    for now, oldest, newest in ((NOW, 40, 0), (later, 40, -3), (later, 25, 5)):
        for i in range(250):
            days_ago = rng.uniform(newest, oldest)
            # Evenings and weekends dearer: the hours' and the weekdays' levels differ, so
            # both reach the tail. Dearer by 5 % a day too, but for a fifth of the rows at
            # 1.00: the days' medians follow the rest (a trend through them).
            when = NOW - timedelta(days=days_ago)
            evening, weekend = when.hour >= 16, when.weekday() >= 5
            level = 2 + 2 * evening + weekend - 0.05 * days_ago
            amount = Decimal(str(round(math.exp(rng.gauss(level, 0.6)), 2)))
            if i % 5 == 1:
                amount = Decimal("1.00")
            if i % 50 == 0:
                amount = rng.choice([Decimal("0.01"), Decimal("9.99"), Decimal("99999999.99")])
            row = random_row(rng, amount.max(Decimal("0.01")), days_ago, judge)
            insert(
                db,
                str(row.amount),
                "food",
                row.merchant,
                row.days_ago,
                row.severity,
                row.currency,
                row.rule,
                row.z_score,
                row.unjudged,
            )
            if feeds_baseline(row.severity, row.rule, row.z_score):
                memory.add(row.transaction(), unjudged=row.unjudged)
            elif kept_as_price(row.severity, row.rule):
                memory.keep_out(row.transaction())
            judged.append(row)
            if i % 20 == 3:  # a fixed price's second price, kept out, recurring
                insert(db, "59.98", "food", "Cafe", row.days_ago, "high", "USD", "low_variance")
                memory.keep_out(
                    Row(
                        Decimal("59.98"), "Cafe", "USD", "high", row.days_ago, "low_variance"
                    ).transaction()
                )
            if i % 25 == 7:  # a price at the top of a tail (a toll's 4x class), kept out
                insert(db, "21.20", "food", "Deli", row.days_ago, "high", "USD", "tail", 4.4)
                memory.keep_out(
                    Row(
                        Decimal("21.20"), "Deli", "USD", "high", row.days_ago, "tail", 4.4
                    ).transaction()
                )
        published = {b.scope: b for b in (await recomputer.run(now)).published}
        assert_same_baselines(published, memory.window(now), now)
        first_day, last_day = window_days(now.date(), 30)
        recurring += db.execute(
            "SELECT count(*) FROM baseline_recurring_kept_prices(%s, %s)", (first_day, last_day)
        ).fetchone()[0]
        by_hour, by_weekday, by_median, by_unjudged = await assert_same_hours(
            database_url, isolated.schema, memory.window(now), now
        )
        seasonal, weekly = seasonal + by_hour, weekly + by_weekday
        trended, unjudged = trended + by_median, unjudged + by_unjudged
    # Some scope's hours, some scope's weekdays, differed enough to give levels, and some
    # scope's medians moved enough to give a trend: they were compared, not only their
    # absence.
    assert seasonal > 0
    assert weekly > 0
    assert trended > 0
    assert recurring > 0  # kept-out amounts that recur were counted back on both sides
    assert unjudged > 0  # some scope's top held unjudged samples on both sides
    # Rows the tail rule judged high at z-equivalents on both sides of every exclusion edge
    # the replay tried (docs/accuracy.md, round 10), and other rules' high rows, were
    # compared: a rule that one side applies and the other not fails above.
    high = [row for row in judged if row.severity in ("high", "critical")]
    tail_high = [row.z_score or 0.0 for row in high if row.rule == "tail"]
    assert min(tail_high) < 3.9 and max(tail_high) > 4.75
    assert any(row.rule != "tail" for row in high)


def insert_batch(db: Any, rows: list[Transaction], severities: list[str | None]) -> None:
    """The rows in one statement, as a detector stores a batch: one run of the trigger."""
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, severity, baseline_id, scored_at)"
        " SELECT id, amount, currency, category, merchant, at, severity IS NOT NULL, severity,"
        " gen_random_uuid(), now()"
        " FROM unnest(%s::uuid[], %s::numeric[], %s::text[], %s::text[], %s::text[],"
        " %s::timestamptz[], %s::text[])"
        " AS r (id, amount, currency, category, merchant, at, severity)",
        (
            [r.id for r in rows],
            [r.amount for r in rows],
            [r.currency for r in rows],
            [r.category for r in rows],
            [r.merchant for r in rows],
            [r.transaction_date for r in rows],
            severities,
        ),
    )


def fills(
    rng: random.Random, merchant: str, category: str, count: int, draw: Any
) -> list[Transaction]:
    return [
        Transaction(
            id=uuid4(),
            amount=Decimal(f"{max(draw(), 0.01):.2f}"),
            currency="USD",
            category=category,
            merchant=merchant,
            transaction_date=NOW - timedelta(days=rng.uniform(0.1, 25)),
        )
        for _ in range(count)
    ]


async def test_each_merchant_is_capped_by_its_category_peers_as_the_replay_caps_it(
    recomputer: Recomputer, db: Any
) -> None:
    """The trigger keeps each merchant's category (ops/migrations/025) as `MemoryRollup`
    does: that of its newest row that fed the baselines; and the recompute caps a merchant's
    shape by its peers' (baseline_worker.peers) as the replay does."""
    rng = random.Random(25)
    rows = [
        row
        for i in range(4)
        for row in fills(rng, f"Station {i}", "fuel", 250, lambda: 40 * rng.gammavariate(6, 1 / 6))
    ]
    # A station whose window holds a power law (earlier spikes fed it).
    rows += fills(rng, "Odd station", "fuel", 250, lambda: 30 * rng.paretovariate(2.0))
    # A shop that moved from food to fuel, and one whose only fuel row was judged high.
    moved = fills(rng, "Corner shop", "food", 40, lambda: rng.uniform(5, 20))
    newest = max(r.transaction_date for r in moved)
    rows += moved + [
        r.model_copy(
            update={
                "id": uuid4(),
                "category": "fuel",
                "transaction_date": newest + timedelta(hours=1),
            }
        )
        for r in moved[:3]
    ]
    rows += fills(rng, "Deli", "food", 40, lambda: rng.uniform(5, 20))
    flagged = rows[-1].model_copy(
        update={"id": uuid4(), "category": "fuel", "transaction_date": NOW - timedelta(hours=1)}
    )
    memory = MemoryRollup(window_days=30)
    for row in sorted(rows, key=lambda r: r.transaction_date):
        memory.add(row)
    insert_batch(db, [*rows, flagged], [*[None] * len(rows), "high"])

    query = "SELECT merchant, currency, category FROM merchant_categories"
    stored = {(m, c): cat for m, c, cat in db.execute(query)}
    assert stored[("Corner shop", "USD")] == "fuel"
    assert stored[("Deli", "USD")] == "food"
    window = memory.window(NOW)
    for (merchant, currency), category in stored.items():
        scope = BaselineScope(kind=ScopeKind.MERCHANT, name=merchant, currency=currency)
        stats = window.stats(scope)
        assert stats is not None and stats.category == category

    published = {b.scope: b for b in (await recomputer.run(NOW)).published}
    assert_same_baselines(published, window, NOW)
    odd = window.stats(BaselineScope(kind=ScopeKind.MERCHANT, name="Odd station", currency="USD"))
    assert odd is not None
    alone, capped = scope_tail(odd, 30, DEFAULT_FIT), published[odd.scope].tail
    assert alone is not None and capped is not None
    assert capped.shape < alone.shape - 0.1  # the cap bound, on both sides alike
    assert capped.uncapped_shape == alone.shape  # and the published tail says so


async def test_a_history_loaded_after_a_recompute_has_its_tail_at_the_next(
    recomputer: Recomputer, db: Any
) -> None:
    """A history backfilled today (every row dated in the window's closed days) reaches the
    summed histogram at the next recompute, not at the next day's move of the window: until
    017 its scopes had moments but no histogram, so no tail."""
    insert(db, "50", "food", "Cafe", days_ago=0)
    first = {b.scope.label(): b for b in (await recomputer.run(NOW)).published}
    assert first["merchant:Cafe:USD"].tail is None  # one sample: no tail yet
    rng = random.Random(3)
    for _ in range(400):
        amount = round(math.exp(rng.gauss(3, 0.5)), 2)
        insert(db, str(amount), "food", "Cafe", days_ago=rng.uniform(3, 25))
    after = {b.scope.label(): b for b in (await recomputer.run(NOW)).published}
    cafe = after["merchant:Cafe:USD"]
    assert cafe.count == 401
    assert cafe.tail is not None
    summed = db.execute(
        "SELECT sum(sample_count) FROM baseline_window_bins"
        " WHERE scope_kind = 'merchant' AND scope_name = 'Cafe'"
    ).fetchone()
    assert summed == (400,)  # the closed days' rows; today's is read from the daily bins
    hours = db.execute(
        "SELECT (SELECT sum(n) FROM unnest(sample_counts) AS n) FROM baseline_window_hours"
        " WHERE scope_kind = 'merchant' AND scope_name = 'Cafe'"
    ).fetchone()
    assert hours == (400,)  # and their hours of day (016), caught up with them


@dataclass(frozen=True)
class Row:
    amount: Decimal
    merchant: str
    currency: str
    severity: Severity | None
    days_ago: float
    rule: Rule | None = None
    z_score: float | None = None
    unjudged: bool = False

    def transaction(self) -> Transaction:
        return Transaction(
            id=uuid4(),
            amount=self.amount,
            currency=self.currency,
            category="food",
            merchant=self.merchant,
            transaction_date=NOW - timedelta(days=self.days_ago),
        )


def random_row(rng: random.Random, amount: Decimal, days_ago: float, judge: random.Random) -> Row:
    """A row judged as the detector would (drawn from `judge`, so that `rng` draws the rows
    it always drew): its rule and z-equivalent in its tier's range, so that `feeds_baseline`
    with an exclusion edge for the tail rule (`TAIL_EXCLUSION_Z`) meets rows on both sides."""
    severities: list[Severity | None] = [*[None] * 8, "medium", "high", "critical"]
    merchant, currency = rng.choice(["Cafe", "Bar"]), rng.choice(["USD", "EUR"])
    severity = rng.choice(severities)
    rules: list[Rule | None] = ["tail", "tail", "low_variance", "log_zscore", None]
    rule = None if severity is None else judge.choice(rules)
    z_by_severity = {None: (0.0, 2.88), "medium": (2.88, 3.54), "high": (3.54, 4.75)}
    low, high = z_by_severity.get(severity, (4.75, 7.0))
    without_z = rule in ("low_variance", None) and judge.random() < 0.5  # the seed's rule
    z = None if without_z else judge.uniform(low, high)
    # A sixth of the unflagged rows scored while no baseline existed (ops/migrations/023).
    unjudged = severity is None and judge.random() < 1 / 6
    return Row(amount, merchant, currency, severity, days_ago, rule, z, unjudged)


async def assert_same_hours(
    database_url: str, schema: str, window: RollupWindow, now: datetime
) -> tuple[int, int, int, int]:
    """The hours, weekdays, days' medians and top unjudged samples the recompute read
    (`aggregate`, after the window moved) against the replay's, and the levels and trend
    fitted on each; returns how many scopes have hour levels, weekday levels, a trend
    through their medians and unjudged samples in their top (ops/migrations/023)."""
    async with await AsyncConnection.connect(
        database_url, options=f"-c search_path={schema}"
    ) as conn:
        from_sql = {s.scope: s for s in await aggregate(conn, now.date(), 30)}
    with_levels = TailFit(hour_levels=True, weekday_levels=True, trend_through="medians")
    seasonal = weekly = trended = unjudged = 0
    for scope, sql_stats in from_sql.items():
        stats = window.stats(scope)
        assert stats is not None
        trended += assert_same_medians(sql_stats, stats)
        assert sql_stats.unjudged == stats.unjudged
        unjudged += bool(stats.unjudged)
        assert sql_stats.hours.counts == stats.hours.counts
        assert sql_stats.hours.log_totals == pytest.approx(stats.hours.log_totals, rel=1e-12)
        assert sql_stats.weekdays.counts == stats.weekdays.counts
        assert sql_stats.weekdays.log_totals == pytest.approx(stats.weekdays.log_totals, rel=1e-12)
        sql_tail = scope_tail(sql_stats, 30, with_levels)
        python_tail = scope_tail(stats, 30, with_levels)
        assert (sql_tail is None) == (python_tail is None)
        if sql_tail is not None and python_tail is not None:
            assert (sql_tail.hour_ratios is None) == (python_tail.hour_ratios is None)
            if sql_tail.hour_ratios is not None:
                seasonal += 1
                assert sql_tail.hour_ratios == pytest.approx(python_tail.hour_ratios, rel=1e-9)
            assert (sql_tail.weekday_ratios is None) == (python_tail.weekday_ratios is None)
            if sql_tail.weekday_ratios is not None:
                weekly += 1
                assert sql_tail.weekday_ratios == pytest.approx(
                    python_tail.weekday_ratios, rel=1e-9
                )
            assert sql_tail.level_slope == pytest.approx(python_tail.level_slope, rel=1e-9)
            assert sql_tail.level_ratio == pytest.approx(python_tail.level_ratio, rel=1e-9)
    return seasonal, weekly, trended, unjudged


def assert_same_medians(from_sql: ScopeStats, from_python: ScopeStats) -> int:
    """The closed days' medians' sums (ops/migrations/019 against `MemoryRollup`), the days'
    exactly, the medians' to the last bits of a float sum, and the trend through them;
    returns 1 when that trend is not 0."""
    sql, python = from_sql.medians, from_python.medians
    assert (sql.days, sql.count, sql.day_total, sql.day_sq_total) == (
        python.days,
        python.count,
        python.day_total,
        python.day_sq_total,
    )
    for name in ("median_total", "day_median_total", "median_sq_total"):
        assert getattr(sql, name) == pytest.approx(getattr(python, name), rel=1e-12), name
    slope = trend(from_python.moments, from_python.day_weights, python, "medians").slope
    sql_slope = trend(from_sql.moments, from_sql.day_weights, sql, "medians").slope
    assert sql_slope == pytest.approx(slope, rel=1e-9, abs=1e-12)
    return int(slope != 0)


def assert_same_baselines(
    published: dict[BaselineScope, Baseline], window: RollupWindow, now: datetime
) -> None:
    """Every scope's baseline, each merchant capped by its peers' shapes (`to_baselines`)."""
    assert set(published) == window.scopes()
    every = [stats for scope in published if (stats := window.stats(scope)) is not None]
    replayed = {b.scope: b for b in to_baselines(every, 30, now)}
    for scope, from_sql in published.items():
        from_python = replayed[scope]
        assert (from_sql.count, from_sql.mean, from_sql.stddev) == (
            from_python.count,
            from_python.mean,
            from_python.stddev,
        )
        assert from_sql.log_mean == pytest.approx(from_python.log_mean, rel=1e-12)
        assert_same_tail(from_sql.tail, from_python.tail)


def assert_same_tail(from_sql: TailModel | None, from_python: TailModel | None) -> None:
    """Equal but for the last bits of what float sums give (ln(amount) summed in another
    order: the level, the hours): the histogram's figures are integer counts, exact."""
    assert (from_sql is None) == (from_python is None)
    if from_sql is None or from_python is None:
        return
    sql_fields, python_fields = from_sql.model_dump(), from_python.model_dump()
    assert sql_fields.keys() == python_fields.keys()
    for name, value in sql_fields.items():
        if isinstance(value, float) or (isinstance(value, list) and value):
            assert value == pytest.approx(python_fields[name], rel=1e-9), name
        else:
            assert value == python_fields[name], name


def test_a_kept_out_amount_counts_back_only_on_two_days_and_never_as_confirmed_fraud(
    db: Any,
) -> None:
    """ops/migrations/022's guards against learning a fraud that repeats one amount: a burst
    within one UTC day is not a price, nor a row an analyst resolved as confirmed fraud."""

    def kept_out(merchant: str, days_ago: float, confirmed: bool = False) -> None:
        row = db.execute(
            "INSERT INTO transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, severity, rule, z_score, scored_at) VALUES"
            " (gen_random_uuid(), 499.99, 'USD', 'food', %s, %s, true, 'high', 'tail', 4.1,"
            " now()) RETURNING id",
            (merchant, NOW - timedelta(days=days_ago)),
        ).fetchone()
        if confirmed:
            db.execute(
                "INSERT INTO alerts (id, transaction_id, severity, rule, alert_message,"
                " baseline_id, status, resolution) VALUES (gen_random_uuid(), %s, 'high',"
                " 'tail', 'm', gen_random_uuid(), 'resolved', 'confirmed_fraud')",
                (row[0],),
            )

    for hours in (1, 2, 3):  # one burst, on one day
        kept_out("Burst", 3 + hours / 24)
    for days_ago, confirmed in ((2, False), (5, True), (8, True)):  # one left unconfirmed
        kept_out("Confirmed", days_ago, confirmed)
    for days_ago in (2, 5):  # a price, on two days
        kept_out("Price", days_ago)
    first_day, last_day = window_days(NOW.date(), 30)
    found = db.execute(
        "SELECT scope_name, sample_count FROM baseline_recurring_kept_prices(%s, %s)"
        " WHERE scope_kind = 'merchant'",
        (first_day, last_day),
    ).fetchall()
    assert found == [("Price", 2)]
    # The category holds all eight: the burst's three are on one day, but with the price's
    # two days among them the amount recurs on three days (the confirmed two stay out).
    (category,) = db.execute(
        "SELECT sample_count FROM baseline_recurring_kept_prices(%s, %s)"
        " WHERE scope_kind = 'category'",
        (first_day, last_day),
    ).fetchone()
    assert category == 6
