"""ALERT_TIERS, STRICT_ALERT_TIERS and ANOMALY_STRICT_MODE, defined once: the detector scores
with them and the gateway draws them on the alert page, so both read the same environment."""

from typing import Annotated

from pydantic import field_validator
from pydantic_settings import NoDecode

from detector_worker.scoring import ScoringConfig, Tiers
from shared.settings import CommonSettings

DEFAULTS = ScoringConfig()


class AlertTierSettings(CommonSettings):
    anomaly_strict_mode: bool = DEFAULTS.strict_mode
    # `seed`, `seed-strict`, or medium=..,high=..,critical=.. with z values (3, 3σ) or alert
    # budgets (1/5000); see Tiers.parse.
    alert_tiers: Annotated[Tiers, NoDecode] = DEFAULTS.tiers
    strict_alert_tiers: Annotated[Tiers, NoDecode] = DEFAULTS.strict_tiers

    @field_validator("alert_tiers", "strict_alert_tiers", mode="before")
    @classmethod
    def _parse_tiers(cls, value: object) -> object:
        return Tiers.parse(value) if isinstance(value, str) else value

    @property
    def active_tiers(self) -> Tiers:
        """The tiers the detector scores with (ScoringConfig.active_tiers): the strict ones
        under ANOMALY_STRICT_MODE."""
        return self.strict_alert_tiers if self.anomaly_strict_mode else self.alert_tiers
