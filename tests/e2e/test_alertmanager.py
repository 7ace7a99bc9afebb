"""Ops alerts reach someone: a rule firing in the Prometheus of `make up` (ops/prometheus.sh)
goes to its Alertmanager (ops/alertmanager.sh), which POSTs it to the webhook at
ALERTMANAGER_WEBHOOK_URL — here a small receiver on 127.0.0.1. Both are Debian's packages,
installed by the scripts when missing (CI runs as root)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.processes import PrivateService, free_port, get_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Fires at once (no `for:`) as soon as Prometheus has scraped itself.
FIRING_RULE = """
groups:
  - name: test
    rules:
      - alert: JalyticsTestAlwaysFiring
        expr: up{job="prometheus"} == 1
        labels: {severity: warning}
        annotations: {summary: "fires as soon as Prometheus scrapes itself"}
"""
# Rule evaluation every 1 s, Alertmanager's group_wait 1 s: seconds, not minutes.
DELIVERY_BOUND_S = 60


class WebhookReceiver:
    """Collects the JSON bodies Alertmanager POSTs."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"

    async def receive(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=200)

    def alertnames(self) -> set[str]:
        return {alert["labels"]["alertname"] for b in self.bodies for alert in b["alerts"]}


async def test_a_firing_rule_reaches_the_webhook_receiver(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/alerts", receiver.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()

    rules = tmp_path / "rules.yml"
    rules.write_text(FIRING_RULE)
    ports = {"ALERTMANAGER_PORT": str(free_port()), "PROMETHEUS_PORT": str(free_port())}
    alertmanager = PrivateService(
        "alertmanager.sh",
        tmp_path / "state",
        ports | {"ALERTMANAGER_WEBHOOK_URL": receiver.url, "ALERTMANAGER_GROUP_WAIT": "1s"},
    )
    prometheus = PrivateService(
        "prometheus.sh",
        tmp_path / "state",
        ports | {"PROMETHEUS_RULES": str(rules), "PROMETHEUS_SCRAPE_INTERVAL": "1s"},
    )
    try:
        # The scripts block (and may apt-get install): keep the receiver's loop free.
        await asyncio.to_thread(alertmanager.__enter__)
        await asyncio.to_thread(prometheus.__enter__)
        started = time.monotonic()
        while "JalyticsTestAlwaysFiring" not in receiver.alertnames():
            assert time.monotonic() - started < DELIVERY_BOUND_S, (
                f"no alert at the webhook after {DELIVERY_BOUND_S}s; got {receiver.bodies}"
            )
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(prometheus.__exit__)
        await asyncio.to_thread(alertmanager.__exit__)
        await runner.cleanup()

    body = next(b for b in receiver.bodies if b["alerts"])
    assert body["receiver"] == "ops"
    [alert] = [a for a in body["alerts"] if a["labels"]["alertname"] == "JalyticsTestAlwaysFiring"]
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"].startswith("fires as soon as")


def test_without_a_webhook_the_alertmanager_still_starts(tmp_path: Path) -> None:
    """The default of `make up`: no ALERTMANAGER_WEBHOOK_URL, alerts in the UI only."""
    port = free_port()
    service = PrivateService(
        "alertmanager.sh", tmp_path / "state", {"ALERTMANAGER_PORT": str(port)}
    )
    service.env.pop("ALERTMANAGER_WEBHOOK_URL", None)
    with service:
        assert service.run("env").strip() == f"export ALERTMANAGER_URL=http://127.0.0.1:{port}"
        status, body = get_json(f"http://127.0.0.1:{port}/api/v2/status", timeout=5)
        assert status == 200
        assert "webhook_configs" not in body["config"]["original"]
