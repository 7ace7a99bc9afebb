"""Past a window's top price (`TailFit.price_top`): a scope whose top bin holds a price (a
toll's truck class, a plan, a full tank) reads an amount above it by the fixed-price rule,
not by a GPD fitted to a few prices."""

import random
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import bin_of, histogram
from baseline_worker.stats import Moments
from baseline_worker.tail import NO_LEVELS, TailFit, TailLevels, fit_tail, screened
from benchmarks.support import index
from detector_worker.held_baseline import HeldBaseline
from detector_worker.scoring import ScoringConfig, _repricing, score, stable_probability
from detector_worker.tail import HeldTail, bin_share, survival
from ingest_gateway.ui import chart
from schemas import Baseline, BaselineScope, ScopeKind, TailModel, Transaction
from schemas.rarity import z_equivalent

PRICE_TOP = TailFit(price_top=True)
NO_PRICE_TOP = TailFit(price_top=False)
HIGH = ScoringConfig().tiers.high


def tolls() -> list[float]:
    # A bridge's three vehicle classes over a month (the blind stream's Bay Bridge Toll #1).
    return [5.10] * 721 + [12.75] * 117 + [20.40] * 43


def read(fit: TailFit, window: list[float], amount: float, levels: TailLevels = NO_LEVELS) -> float:
    model = fit_tail(histogram(window), fit, levels)
    assert model is not None
    return survival(HeldTail.of(model), amount)


def test_an_amount_far_above_a_price_list_is_high() -> None:
    # 52.69 at a bridge whose top class is 20.40. The GPD fitted to the excesses over the
    # middle price's bin edge (two prices, one bin wide) read 1 in 1,600, not even high;
    # from half a step below it (the lattice threshold of round 16) it reads high as well.
    assert z_equivalent(read(NO_PRICE_TOP, tolls(), 52.69)) >= HIGH
    assert z_equivalent(read(PRICE_TOP, tolls(), 52.69)) >= HIGH


def test_past_the_top_price_reads_as_the_fixed_price_rule() -> None:
    window = tolls()
    n = len(window)
    for amount in (24.0, 30.6, 52.69, 204.0):
        held = ScoringConfig()
        # The fixed-price rule at the top price, seen n times: (1 + d / 0.1) ** -2 / (n + 1)
        # is its min(1, (0.1 / d) ** 2) / (n + 1) without the corner at d = 0.1.
        fixed = stable_probability(amount, _price(20.40, n), held)
        p = read(PRICE_TOP, window, amount)
        assert fixed / 4 <= p <= fixed * 1.5, (amount, p, fixed)


def test_the_prices_themselves_read_their_share() -> None:
    window = tolls()
    n = len(window)
    assert read(PRICE_TOP, window, 20.40) == 43 / n
    assert read(PRICE_TOP, window, 12.75) == 160 / n
    # The next bin up is past every sample: 1 in n + 1 (Laplace).
    assert read(PRICE_TOP, window, 20.40 * 1.02) == pytest.approx(1 / (n + 1), rel=1e-12)


def test_a_level_below_one_does_not_put_the_top_price_past_itself() -> None:
    # A gift-card seller whose mix fell (fewer $100 cards this week): its level 0.957 reads
    # a $100 card as 104.5, which would be past the top, as rare as 1 in n.
    window = [10.0] * 280 + [25.0] * 160 + [50.0] * 100 + [100.0] * 440
    hours = [1.0] * 24
    hours[3] = 0.9
    levels = TailLevels(level_ratio=0.957, hour_ratios=hours)
    model = fit_tail(histogram(window), PRICE_TOP, levels)
    assert model is not None
    held = HeldTail.of(model)
    for hour in (3, 12):
        assert survival(held, 100.0, hour) == 440 / len(window)
    assert z_equivalent(survival(held, 250.0, 12)) >= HIGH


def test_a_continuous_scope_is_fitted_as_before() -> None:
    rng = random.Random(7)
    window = [round(rng.gammavariate(2.5, 20), 2) + 0.01 for _ in range(3000)]
    assert fit_tail(histogram(window), PRICE_TOP) == fit_tail(histogram(window), NO_PRICE_TOP)


def test_a_top_bin_with_fewer_samples_than_a_knot_is_no_price() -> None:
    window = [5.10] * 680 + [12.75] * 150 + [20.40] * 9
    assert fit_tail(histogram(window), PRICE_TOP) == fit_tail(histogram(window), NO_PRICE_TOP)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(1.0, 2000.0), st.integers(10, 400)), min_size=2, max_size=8),
    st.floats(0.5, 1.5),
)
def test_past_a_price_the_survival_only_falls(
    prices: list[tuple[float, int]], level: float
) -> None:
    window = [price for price, count in prices for _ in range(count)]
    bins = histogram(window)
    if bins[max(bins)] < PRICE_TOP.knot_min_count or len(bins) < 2:
        return
    model = fit_tail(bins, PRICE_TOP, TailLevels(level_ratio=level))
    assert model is not None and len(model.amounts) <= 64
    held = HeldTail.of(model)
    top = max(price for price, _ in prices)
    amounts = [top * 1.01**i for i in range(-20, 200)]
    readings = [survival(held, a) for a in amounts]
    # (log-log interpolation between two equal knots may round up by an ulp)
    assert all(b <= a * (1 + 1e-12) for a, b in pairwise(readings))
    assert readings[-1] < 1 / (len(window) + 1)
    assert bin_of(top) == max(bins)


