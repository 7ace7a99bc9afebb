"""compose.yaml parses and validates as the Compose Specification (compose_spec, no Docker
engine), and keeps its promises: Kafka's data on its volume and reachable from the host, one
image for the Python services, healthchecks on the workers, time for the gateway to drain."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from compose_spec import PyCompose, parse_duration

from ingest_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {
    "gateway": "PORT",
    "detector": "METRICS_PORT",
    "baselines": "METRICS_PORT",
    "notifier": "METRICS_PORT",
}


def compose() -> dict[str, Any]:
    """The file as compose sees it: anchors and merge keys resolved (by YAML, as compose-go
    does), then parsed and validated by compose_spec, which raises on any invalid field."""
    merged = yaml.safe_load((ROOT / "compose.yaml").read_text())
    parsed: dict[str, Any] = PyCompose.from_json(json.dumps(merged)).to_dict()
    PyCompose.from_json(json.dumps(merged)).to_spec()  # the typed model validates too
    return parsed


SERVICES: dict[str, dict[str, Any]] = compose()["services"]


def environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def test_every_reference_resolves() -> None:
    volumes = set(compose().get("volumes", {}))
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", {})) <= set(SERVICES), name
        for mount in service.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else mount.split(":")[0]
            assert source.startswith(".") or source in volumes, (name, source)


def test_kafka_keeps_its_data_on_the_volume() -> None:
    [mount] = SERVICES["kafka"]["volumes"]
    target = mount["target"] if isinstance(mount, dict) else mount.split(":")[1]
    assert environment("kafka")["KAFKA_LOG_DIRS"] == target


def test_kafka_is_reachable_from_the_host_at_the_address_it_advertises() -> None:
    advertised = environment("kafka")["KAFKA_ADVERTISED_LISTENERS"].split(",")
    published = {str(port) for port in SERVICES["kafka"].get("ports", [])}
    host_listeners = [a for a in advertised if "//127.0.0.1:" in a or "//localhost:" in a]
    assert host_listeners, advertised
    port = host_listeners[0].rsplit(":", 1)[1]
    assert any(p.endswith(f":{port}:{port}") or p == f"{port}:{port}" for p in published)
    # The containers use the listener advertised under the service's name.
    internal = next(a for a in advertised if "//kafka:" in a).split("//")[1]
    assert {environment(w)["KAFKA_BOOTSTRAP_SERVERS"] for w in WORKERS} == {internal}


def test_one_service_builds_the_image_the_others_run() -> None:
    builders = [name for name, service in SERVICES.items() if "build" in service]
    assert builders == ["provision"]
    image = SERVICES["provision"]["image"]
    for worker in WORKERS:
        assert SERVICES[worker]["image"] == image
        assert SERVICES[worker]["pull_policy"] == "never"


@pytest.mark.parametrize(("worker", "port_variable"), WORKERS.items())
def test_each_worker_has_a_healthcheck_on_its_own_port(worker: str, port_variable: str) -> None:
    test = " ".join(SERVICES[worker]["healthcheck"]["test"])
    assert f"127.0.0.1:{environment(worker)[port_variable]}/health" in test


def test_the_gateway_may_drain_before_it_is_killed() -> None:
    grace = parse_duration(SERVICES["gateway"]["stop_grace_period"])
    drain = GatewaySettings.model_fields["shutdown_timeout_seconds"].default
    assert grace > drain + 5  # the drain, then the producer's flush


def test_every_image_is_pinned_to_a_release() -> None:
    for name, service in SERVICES.items():
        if "build" in service or service.get("pull_policy") == "never":
            continue
        assert re.search(r":v?\d+\.\d+(\.\d+)?$", service["image"]), (name, service["image"])


def test_prometheus_sends_its_alerts_to_the_alertmanager_service() -> None:
    """Under compose too, alerts go somewhere: prometheus.compose.yml names the alertmanager
    service, on the port it listens on, and the config it mounts exists."""
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.compose.yml").read_text())
    [manager] = config["alerting"]["alertmanagers"]
    [target] = [t for static in manager["static_configs"] for t in static["targets"]]
    host, port = target.split(":")
    assert host == "alertmanager"
    assert host in SERVICES["prometheus"].get("depends_on", {})
    assert any(str(p).endswith(f":{port}") for p in SERVICES[host]["ports"])
    [mount] = SERVICES[host]["volumes"]
    source = mount["source"] if isinstance(mount, dict) else mount.split(":")[0]
    assert (ROOT / source).is_file()
