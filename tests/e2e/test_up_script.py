"""`ops/up.sh` hands each worker only its own credentials (F14), and its logs to their owner;
its supervisor brings back a worker that dies.

The real scripts (and the real supervisord from .venv) run in a copy of the repository's
`ops/` whose services are stand-ins: PostgreSQL, Kafka, Alertmanager and Prometheus print the
environment a real start prints, and `python -m <worker>` records its pid and the environment
it was given and answers /health, so the script goes through every step, start-up checks
included, in seconds.
"""

import os
import shutil
import signal
import stat
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e

LOGINS = {
    "DATABASE_URL": "postgresql://jalytics:owner-secret@127.0.0.1:1/jalytics",
    "GATEWAY_DATABASE_URL": "postgresql://g:gateway-secret@127.0.0.1:1/jalytics",
    "DETECTOR_DATABASE_URL": "postgresql://d:detector-secret@127.0.0.1:1/jalytics",
    "BASELINE_DATABASE_URL": "postgresql://b:baseline-secret@127.0.0.1:1/jalytics",
    "NOTIFIER_DATABASE_URL": "postgresql://n:notifier-secret@127.0.0.1:1/jalytics",
}
SECRETS = {name: url.split(":")[2].split("@")[0] for name, url in LOGINS.items()}
# The stand-in worker: records its pid and environment, then answers 200 on its port.
FAKE_PYTHON = """#!/usr/bin/env bash
if [[ "$1" == -m ]]; then
    echo $$ >"$FAKE_OUT/$2.pid"
    env -0 >"$FAKE_OUT/$2.env"
    port="$PORT"; [[ "$2" == ingest_gateway ]] || port="$METRICS_PORT"
    exec python3 -c '
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()' "$port"
fi
exec python3 "$@"
"""


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def fake_root(root: Path, out: Path) -> None:
    ops = root / "ops"
    ops.mkdir(parents=True)
    for script in ("up.sh", "down.sh", "workers.sh", "lib.sh"):
        shutil.copy(ROOT / "ops" / script, ops / script)
    exports = "".join(f"echo 'export {name}={url}'\n" for name, url in LOGINS.items())
    executable(ops / "python.sh", "true\n")
    executable(ops / "postgres.sh", exports)
    executable(ops / "kafka.sh", "echo 'export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1'\n")
    prometheus = "".join(
        f"echo 'export PROMETHEUS_{name}=http://127.0.0.1:1'\n"
        for name in ("URL", "ALERTS_URL", "TARGETS_URL")
    )
    executable(ops / "prometheus.sh", prometheus)
    # Records its commands: `make up` starts it and `make down` stops it.
    alertmanager = 'echo "$1" >>"$FAKE_OUT/alertmanager.calls"\n'
    alertmanager += "[[ $1 != start ]] || echo 'export ALERTMANAGER_URL=http://127.0.0.1:1'\n"
    executable(ops / "alertmanager.sh", alertmanager)
    executable(root / ".venv/bin/python", FAKE_PYTHON)
    for tool in ("supervisord", "supervisorctl"):  # the real ones, from `make install`
        (root / ".venv/bin" / tool).symlink_to(ROOT / ".venv/bin" / tool)
    executable(root / ".venv/bin/jalytics-provision", f'env -0 >"{out}/provision.env"\n')


def environment(path: Path) -> dict[str, str]:
    pairs = (entry.partition("=") for entry in path.read_text().split("\0") if entry)
    return {name: value for name, _, value in pairs}


@dataclass(frozen=True)
class LocalRun:
    out: Path  # what the stand-in workers record
    ports: dict[str, int]  # by worker module


@contextmanager
def made_up(tmp_path: Path) -> Iterator[LocalRun]:
    """`ops/up.sh` in a stand-in repository; `ops/down.sh` after."""
    root, out = tmp_path / "repo", tmp_path / "out"
    out.mkdir()
    fake_root(root, out)
    ports = {"PORT": free_port(), "DETECTOR_METRICS_PORT": free_port()}
    ports["BASELINE_METRICS_PORT"] = free_port()
    ports["NOTIFIER_METRICS_PORT"] = free_port()
    # A caller whose own environment holds every login must not pass them on either.
    env = os.environ | LOGINS | {k: str(v) for k, v in ports.items()} | {"FAKE_OUT": str(out)}
    try:
        result = run_script(root / "ops" / "up.sh", env)
        assert result.returncode == 0, result.stderr[-3000:]
        yield LocalRun(
            out,
            {
                "ingest_gateway": ports["PORT"],
                "detector_worker": ports["DETECTOR_METRICS_PORT"],
                "baseline_worker": ports["BASELINE_METRICS_PORT"],
                "ingest_gateway.webhooks": ports["NOTIFIER_METRICS_PORT"],
            },
        )
    finally:
        stopped = run_script(root / "ops" / "down.sh", env)
        assert stopped.returncode == 0, stopped.stderr[-3000:]


def run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_f14_each_worker_gets_only_its_own_credentials(tmp_path: Path) -> None:
    with made_up(tmp_path) as run:
        out = run.out
        root = tmp_path / "repo"
        own = {
            "ingest_gateway": "GATEWAY_DATABASE_URL",
            "detector_worker": "DETECTOR_DATABASE_URL",
            "baseline_worker": "BASELINE_DATABASE_URL",
            "ingest_gateway.webhooks": "NOTIFIER_DATABASE_URL",
        }
        for module, login in own.items():
            worker_env = environment(out / f"{module}.env")
            assert worker_env["DATABASE_URL"] == LOGINS[login], module
            text = "\0".join(f"{k}={v}" for k, v in worker_env.items())
            leaked = [name for name, secret in SECRETS.items() if name != login and secret in text]
            assert leaked == [], f"{module} holds {leaked}"
            assert ("API_KEYS_SHA256" in worker_env) == (module == "ingest_gateway"), module
        provision = environment(out / "provision.env")
        assert all(provision[name] == url for name, url in LOGINS.items())
        # The logs are the operator's alone (F9 found gateway.log readable by every local user).
        modes = {
            log.name: stat.S_IMODE(log.stat().st_mode) for log in (root / ".run/logs").iterdir()
        }
        assert modes == {
            f"{name}.log": 0o600 for name in ("gateway", "detector", "baselines", "notifier")
        }


def answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return bool(response.status == 200)


def test_a_killed_worker_comes_back(tmp_path: Path) -> None:
    """Issue 18: under `make up` nothing restarted a dead worker (the detector exits 70 on an
    unexpected error and stayed dead). Each one, killed with SIGKILL, is back and answering."""
    with made_up(tmp_path) as run:
        for module, port in run.ports.items():
            pid_file = run.out / f"{module}.pid"
            dead = int(pid_file.read_text())
            os.kill(dead, signal.SIGKILL)

            def back(pid_file: Path = pid_file, dead: int = dead, port: int = port) -> bool:
                pid = int(pid_file.read_text())
                return pid != dead and Path(f"/proc/{pid}").exists() and answers(port)

            wait_for(back, timeout=30, what=f"{module} to be restarted after kill -9")


def test_up_starts_the_alertmanager_and_down_stops_it(tmp_path: Path) -> None:
    with made_up(tmp_path) as run:
        assert (run.out / "alertmanager.calls").read_text().split() == ["start"]
    assert (run.out / "alertmanager.calls").read_text().split() == ["start", "stop"]
