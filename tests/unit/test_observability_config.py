"""The Grafana dashboard, the alert rules and the Prometheus configs agree with each other and
with the metrics the workers declare, without running any of them (tests/e2e/
test_observability.py runs them for real)."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Metric

from baseline_worker.metrics import BaselineMetrics
from detector_worker.metrics import DetectorMetrics
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.webhooks.metrics import NotifierMetrics

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
DASHBOARD = OPS / "grafana" / "dashboards" / "jalytics.json"
JOBS = {"gateway", "detector", "baselines", "notifier"}
# Series Prometheus makes itself.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
# The panels the issue asks for, by title.
REQUIRED_PANELS = {
    "Transactions per category",
    "Anomalies by severity",
    "HTTP latency (p50 / p99)",
    "Database query latency (p99)",
    "Consumer lag by partition",
    "Transactions per minute",
    "Top merchants",
}
# Metrics a worker exposes that no panel shows, on purpose.
NOT_ON_DASHBOARD = {
    "process_virtual_memory_bytes": "address space reserved, not memory used; the resident "
    "memory panel shows what the workers use",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def alerts() -> list[dict[str, Any]]:
    groups = load_yaml(OPS / "prometheus" / "rules.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def every_expression() -> Iterator[str]:
    for panel in dashboard()["panels"]:
        yield from (target["expr"] for target in panel["targets"])
    yield from (a["expr"] for a in dashboard()["annotations"]["list"] if "expr" in a)
    yield from (rule["expr"] for rule in alerts())


def metric_names(promql: str) -> set[str]:
    """The metric names an expression selects (a tokenizer good enough for our expressions:
    label matchers, ranges and grouping lists are dropped, calls and keywords skipped)."""
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", promql)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    return {
        word
        for word, call in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\(?)", text)
        if not call and word not in PROMQL_KEYWORDS
    }


def sample_names(family: Metric) -> set[str]:
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
    }[family.type]
    return {family.name + suffix for suffix in suffixes}


def declared_families() -> list[Metric]:
    creators: list[Callable[[CollectorRegistry], object]] = [
        GatewayMetrics.create,
        DetectorMetrics.create,
        BaselineMetrics.create,
        NotifierMetrics.create,
    ]
    families = []
    for create in creators:
        registry = CollectorRegistry()  # one each: the workers share db_query_duration_seconds
        create(registry)
        families += list(registry.collect())
    return families


def test_every_queried_metric_is_declared_by_a_worker() -> None:
    declared = set().union(*(sample_names(f) for f in declared_families()))
    queried = set().union(*(metric_names(e) for e in every_expression()))
    assert queried - declared - PROMETHEUS_SERIES == set()
    # The tokenizer does find names: the seed's are among them.
    assert {"transactions_total", "anomalies_by_severity_total"} <= queried


def panel_metrics() -> set[str]:
    exprs = (target["expr"] for panel in dashboard()["panels"] for target in panel["targets"])
    return set().union(*(metric_names(expr) for expr in exprs))


def test_every_exposed_metric_is_on_a_panel_or_left_off_with_a_reason() -> None:
    shown = panel_metrics()
    missing = {f.name for f in declared_families() if not sample_names(f) & shown}
    assert missing == set(NOT_ON_DASHBOARD)
    assert all(reason.strip() for reason in NOT_ON_DASHBOARD.values())


def test_the_panels_the_rules_mention_exist() -> None:
    titles = {panel["title"].lower() for panel in dashboard()["panels"]}
    texts = (" ".join(rule["annotations"].values()) for rule in alerts())
    mentioned = {
        re.sub(r"\s+", " ", name).lower()
        for text in texts
        for name in re.findall(r"the ([A-Za-z][\w ()/-]*?) panel\b", text)
    }
    assert mentioned - titles == set()


def test_the_docs_list_every_metric() -> None:
    docs = (ROOT / "docs" / "observability.md").read_text()
    names = {f.name + ("_total" if f.type == "counter" else "") for f in declared_families()}
    undocumented = {n for n in names if f"`{n}`" not in docs and not n.startswith("process_")}
    assert undocumented == set()


def test_the_dashboard_is_provisioned_with_its_uid_and_datasource() -> None:
    board = dashboard()
    assert board["uid"] == "jalytics_dashboard"
    datasources = load_yaml(OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasources["datasources"][0]["uid"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_mounts_the_dashboards_where_the_provider_reads_them() -> None:
    provider = load_yaml(OPS / "grafana" / "provisioning" / "dashboards" / "jalytics.yml")
    path = provider["providers"][0]["options"]["path"]
    grafana = load_yaml(ROOT / "compose.yaml")["services"]["grafana"]
    mounts = dict(volume.split(":")[:2][::-1] for volume in grafana["volumes"])
    assert (ROOT / mounts[path] / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    assert "/etc/grafana/provisioning" in mounts


def test_the_dashboard_has_the_panels_operators_asked_for() -> None:
    titles = [panel["title"] for panel in dashboard()["panels"]]
    assert set(titles) >= REQUIRED_PANELS
    assert len(titles) == len(set(titles))


def test_status_panels_are_colour_coded() -> None:
    for panel in dashboard()["panels"]:
        if panel["type"] == "stat":
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert len({step["color"] for step in steps}) >= 2, panel["title"]


def overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_panels_do_not_overlap() -> None:
    grids = [(p["title"], p["gridPos"]) for p in dashboard()["panels"]]
    for i, (title, grid) in enumerate(grids):
        assert grid["x"] + grid["w"] <= 24, title
        for other, other_grid in grids[i + 1 :]:
            assert not overlaps(grid, other_grid), (title, other)


@pytest.mark.parametrize("alert", alerts(), ids=lambda rule: str(rule["alert"]))
def test_each_alert_says_how_bad_and_what_to_do(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"critical", "warning"}
    assert alert["labels"]["component"]
    assert {"summary", "description"} <= set(alert["annotations"])


def minutes(duration: str) -> float:
    """A promtool eval_time ("90s", "25m", "2h") in minutes."""
    value, unit = float(duration[:-1]), duration[-1]
    return value * {"s": 1 / 60, "m": 1, "h": 60}[unit]


def test_each_alert_has_a_unit_test_that_fires_and_clears_it() -> None:
    """Issue 18: an alert with no `for:` on `> 0` fired forever. Each rule is shown firing and,
    later in the same story, resolved."""
    fires_and_clears = set()
    for test in load_yaml(OPS / "prometheus" / "rules.test.yml")["tests"]:
        cases = sorted(test.get("alert_rule_test", []), key=lambda c: minutes(c["eval_time"]))
        for i, case in enumerate(cases):
            cleared_later = (
                later["alertname"] == case["alertname"] and not later.get("exp_alerts")
                for later in cases[i + 1 :]
            )
            if case.get("exp_alerts") and any(cleared_later):
                fires_and_clears.add(case["alertname"])
    assert {alert["alert"] for alert in alerts()} == fires_and_clears


@pytest.mark.parametrize("alert", alerts(), ids=lambda rule: str(rule["alert"]))
def test_each_alert_waits_before_firing(alert: dict[str, Any]) -> None:
    """A blip does not page: every rule holds for a while (`for:`) before it fires."""
    assert minutes(alert.get("for", "0m")) >= 1


@pytest.mark.parametrize("config", ["prometheus.yml.template", "prometheus.compose.yml"])
def test_prometheus_configs_scrape_the_jobs_the_rules_name(config: str) -> None:
    text = (OPS / "prometheus" / config).read_text()
    jobs = set(re.findall(r"job_name:\s*(\S+)", text))
    assert jobs >= JOBS
    assert "rule_files:" in text
