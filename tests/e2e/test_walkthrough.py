"""The README's walkthrough, run as written against the four workers as processes: a webhook
to the README's receiver, an anomalous transaction, its signed delivery, the alert acknowledged
and resolved with a suppression, and the next such alert stored, marked and not pushed.

Only what ties the block to a machine changes: `make up` is replaced by the processes started
here (with WEBHOOK_ALLOW_PRIVATE=true, as the block's step 1 sets it), the key, ports and the
wait for the baseline worker's minute (a poll of the detector's /health instead)."""

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, Isolated
from tests.integration.test_webhooks import readme_receiver
from tests.processes import ROOT, free_port, running

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("jq") is None, reason="the walkthrough needs jq"),
]


def readme_walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- walkthrough -->", 1)[1]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def localised(script: str, api: str, detector: str, receiver_port: int) -> str:
    """The block with this test's system in place of `make up`'s."""
    wait_for_baselines = (
        "for _ in $(seq 240); do curl -s "
        f"{detector}/health | grep -q '\"baseline_scopes\": 2' && break; sleep 0.5; done"
    )
    for old, new in (
        ("WEBHOOK_ALLOW_PRIVATE=true make up\n", ""),
        ("$(cat .run/api-key)", API_KEY),
        ("http://127.0.0.1:8000", api),
        ("5002", str(receiver_port)),
        ("sleep 65\n", wait_for_baselines + "\n"),
    ):
        assert old in script, f"the walkthrough no longer has {old!r}"
        script = script.replace(old, new)
    return script


@pytest.fixture
def system(isolated: Isolated, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Gateway, detector, baseline worker and notifier: (API base URL, detector base URL)."""
    api_port, detector_port = free_port(), free_port()
    common = {"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_SUBSCRIPTIONS_REFRESH_SECONDS": "0.5"}
    workers: dict[str, dict[str, str]] = {
        "ingest_gateway": isolated.worker_env("gateway") | {"PORT": str(api_port)},
        "detector_worker": isolated.worker_env("detector")
        | {"METRICS_PORT": str(detector_port), "CONSUMER_GROUP": f"d-{isolated.schema}"},
        "baseline_worker": isolated.worker_env("baseline")
        | {"METRICS_PORT": str(free_port()), "RECOMPUTE_INTERVAL_SECONDS": "1"},
        "ingest_gateway.webhooks": isolated.worker_env("notifier")
        | {"METRICS_PORT": str(free_port())},
    }
    api, detector = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{detector_port}"
    with ExitStack() as stack:
        started = {
            module: stack.enter_context(running(module, env | common, tmp_path / f"{module}.log"))
            for module, env in workers.items()
        }
        started["ingest_gateway"].wait_healthy(f"{api}/health")
        started["detector_worker"].wait_healthy(f"{detector}/health")
        yield api, detector


def test_the_readme_walkthrough_runs_as_written(
    system: tuple[str, str], db: Any, tmp_path: Path
) -> None:
    api, detector = system
    receiver_port = free_port()
    (tmp_path / "receiver.py").write_text(readme_receiver(receiver_port))
    script = localised(readme_walkthrough(), api, detector, receiver_port)
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its group: the receiver it starts ends with it
    )
    try:
        out, err = shell.communicate(timeout=240)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
    assert shell.returncode == 0, out + err
    assert '"anomaly": true' in out and '"severity": "critical"' in out
    assert '"acknowledged"\n' in out
    assert '["resolved","expected",' in out
    assert '["food","Starbucks","USD","catering order"]' in out
    verified = [line for line in out.splitlines() if line.startswith("verified ")]
    assert len(verified) == 1, out  # step 5: the signed delivery, seen by the receiver
    assert "\n1\nfalse\n204\n" in out  # step 8: still one delivery; step 9: expired, ended
    alerts = db.execute("SELECT severity, status, suppressed FROM alerts ORDER BY created_at")
    assert alerts.fetchall() == [("critical", "resolved", False), ("critical", "open", True)]
    assert "REFUSED" not in (tmp_path / "receiver.log").read_text()