def _price(price: float, count: int) -> HeldBaseline:
    """A fixed price seen `count` times, as the detector holds it."""
    return HeldBaseline(
        uuid4(),
        (ScopeKind.MERCHANT, "m", "USD"),
        count,
        price,
        0.0,
        None,
        None,
        None,
        30,
        datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_the_price_top_is_a_setting() -> None:
    assert replace(PRICE_TOP, price_top=False) == NO_PRICE_TOP


def test_a_spike_or_two_above_the_top_price_leave_it_a_price() -> None:
    # A car park charging 3 a started hour up to 24, with two spikes judged medium left in
    # its window: the top is still a price, past which the spikes count (3 / (n + 1)).
    window = [3.0] * 395 + [6.0] * 230 + [9.0] * 146 + [12.0] * 88 + [15.0] * 64
    window += [18.0] * 30 + [21.0] * 18 + [24.0] * 11 + [29.27, 43.49]
    n = len(window)
    model = fit_tail(histogram(window), PRICE_TOP)
    assert model is not None
    assert model.exceedance == 3 / (n + 1)
    assert read(PRICE_TOP, window, 24.0) == pytest.approx(13 / n, rel=1e-12)
    assert z_equivalent(read(PRICE_TOP, window, 61.39)) >= HIGH
    # The GPD alone read 61.39 as medium over the threshold price's bin edge; half a step
    # below it (round 16), as high.
    assert z_equivalent(read(NO_PRICE_TOP, window, 61.39)) >= HIGH


def test_many_samples_above_the_highest_full_bin_are_no_price() -> None:
    window = [5.10] * 721 + [12.75] * 117 + [20.40] * 43 + [25.0 + i for i in range(12)]
    assert fit_tail(histogram(window), PRICE_TOP) == fit_tail(histogram(window), NO_PRICE_TOP)


def test_the_crowded_top_of_a_narrow_continuous_scope_is_no_price() -> None:
    # A normal of 10 % spread over 3,000 samples has a bin of 10 near its top, with few
    # above: read as a price, 5 and 10 standard deviations out read medium and high
    # instead of high and critical (the review of round 13).
    for seed in range(6):
        rng = random.Random(seed)
        window = [round(rng.gauss(100, 10), 2) for _ in range(3000)]
        assert fit_tail(histogram(window), PRICE_TOP) == fit_tail(histogram(window), NO_PRICE_TOP)


def test_the_screen_judges_spikes_over_a_price_list_as_before() -> None:
    # Six spikes over the tolls: not a top price (too many above it); the screen's own fit
    # of the rest must not be the price-top rule, or the spikes would leave and the rest
    # still be fitted by a GPD.
    bins = histogram([*tolls(), 30.0, 35.0, 45.0, 160.0, 180.0, 200.0])
    assert screened(bins, PRICE_TOP) == screened(bins, NO_PRICE_TOP)
    assert fit_tail(bins, PRICE_TOP) == fit_tail(bins, NO_PRICE_TOP)


def test_a_top_price_reads_its_share_at_any_hour_weekday_and_day() -> None:
    # Levels below 1 at some hours and weekdays, and a trend: the $100 card is the $100
    # card whenever it is charged, and an amount above it is past it whenever.
    window = [10.0] * 280 + [25.0] * 160 + [50.0] * 100 + [100.0] * 440
    n = len(window)
    hours = [1.0] * 24
    hours[4] = 0.8
    weekdays = [0.85, 1, 1, 1, 1, 1.1, 1.1]
    levels = TailLevels(0.9, 0.002, hours, weekdays)
    model = fit_tail(histogram(window), PRICE_TOP, levels)
    assert model is not None and model.top_price == pytest.approx(100.0, rel=0.02)
    held = HeldTail.of(model, datetime(2026, 12, 1, tzinfo=UTC))
    today = datetime(2026, 12, 1, tzinfo=UTC).toordinal()
    for hour in (4, 12):
        for day in (today - 10, today - 3, today):
            assert survival(held, 100.0, hour, day) == 440 / n
            # 120 and 150 are past the top at the hour's and weekday's level too
            assert survival(held, 150.0, hour, day) < 1 / n
    assert bin_share(held, 100.0) == pytest.approx(440 / n, rel=0.01)


def test_a_new_top_price_up_to_the_repricing_cap_is_medium_then_high_past_it() -> None:
    # A toll raises its truck class 20.40 -> 22.00 (+8 %): at most medium, so the new fare
    # feeds the baseline and is learned within the day (`top_price_reprice`, 20 %); a jump
    # past that is not a repricing.
    window = tolls() * 10
    scope = BaselineScope(kind=ScopeKind.MERCHANT, name="Bridge", currency="USD")
    priced = index([_baseline_of(scope, window, PRICE_TOP)])
    for amount, severity in (("22.00", "medium"), ("24.30", "medium"), ("26.50", "high")):
        verdict = score(_charge(amount), priced, ScoringConfig(), NOW)
        assert (verdict.severity, verdict.rule) == (severity, "tail"), amount
    assert score(_charge("52.69"), priced, ScoringConfig(), NOW).severity == "critical"
    # Uncapped, the new fare is high: what the cap changes.
    uncapped = ScoringConfig(top_price_reprice=0.0)
    assert score(_charge("22.00"), priced, uncapped, NOW).severity == "high"
    # Without a top price (the GPD) there is no cap.
    fitted = HeldBaseline.of(_baseline_of(scope, window, NO_PRICE_TOP))
    assert not _repricing(22.0, fitted, ScoringConfig())


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _charge(amount: str) -> Transaction:
    return Transaction(
        id=uuid4(),
        amount=Decimal(amount),
        category="tolls",
        merchant="Bridge",
        transaction_date=NOW,
    )


def _baseline_of(scope: BaselineScope, window: list[float], fit: TailFit) -> Baseline:
    moments = Moments()
    for amount in window:
        moments += Moments.of(Decimal(str(amount)))
    return Baseline(
        id=uuid4(),
        scope=scope,
        count=moments.count,
        mean=moments.mean,
        stddev=moments.stddev,
        log_mean=moments.log_mean,
        log_stddev=moments.log_stddev,
        tail=fit_tail(histogram(window), fit),
        window_days=30,
        computed_at=NOW,
    )


def test_a_tail_without_a_top_price_encodes_as_before_it_existed() -> None:
    # A detector of before the field forbids unknown keys: every tail but a top price's
    # must still read there while a rollout is half way.
    plain = fit_tail(histogram([round(10 + i * 0.37, 2) for i in range(400)]), PRICE_TOP)
    priced = fit_tail(histogram(tolls()), PRICE_TOP)
    assert plain is not None and plain.top_price is None
    assert "top_price" not in plain.model_dump_json()
    assert priced is not None and '"top_price":' in priced.model_dump_json()
    assert TailModel.model_validate_json(priced.model_dump_json()) == priced


def test_a_young_merchant_is_not_capped_by_its_categorys_top_price() -> None:
    # Three charges of about 2 at a merchant in a toll category: 24.00 is 12x its own, and
    # what the category's top fare says of repricing does not apply to it.
    category = BaselineScope(kind=ScopeKind.CATEGORY, name="tolls", currency="USD")
    merchant = BaselineScope(kind=ScopeKind.MERCHANT, name="Bridge", currency="USD")
    held = HeldBaseline.of(_baseline_of(category, tolls(), PRICE_TOP))
    assert held.tail is not None and held.tail.top_price > 0
    assert not _repricing(24.0, held, ScoringConfig())
    own = HeldBaseline.of(_baseline_of(merchant, tolls(), PRICE_TOP))
    assert _repricing(24.0, own, ScoringConfig())


def test_an_inflated_level_moves_the_repricing_band_up_and_a_lower_one_does_not() -> None:
    scope = BaselineScope(kind=ScopeKind.MERCHANT, name="Bridge", currency="USD")
    for level, amount, capped in ((1.3, 31.0, True), (1.0, 31.0, False), (0.8, 24.0, True)):
        model = fit_tail(histogram(tolls()), PRICE_TOP, TailLevels(level_ratio=level))
        base = _baseline_of(scope, tolls(), PRICE_TOP).model_copy(update={"tail": model})
        assert _repricing(amount, HeldBaseline.of(base), ScoringConfig(), NOW) is capped


def test_a_top_prices_bin_share_is_its_own_at_any_level() -> None:
    window = [20.0] * 300 + [50.0] * 400 + [101.0] * 300
    for level in (0.9, 0.95, 1.0, 1.05, 1.1):
        model = fit_tail(histogram(window), PRICE_TOP, TailLevels(level_ratio=level))
        assert model is not None
        assert bin_share(HeldTail.of(model), 101.0) == pytest.approx(0.3, abs=0.002)


def test_the_chart_starts_high_past_the_repricing_band() -> None:
    # A medium verdict (capped) is not drawn past the chart's "high" line.
    model = fit_tail(histogram(tolls()), PRICE_TOP)
    assert model is not None and model.top_price is not None
    stats = {"tail": model.model_dump(), "scope_kind": "merchant"}
    band = chart.high_not_before("tail", stats)
    assert band is not None and band == pytest.approx(model.top_price * 1.2)
    curve = chart.survival_of("tail", {**stats, "mean": 7.0, "stddev": 4.0})
    assert curve is not None
    starts = dict(chart.tier_amounts(curve, 0.01, ScoringConfig().tiers, band))
    assert starts["high"] >= band and starts["critical"] >= band
    assert chart.high_not_before("tail", {**stats, "scope_kind": "category"}) is None
