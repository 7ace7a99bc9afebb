"""Configuration is validated at start-up, naming the bad variable."""

import pytest

from detector_worker.scoring import SEED_STRICT_TIERS, ScoringConfig
from detector_worker.settings import DetectorSettings
from ingest_gateway.settings import GatewaySettings
from shared.settings import load_settings


def test_a_bad_value_stops_the_process_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(GatewaySettings)
    assert exit_info.value.code == 2
    assert "PORT" in capsys.readouterr().err


def test_a_missing_database_url_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir("/")  # no .env here
    with pytest.raises(SystemExit):
        load_settings(GatewaySettings)
    assert "DATABASE_URL" in capsys.readouterr().err


def test_seed_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("ANOMALY_STRICT_MODE", "true")
    monkeypatch.setenv("LOG_LEVEL", "WARN")
    settings = load_settings(DetectorSettings)
    assert settings.scoring_config().strict_mode
    assert settings.log_level == "warn"


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ("medium=2,high=9,critical=5", "medium <= high <= critical"),
        ("medium=2,high=3", "name each of medium, high and critical"),
        ("medium=1/10,high=5/2,critical=5", "a share below 1"),
        ("medium=two,high=3,critical=5", "ALERT_TIERS"),
    ],
)
def test_bad_tiers_stop_the_detector_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiers: str, problem: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("ALERT_TIERS", tiers)
    with pytest.raises(SystemExit):
        load_settings(DetectorSettings)
    err = capsys.readouterr().err
    assert "ALERT_TIERS" in err and problem in err


def test_tiers_are_z_values_budgets_or_the_seed_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("ALERT_TIERS", "medium=2σ,high=1/5000,critical=5")
    monkeypatch.setenv("STRICT_ALERT_TIERS", "seed-strict")
    config = load_settings(DetectorSettings).scoring_config()
    assert config.tiers.medium == 2 and config.tiers.critical == 5
    assert config.tiers.high == pytest.approx(3.5401, abs=1e-4)  # 1 in 5,000, one-sided
    assert config.strict_tiers == SEED_STRICT_TIERS


def test_the_production_defaults_are_the_scorers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    assert load_settings(DetectorSettings).scoring_config() == ScoringConfig()


def test_the_database_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:s3cret-pw@localhost/db")
    settings = load_settings(DetectorSettings)
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)
    # libpq would quote this whole URL, password included, in its own message.
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:s3cret-pw@[::1/db")
    with pytest.raises(SystemExit):
        load_settings(DetectorSettings)
    err = capsys.readouterr().err
    assert "DATABASE_URL" in err and "s3cret-pw" not in err
