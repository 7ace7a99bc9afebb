"""Prometheus scraping the real workers: every PromQL expression of the Grafana dashboard and
of the alert rules parses, and every dashboard panel shows data once real transactions flowed
(over HTTP and straight to Kafka, with an anomaly and a dead letter among them)."""

import http.server
import json
import math
import os
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import AUTH_HEADERS, Isolated
from tests.e2e.test_end_to_end import post_json
from tests.kafka_helpers import produce_history
from tests.processes import ROOT, Worker, free_port, get_json, running, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "jalytics.json"
RULES = ROOT / "ops" / "prometheus" / "rules.yml"
# What Grafana would put in for its variables, for a 1 s scrape interval and a short run.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "10m"}
HISTORY = 60


@dataclass(frozen=True)
class Expression:
    where: str
    promql: str


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def dashboard_panels() -> dict[str, list[str]]:
    """Panel title -> its PromQL expressions (rows, which only group panels, left out)."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        panel["title"]: [grafana_to_promql(t["expr"]) for t in panel["targets"]]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }


def dashboard_annotations() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [grafana_to_promql(a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]


def rule_expressions() -> dict[str, str]:
    """Alert name -> its expression, as written in rules.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


class PromQLError(AssertionError):
    pass


class PrometheusApi:
    """The HTTP API of the Prometheus under test."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = get_json(f"{self.url}{path}{query}", timeout=10)
        if status != 200 or body.get("status") != "success":
            raise PromQLError(f"{path} {params}: HTTP {status}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The series an instant query returns now (raises PromQLError if it does not parse)."""
        data = self._get("/api/v1/query", query=promql)
        result: list[dict[str, Any]] = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return result

    def value(self, promql: str) -> float:
        series = self.query(promql)
        assert len(series) == 1, f"{promql}: {series}"
        return float(series[0]["value"][1])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def active(self) -> set[str]:
        """Alerts pending (condition true, waiting out `for:`) or firing."""
        return {
            alert["labels"]["alertname"]
            for alert in self._get("/api/v1/alerts")["alerts"]
            if alert["state"] in {"pending", "firing"}
        }

    def scraped_jobs(self) -> set[str]:
        targets = self._get("/api/v1/targets")["activeTargets"]
        return {t["labels"]["job"] for t in targets if t["health"] == "up"}


def finite_series(series: list[dict[str, Any]]) -> int:
    return sum(1 for s in series if math.isfinite(float(s["value"][1])))


