"""Starting the workers as a user would: separate processes, configured by environment."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from benchmarks.support import stop_process

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(
    url: str, timeout: float = 2.0, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - localhost
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


WORKER_MODULES = {
    "gateway": "ingest_gateway",
    "detector": "detector_worker",
    "baseline": "baseline_worker",
    "notifier": "ingest_gateway.webhooks",
}


def run_to_exit(worker: str, env: dict[str, str], timeout: float = 90) -> tuple[int, str]:
    """Start a worker that is expected to stop on its own; its exit code and whole output."""
    result = subprocess.run(
        [sys.executable, "-m", WORKER_MODULES[worker]],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(free_port()), "METRICS_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


class Worker:
    def __init__(self, module: str, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.module = module
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"{self.module} exited with {code}:\n{self.log_tail()}")

    def wait_healthy(self, url: str, timeout: float = 90.0) -> None:
        """Wait until `url` answers 200, failing at once (with the log) if the process died."""

        def healthy() -> bool:
            self.assert_running()
            return get_json(url)[0] == 200

        wait_for(healthy, timeout, f"{self.module} to answer {url}")

    def stop(self, timeout: float = 30.0) -> int:
        code = stop_process(self.process, timeout)
        self._log.close()
        return code


@contextmanager
def running(module: str, env: dict[str, str], log_path: Path, *args: str) -> Iterator[Worker]:
    worker = Worker(module, env, log_path, *args)
    try:
        yield worker
    finally:
        worker.stop()


class PrivateService:
    """A service of `ops/` (kafka.sh, postgres.sh) with its own state dir and ports, so that a
    fault test can stop and restart it without touching the shared one."""

    def __init__(self, script: str, state_dir: Path, ports: dict[str, str]) -> None:
        self.script = ROOT / "ops" / script
        self.env = {**os.environ, "JALYTICS_STATE_DIR": str(state_dir), **ports}

    def run(self, command: str) -> str:
        result = subprocess.run(
            ["bash", str(self.script), command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def __enter__(self) -> Self:
        self.run("start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.run("stop")
