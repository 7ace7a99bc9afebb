"""The real workers under the supervisor `make up` runs them with (ops/workers.sh): each one,
killed with SIGKILL, is started again and answers /health (issue 18: nothing restarted a dead
worker under `make up`). Real processes, real broker and database."""

import functools
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Isolated
from tests.processes import ROOT, free_port, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def workers_script(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "ops" / "workers.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"workers.sh {args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def supervised(
    isolated: Isolated, state_dir: Path
) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """ops/workers.sh start with the test's schema, topics, logins and API key; stop after."""
    ports = {name: free_port() for name in ("gateway", "detector", "baselines", "notifier")}
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env |= {k: v for k, v in isolated.env.items() if k != "DATABASE_URL"}
    env |= {
        "JALYTICS_STATE_DIR": str(state_dir),
        "PORT": str(ports["gateway"]),
        "DETECTOR_METRICS_PORT": str(ports["detector"]),
        "BASELINE_METRICS_PORT": str(ports["baselines"]),
        "NOTIFIER_METRICS_PORT": str(ports["notifier"]),
        "GATEWAY_DATABASE_URL": isolated.worker_urls["gateway"],
        "DETECTOR_DATABASE_URL": isolated.worker_urls["detector"],
        "BASELINE_DATABASE_URL": isolated.worker_urls["baseline"],
        "NOTIFIER_DATABASE_URL": isolated.worker_urls["notifier"],
    }
    workers_script(env, "start")
    try:
        yield env, ports
    finally:
        workers_script(env, "stop")


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return bool(response.status == 200)


def supervised_pid(env: dict[str, str], name: str) -> int:
    """The worker's pid as supervisord knows it; 0 while it is not running."""
    done = subprocess.run(
        ["bash", str(ROOT / "ops" / "workers.sh"), "ctl", "pid", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return int(done.stdout.strip() or 0)


def test_each_real_worker_killed_comes_back(isolated: Isolated, tmp_path: Path) -> None:
    with supervised(isolated, tmp_path / "state") as (env, ports):
        for port in ports.values():
            wait_for(functools.partial(healthy, port), 90, f"the worker on port {port}")
        for name, port in ports.items():
            dead = supervised_pid(env, name)
            os.kill(dead, signal.SIGKILL)

            def back(name: str = name, dead: int = dead, port: int = port) -> bool:
                return supervised_pid(env, name) not in (0, dead) and healthy(port)

            wait_for(back, 90, f"{name} back after kill -9")