@contextmanager
def local_prometheus(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """ops/prometheus.sh start/stop, as `make up` uses it, with the test's state dir and ports.

    Yields what `start` exports (PROMETHEUS_URL and the addresses of its web pages).
    """
    script = str(ROOT / "ops" / "prometheus.sh")

    def ops(command: str) -> str:
        done = subprocess.run(
            ["bash", script, command], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"prometheus.sh {command}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    exported = ops("start").splitlines()
    try:
        yield dict(line.removeprefix("export ").split("=", 1) for line in exported)
    finally:
        ops("stop")


def test_the_printed_prometheus_pages_answer(tmp_path: Path) -> None:
    """`make up` prints the alerts and targets pages of the Prometheus it started: both open.

    Debian's package serves only the classic UI, where /alerts and /targets are 404.
    """
    env = os.environ | {
        "JALYTICS_STATE_DIR": str(tmp_path / "state"),
        "PROMETHEUS_PORT": str(free_port()),
        # Nobody listens there: the test's alerts never reach a `make up` Alertmanager.
        "ALERTMANAGER_PORT": str(free_port()),
    }
    with local_prometheus(env) as exported:
        for name in ("PROMETHEUS_ALERTS_URL", "PROMETHEUS_TARGETS_URL"):
            url = exported[name]
            assert url.startswith(exported["PROMETHEUS_URL"]), exported
            with urllib.request.urlopen(url, timeout=5) as page:  # noqa: S310 - localhost
                assert page.status == 200, url


@dataclass(frozen=True)
class System:
    env: dict[str, str]
    api: str
    detector: str
    detector_worker: Worker
    prometheus: PrometheusApi


@pytest.fixture
def system(isolated: Isolated, tmp_path: Path) -> Iterator[System]:
    gateway, detector, baselines, notifier, prometheus = (free_port() for _ in range(5))
    env = {
        **isolated.env,
        # The webhook receiver below listens on loopback.
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "PORT": str(gateway),
        "RATE_LIMIT_RPS": "1000",
        "RATE_LIMIT_BURST": "1000",
        "CONSUMER_GROUP": f"detector-{uuid4().hex[:8]}",
    }
    prometheus_env = {
        **os.environ,
        "JALYTICS_STATE_DIR": str(tmp_path / "state"),
        "PROMETHEUS_PORT": str(prometheus),
        "ALERTMANAGER_PORT": str(free_port()),  # as above: not a `make up` Alertmanager
        "PROMETHEUS_SCRAPE_INTERVAL": "1s",
        "GATEWAY_PORT": str(gateway),
        "DETECTOR_METRICS_PORT": str(detector),
        "BASELINE_METRICS_PORT": str(baselines),
        "NOTIFIER_METRICS_PORT": str(notifier),
    }
    notifier_env = isolated.worker_env("notifier") | {
        "METRICS_PORT": str(notifier),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_START_FROM": "earliest",
        "WEBHOOK_SUBSCRIPTIONS_REFRESH_SECONDS": "1",
        "WEBHOOK_CONSUMER_GROUP": f"notifier-{uuid4().hex[:8]}",
    }
    with (
        webhook_receiver() as receiver_url,
        running("ingest_gateway", env, tmp_path / "gateway.log") as gateway_worker,
        # LOG_LEVEL=warning: the test checks that the detector's log obeys it.
        running(
            "detector_worker",
            env | {"METRICS_PORT": str(detector), "LOG_LEVEL": "warning"},
            tmp_path / "detector.log",
        ) as detector_worker,
        running(
            "baseline_worker",
            env | {"METRICS_PORT": str(baselines), "RECOMPUTE_INTERVAL_SECONDS": "1"},
            tmp_path / "baselines.log",
        ) as baseline_worker,
        running(
            "ingest_gateway.webhooks", notifier_env, tmp_path / "notifier.log"
        ) as notifier_worker,
        local_prometheus(prometheus_env) as exported,
    ):
        api, ops = f"http://127.0.0.1:{gateway}", f"http://127.0.0.1:{detector}"
        gateway_worker.wait_healthy(f"{api}/health")
        detector_worker.wait_healthy(f"{ops}/health")
        baseline_worker.wait_healthy(f"http://127.0.0.1:{baselines}/health")
        subscribe(api, receiver_url)
        notifier_worker.wait_healthy(f"http://127.0.0.1:{notifier}/health")
        yield System(env, api, ops, detector_worker, PrometheusApi(exported["PROMETHEUS_URL"]))


class _Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[str]:
    """A receiver answering 204, in a thread: the fixture waits synchronously."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


def subscribe(api: str, url: str) -> None:
    """Every alert to the receiver, through the API (the gateway allows loopback here)."""
    assert post_json(f"{api}/webhooks", {"url": url, "min_severity": "medium"})[0] == 201


def post_transaction(api: str, amount: int, merchant: str) -> dict[str, Any]:
    body = {
        "amount": amount,
        "category": "food",
        "merchant": merchant,
        "transaction_date": datetime.now(UTC).isoformat(),
    }
    request = urllib.request.Request(  # noqa: S310 - localhost
        f"{api}/transactions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AUTH_HEADERS},
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
        assert response.status in (201, 202)
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def prometheus_sees(system: System, promql: str, expected: float, what: str) -> None:
    last: list[list[dict[str, Any]]] = [[]]

    def sees() -> bool:
        last[0] = series = system.prometheus.query(promql)
        return len(series) == 1 and float(series[0]["value"][1]) == expected

    try:
        wait_for(sees, 30, what)
    except AssertionError as exc:
        seen = f"{promql} == {expected} expected, last seen {last[0]}"
        raise AssertionError(f"{exc}: {seen}") from None


def let_traffic_flow(system: System) -> None:
    """The history and the dead letter, then normal and one critical transaction over HTTP.

    A labelled series is born at its first value, and a rate needs a sample before a change:
    so each step waits until Prometheus has scraped the previous one. (Real traffic is
    continuous; a test's few transactions could otherwise all land between two scrapes.)
    """
    prometheus_sees(system, "sum(transactions_total)", HISTORY, "Prometheus to see the history")
    prometheus_sees(system, "sum(detector_dead_letters_total)", 1, "Prometheus to see the DLQ")
    wait_for(
        lambda: get_json(f"{system.detector}/health")[1]["baseline_scopes"] == 2,
        60,
        "the baseline worker's category and merchant baselines to reach the detector",
    )
    assert post_transaction(system.api, 100, "Starbucks")["anomaly"] in (False, None)
    prometheus_sees(
        system,
        'sum(http_request_duration_seconds_count{method="POST",route="/transactions"})',
        1,
        "Prometheus to see the first POST",
    )
    for merchant in ("Cafe Nero", "Starbucks"):
        assert post_transaction(system.api, 100, merchant)["anomaly"] in (False, None)
    critical = post_transaction(system.api, 10_000, "Starbucks")
    assert critical["anomaly"] is True and critical["severity"] == "critical", critical


def empty_panels(prometheus: PrometheusApi, panels: dict[str, list[str]]) -> list[str]:
    """Titles of the panels none of whose queries has a finite value yet."""
    return [
        title
        for title, exprs in panels.items()
        if not any(finite_series(prometheus.query(expr)) for expr in exprs)
    ]


def wait_for_panel_data(
    prometheus: PrometheusApi, panels: dict[str, list[str]], timeout: float
) -> None:
    never: set[str] = set(panels)

    def every_panel_has_data() -> bool:
        empty = empty_panels(prometheus, panels)
        never.intersection_update(empty)
        return not empty

    try:
        wait_for(every_panel_has_data, timeout, "data in every dashboard panel at once")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; never any data: {sorted(never)}") from None


def json_line(line: str) -> dict[str, Any]:
    try:
        parsed: dict[str, Any] = json.loads(line)
    except ValueError:
        raise AssertionError(f"not a JSON log line: {line!r}") from None
    return parsed


def assert_log_is_json_at_level(worker: Worker, allowed: set[str]) -> list[dict[str, Any]]:
    lines = [json_line(line) for line in worker.log_path.read_text().splitlines() if line]
    assert lines, "the detector logged nothing"
    assert {line["level"] for line in lines} <= allowed, worker.log_tail()
    return lines


async def test_every_dashboard_and_rule_query_answers(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    prometheus = system.prometheus
    panels = dashboard_panels()
    rules = rule_expressions()
    expressions = [Expression(f"panel {title!r}", e) for title, es in panels.items() for e in es]
    expressions += [Expression("annotation", e) for e in dashboard_annotations()]
    expressions += [Expression(f"rule {name}", e) for name, e in rules.items()]

    # Every expression parses: a syntax error fails here at once, before any waiting.
    for expression in expressions:
        prometheus.query(expression.promql)

    # Scraping first: a rate needs samples from before the traffic as well as after.
    wait_for(
        lambda: prometheus.scraped_jobs() >= {"gateway", "detector", "baselines", "notifier"},
        30,
        "Prometheus to scrape the four workers",
    )
    # Then one record that is not JSON at all: it must end up as a dead letter.
    await produce_history(system.env, HISTORY, then=[(b"garbage-1", b"{not json")])
    let_traffic_flow(system)
    wait_for_panel_data(prometheus, panels, 60)

    # The rules Prometheus runs are ours, and each evaluates without error.
    loaded = {rule["name"]: rule for rule in prometheus.rules()}
    assert set(loaded) == set(rules)
    assert {name: rule["health"] for name, rule in loaded.items()} == dict.fromkeys(rules, "ok")
    # The dead letter makes its rule true on the real metrics: the alert is pending (it fires
    # only if dead letters keep coming for 10 minutes). Anomalies are no ops alert.
    wait_for(
        lambda: "JalyticsDeadLetters" in prometheus.active(),
        30,
        "the dead-letter alert to be pending",
    )

    # What the panels show is what happened. Waited for, not read once: a panel has data from
    # the first of the last POSTs on, and the scrape that counts the rest may still be to come.
    expected_counts = {
        "sum(transactions_total)": HISTORY + 4,
        'sum(anomalies_by_severity_total{severity="critical"})': 1,
        'sum(detector_dead_letters_total{reason="malformed_json"})': 1,
        'sum(transactions_by_merchant_total{merchant="Cafe Nero"})': 1,
    }
    for promql, expected in expected_counts.items():
        prometheus_sees(system, promql, expected, f"Prometheus to count {expected}")
    assert prometheus.value("max(detector_baseline_age_seconds)") < 60
    # The critical alert was webhooked, once.
    wait_for(
        lambda: prometheus.value('sum(webhook_deliveries_total{outcome="delivered"})') == 1,
        30,
        "Prometheus to see the webhook delivery",
    )
    wait_for(
        lambda: prometheus.value("sum(detector_consumer_lag)") == 0,
        30,
        "the consumer lag to drop to 0 once everything is committed",
    )

    # LOG_LEVEL=warning holds for every logger; the dead letter's line says where it came from.
    logged = assert_log_is_json_at_level(system.detector_worker, {"WARNING", "ERROR"})
    dead = [line for line in logged if line["message"] == "dead-lettering record"]
    assert dead and dead[0]["reason"] == "malformed_json" and "offset" in dead[0]

    with capsys.disabled():
        print(f"\n{'series':>6}  expression (Prometheus {prometheus.url})")
        for expression in expressions:
            count = len(prometheus.query(expression.promql))
            print(f"{count:>6}  {expression.where}: {' '.join(expression.promql.split())}")
