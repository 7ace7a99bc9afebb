"""Baseline worker configuration (environment variables, validated at start-up)."""

from pydantic import Field

from baseline_worker.stats import TrendThrough
from baseline_worker.tail import ShapeEstimator
from shared.settings import CommonSettings


class BaselineSettings(CommonSettings):
    baseline_window_days: int = Field(default=30, ge=1, le=3650)
    recompute_interval_seconds: float = Field(default=60, gt=0)
    # Recompute sooner once the rows stored since the last recompute reach this share of the
    # window's rows (0: the interval only), at most every RECOMPUTE_MIN_GAP_SECONDS and never
    # sooner after a recompute than it took (Cadence.after: at most half the time busy): a burst
    # of event time (a backfill, a fast replay) is then judged against baselines that keep
    # up with it (baseline_worker/cadence.py; docs/accuracy.md, "Through the live system").
    recompute_growth_share: float = Field(default=0.02, ge=0, le=1)
    recompute_min_gap_seconds: float = Field(default=1, gt=0)
    recompute_poll_seconds: float = Field(default=1, gt=0)
    # A level per UTC hour of day where a scope's hours differ significantly (TailFit.hour_levels;
    # docs/accuracy.md, round 3). False publishes no hour levels: every hour reads alike.
    baseline_hour_levels: bool = True
    # A level per UTC weekday where a scope's weekdays differ significantly
    # (TailFit.weekday_levels; docs/accuracy.md, "Weekday levels"). False: none published.
    baseline_weekday_levels: bool = True
    # The level's trend: a line through every ln(amount) by day, through the closed days'
    # medians of ln(amount) (which a point mass, card checks of 1.00, does not flatten), or
    # whichever stands more standard errors out (TailFit.trend_through; docs/accuracy.md,
    # round 6).
    baseline_trend_through: TrendThrough = "sharper"
    # The GPD shape of the tail past the knots: probability-weighted moments ("pwm", round 7's),
    # Zhang & Stephens' posterior mean ("zhang"), or PWM where it reads a shape under 0.25
    # and Zhang & Stephens' above (TailFit.shape_estimator; docs/accuracy.md, round 8).
    baseline_shape_estimator: ShapeEstimator = "hybrid"
    # Past a window's top price (its highest bin holding 10 samples, with no more than a
    # few above it: a toll's truck class, a plan, a full tank) an amount reads as the
    # fixed-price rule reads a new price, not by a GPD fitted to a few prices
    # (TailFit.price_top; docs/accuracy.md, round 13). False: the GPD everywhere.
    baseline_price_top: bool = True
    # A merchant's tail shape capped at its category peers' (in its currency): their median
    # + max(0.05, 1.5 MAD), peers being at least 3 other merchants with 200 samples or more
    # (TailFit.peer_cap; docs/accuracy.md, round 19). False: each merchant's own shape alone.
    baseline_peer_shape_cap: bool = True
    # A merchant's window lacks its rows judged high, so a large heavy-tailed one is read as
    # right-truncated at its own 1-in-5,000 edge (TailFit.truncated_at; docs/accuracy.md,
    # round 20). False: its excesses as they are.
    baseline_truncated_fit: bool = True
    # How long one unit of work on PostgreSQL may go unanswered (a recompute's step, a read
    # of the insert counter, the leadership check) before it is given up as an outage: wide,
    # since a recompute over 10 M rows takes about a second and a bound the work outgrew
    # would fail every recompute (baseline_worker/service.py).
    database_timeout_seconds: float = Field(default=120, gt=0, le=3600)
    # How often a standby instance tries to take over the leadership lock.
    standby_poll_seconds: float = Field(default=2, gt=0)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    metrics_port: int = Field(default=9102, ge=0, le=65535)
