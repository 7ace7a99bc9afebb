"""Secrets come only from the environment and are never written out: not in a worker's log
(at debug level, through start-up failures and refused requests), not in a settings
message."""

import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import API_KEY, AUTH_HEADERS, Isolated
from tests.e2e.test_end_to_end import post_json
from tests.processes import WORKER_MODULES, free_port, get_json, run_to_exit, running

pytestmark = pytest.mark.e2e
WEBHOOK_SECRET = "whsec-never-logged-0123456789"


def with_password(url: str, password: str, port: int | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    user = parts.username or ""
    host = f"{parts.hostname}:{port or parts.port}"
    return parts._replace(netloc=f"{user}:{password}@{host}").geturl()


@pytest.mark.parametrize("worker", list(WORKER_MODULES))
def test_start_up_failures_never_show_the_password(isolated: Isolated, worker: str) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    env = isolated.worker_env(worker) | {"LOG_LEVEL": "debug"}
    login = env["DATABASE_URL"]
    failures = {
        "database unreachable": env | {"DATABASE_URL": with_password(login, secret, free_port())},
        "wrong password": env | {"DATABASE_URL": with_password(login, secret)},
        # libpq quotes the whole URL when it cannot parse it.
        "malformed URL": env | {"DATABASE_URL": f"postgresql://u:{secret}@[::1/jalytics"},
        "another bad setting": env
        | {"DATABASE_URL": with_password(login, secret), "LOG_LEVEL": "loud"},
    }
    for case, failing in failures.items():
        code, output = run_to_exit(worker, failing)
        assert code != 0, f"{case}: {output[-2000:]}"
        assert secret not in output, f"{case} leaked the password:\n{output[-3000:]}"


def test_running_workers_log_neither_password_nor_api_key(
    isolated: Isolated, tmp_path: Path
) -> None:
    port, detector_port, baseline_port, notifier_port = (free_port() for _ in range(4))
    debug = {
        "LOG_LEVEL": "debug",
        "RECOMPUTE_INTERVAL_SECONDS": "0.5",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_SUBSCRIPTIONS_REFRESH_SECONDS": "0.5",
    }
    logs = {worker: tmp_path / f"{worker}.log" for worker in WORKER_MODULES}
    with (
        running(
            "ingest_gateway",
            isolated.worker_env("gateway") | debug | {"PORT": str(port)},
            logs["gateway"],
        ) as gateway,
        running(
            "detector_worker",
            isolated.worker_env("detector") | debug | {"METRICS_PORT": str(detector_port)},
            logs["detector"],
        ) as detector,
        running(
            "baseline_worker",
            isolated.worker_env("baseline") | debug | {"METRICS_PORT": str(baseline_port)},
            logs["baseline"],
        ) as baselines,
        running(
            "ingest_gateway.webhooks",
            isolated.worker_env("notifier") | debug | {"METRICS_PORT": str(notifier_port)},
            logs["notifier"],
        ) as notifier,
    ):
        api = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{api}/health")
        detector.wait_healthy(f"http://127.0.0.1:{detector_port}/health")
        baselines.wait_healthy(f"http://127.0.0.1:{baseline_port}/health")
        notifier.wait_healthy(f"http://127.0.0.1:{notifier_port}/health")
        # A webhook secret, read back by the notifier: in no log either.
        subscription = {"url": f"http://127.0.0.1:{free_port()}/hook", "secret": WEBHOOK_SECRET}
        assert post_json(f"{api}/webhooks", subscription)[0] == 201
        time.sleep(1.5)  # the notifier has read it (refresh every 0.5 s)
        assert get_json(f"{api}/alerts", headers=AUTH_HEADERS)[0] == 200
        wrong = f"not-{API_KEY}"
        assert get_json(f"{api}/alerts", headers={"Authorization": f"Bearer {wrong}"})[0] == 401
        assert get_json(f"{api}/alerts", headers={"X-API-Key": wrong})[0] == 401
        assert get_json(f"{api}/alerts?limit=-1", headers=AUTH_HEADERS)[0] == 400
        assert get_json(f"{api}/ready")[0] == 200
    for worker, log in logs.items():
        text = log.read_text(errors="replace")
        password = urllib.parse.urlsplit(isolated.worker_urls[worker]).password
        assert password and password not in text, worker
        assert API_KEY not in text, worker
        assert WEBHOOK_SECRET not in text, worker
