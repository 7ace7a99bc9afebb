"""Schemathesis against the live gateway's own OpenAPI document: no server errors, no
response that breaks the schema, every schema-violating request refused."""

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Isolated
from tests.processes import free_port, running

pytestmark = pytest.mark.e2e
CONFIG = Path(__file__).with_name("schemathesis.toml")
SUMMARY = re.compile(r"(\d+) generated, (.+?)(?:, (\d+) skipped)?$", re.MULTILINE)
SEED = re.compile(r"^\s*Seed: (\d+)\s*$", re.MULTILINE)
# A known crash inside hypothesis' coverage phase (lambda source introspection), not a
# finding about the API: such a run is repeated once.
TOOL_CRASH = "AST constructor recursion depth mismatch"
# Once in ~20 CI runs (~30,000 requests) one request met "Remote end closed connection
# without response"; replaying its seed here, idle and under CPU load, passed every time.
# A run whose only errors are network errors is replayed once with its seed: the same
# requests must then pass, so an answer the gateway really cannot give still fails, and
# the gateway's log must hold no ERROR line while it served either way.
# The summary's error counts ("  🚫 Network Error: 1"); a dropped connection, not a timeout
# (a handler that sometimes hangs is not replayed away).
ERROR_TITLES = re.compile(r"^\s+🚫 ([^:\n]+): \d+\s*$", re.MULTILINE)
DROPPED = "Remote end closed connection without response"
REPRODUCE = re.compile(r"^\s+(curl .+)$", re.MULTILINE)


def transport_only(result: subprocess.CompletedProcess[str]) -> bool:
    """No check failed, and every error is a connection the server closed unanswered."""
    titles = set(ERROR_TITLES.findall(result.stdout))
    return (
        result.returncode != 0
        and "Failures:" not in result.stdout
        and titles == {"Network Error"}
        and DROPPED in result.stdout
        and "timed out" not in result.stdout.lower()
    )


def errors_logged(log: Path) -> list[str]:
    """The gateway's ERROR and CRITICAL lines while it served (its shutdown is not under test
    here: a producer flush that times out at SIGTERM logs an ERROR of its own)."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # not one of the gateway's JSON lines (a library's stray print)
        if str(record.get("message", "")).startswith("gateway stopping"):
            break
        if record.get("level") in {"ERROR", "CRITICAL"}:
            found.append(line)
    return found


def run_schemathesis(base: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/openapi.json",
        "-H",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "30",
        "--workers",
        "1",
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    report.write_text(result.stdout + result.stderr)
    return result


def test_the_live_gateway_honours_its_openapi_document(isolated: Isolated, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **isolated.worker_env("gateway"),
        "PORT": str(port),
        "RATE_LIMIT_RPS": "100000",
        "RATE_LIMIT_BURST": "100000",
        "VERDICT_WAIT_SECONDS": "0.1",
    }
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        base = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{base}/health")
        result = run_schemathesis(base, tmp_path / "schemathesis.txt")
        if result.returncode != 0 and TOOL_CRASH in result.stdout:
            result = run_schemathesis(base, tmp_path / "schemathesis-retry.txt")
        if transport_only(result) and (seed := SEED.search(result.stdout)):
            # Shown in the run's warnings summary even when the replay passes: the evidence
            # for the next look at it (which request, and the gateway's log beside it).
            warnings.warn(
                f"schemathesis met network errors only; replaying seed {seed.group(1)}: "
                f"{' | '.join(REPRODUCE.findall(result.stdout))} (log: {tmp_path})",
                stacklevel=1,
            )
            result = run_schemathesis(
                base, tmp_path / "schemathesis-replay.txt", "--seed", seed.group(1)
            )
        gateway.assert_running()

    summary = SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout[-3000:]
    print(f"\nschemathesis: {summary.group(0)}")
    assert result.returncode == 0, result.stdout[-6000:]
    generated = int(summary.group(1))
    assert generated > 100
    assert summary.group(2) == f"{generated} passed"
    assert "Server error" not in result.stdout
    logged = errors_logged(tmp_path / "gateway.log")
    assert not logged, logged[:5]
