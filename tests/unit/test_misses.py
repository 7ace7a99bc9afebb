"""benchmarks.misses: where the judging tail read a false alert's amount (round 9)."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.misses import Scored, tail_part
from benchmarks.streams import StreamItem
from schemas import Baseline, BaselineScope, ScopeKind, TailModel, Transaction, Verdict

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
# Knots up to 100 (1 in 100 above it), the GPD past them; the scope's level is 2.
TAIL = TailModel(
    amounts=[40.0, 70.0, 100.0],
    survival=[0.5, 0.1, 0.01],
    threshold=70.0,
    exceedance=0.1,
    shape=0.2,
    scale=20.0,
    level_ratio=2.0,
)


def scored(amount: str, tail: TailModel | None) -> Scored:
    txn = Transaction(
        id=uuid4(),
        amount=Decimal(amount),
        category="electronics",
        merchant="electronics-large-1",
        transaction_date=NOW,
    )
    baseline = Baseline(
        id=uuid4(),
        scope=BaselineScope(kind=ScopeKind.MERCHANT, name=txn.merchant, currency="USD"),
        count=1000,
        mean=50.0,
        stddev=20.0,
        tail=tail,
        window_days=30,
        computed_at=NOW,
    )
    verdict = Verdict(
        transaction_id=txn.id, anomaly=True, severity="high", baseline=baseline, scored_at=NOW
    )
    return Scored(11, StreamItem(transaction=txn, family="pareto"), verdict)


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("199.99"), places=2))
def test_an_amount_under_the_last_knot_at_the_scopes_level_is_in_the_knots(
    amount: Decimal,
) -> None:
    # 199.99 / level 2 is under the last knot (100): the empirical survival read it.
    assert tail_part(scored(str(amount), TAIL)) == "knots"


@given(st.decimals(min_value=Decimal("200.01"), max_value=Decimal("1e6"), places=2))
def test_an_amount_past_the_last_knot_at_the_scopes_level_is_in_the_gpd(amount: Decimal) -> None:
    assert tail_part(scored(str(amount), TAIL)) == "GPD"


def test_a_baseline_without_a_tail_says_so() -> None:
    assert tail_part(scored("150.00", None)) == "no tail"
