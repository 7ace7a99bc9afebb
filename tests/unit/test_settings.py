"""Configuration is validated at start-up, naming the bad variable."""

import pytest

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


def test_tiers_must_be_ordered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("Z_HIGH", "9")
    with pytest.raises(SystemExit):
        load_settings(DetectorSettings)
    assert "Z_MEDIUM <= Z_HIGH <= Z_CRITICAL" in capsys.readouterr().err


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
