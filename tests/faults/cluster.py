"""A local Kafka cluster of the test's own: three KRaft nodes (each broker and controller, so
the quorum is three voters), each started by ops/kafka.sh from the same jars as the shared
broker, with its own state dir and free ports. Any node can be killed and started again."""

import asyncio
import base64
import json
import os
import signal
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from aiokafka.admin import AIOKafkaAdminClient

from tests.processes import PrivateService, free_port

# Small heaps: three JVMs share a 2-core machine with the workers and the test.
NODE_HEAP = "-Xms128m -Xmx512m"
# Three JVMs starting at once on a busy machine are slow; a node is ready only when a majority
# of the quorum is up.
START_TIMEOUT_SECONDS = 240
# A throwaway cluster: no point waiting long for a controlled shutdown whose quorum is leaving.
STOP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    service: PrivateService
    state_dir: Path

    def pid(self) -> int:
        return int((self.state_dir / "kafka" / "kafka.pid").read_text().split()[0])


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in unpadded base64url (as `random-uuid` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaCluster:
    """`with KafkaCluster(tmp) as cluster:` starts every node (together: the quorum needs a
    majority) and always stops every node on the way out, also when the body failed."""

    def __init__(self, state_root: Path, size: int = 3, min_insync_replicas: int = 2) -> None:
        controller_ports = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controller_ports))
        common = {
            "KAFKA_QUORUM_VOTERS": voters,
            "KAFKA_CLUSTER_ID": new_cluster_id(),
            "KAFKA_REPLICATION_FACTOR": str(size),
            "KAFKA_MIN_INSYNC_REPLICAS": str(min_insync_replicas),
            "KAFKA_HEAP_OPTS": NODE_HEAP,
            "KAFKA_START_TIMEOUT": str(START_TIMEOUT_SECONDS),
            "KAFKA_STOP_TIMEOUT": str(STOP_TIMEOUT_SECONDS),
        }
        self.nodes: dict[int, KafkaNode] = {}
        for index, controller_port in enumerate(controller_ports):
            node_id, port, state_dir = index + 1, free_port(), state_root / f"node-{index + 1}"
            settings = common | {
                "KAFKA_NODE_ID": str(node_id),
                "KAFKA_PORT": str(port),
                "KAFKA_CONTROLLER_PORT": str(controller_port),
            }
            service = PrivateService("kafka.sh", state_dir, settings)
            self.nodes[node_id] = KafkaNode(node_id, port, service, state_dir)
        self.replication_factor = size
        self.bootstrap = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes.values())

    def _on_every_node(self, command: str) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for result in [pool.submit(n.service.run, command) for n in self.nodes.values()]:
                result.result()  # raises the first node's failure

    def __enter__(self) -> Self:
        try:
            self._on_every_node("start")
        except BaseException:
            with suppress(AssertionError):  # the start's failure is the one to report
                self._on_every_node("stop")
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._on_every_node("stop")

    def kill(self, node_id: int) -> None:
        """SIGKILL the node's JVM (no controlled shutdown) and wait until it is gone."""
        pid = self.nodes[node_id].pid()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"kafka.Kafka" in cmdline, f"pid {pid} is not node {node_id}'s broker"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _running(pid):
            assert time.monotonic() < deadline, f"node {node_id} (pid {pid}) survived SIGKILL"
            time.sleep(0.05)

    def start(self, node_id: int) -> None:
        self.nodes[node_id].service.run("start")

    def active_controller(self) -> int:
        """The KRaft quorum's leader, from the nodes' `quorum-state` files (the newest epoch
        wins). Kafka clients cannot ask for it: in KRaft, the metadata response names a
        random broker as "controller", and aiokafka has no DescribeQuorum."""
        states = [
            json.loads(path.read_text())
            for node in self.nodes.values()
            for path in node.state_dir.glob("kafka/data/__cluster_metadata-0/quorum-state")
        ]
        newest = max(states, key=lambda state: int(state["leaderEpoch"]))
        return int(newest["leaderId"])


def _running(pid: int) -> bool:
    """Whether pid is alive and not a zombie (the broker was started detached: init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass(frozen=True)
class Leadership:
    leaders: dict[int, int]  # partition -> leader node
    in_sync: dict[int, int]  # partition -> size of its in-sync replica set
    controller: int

    def busiest_leader(self) -> int:
        """The node leading most partitions; the active controller among equals (killing it
        makes the cluster elect a new controller too)."""
        counts = Counter(self.leaders.values())
        return max(counts, key=lambda node: (counts[node], node == self.controller))


async def leadership(cluster: KafkaCluster, topic: str) -> Leadership:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        (entry,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = entry["partitions"]
    return Leadership(
        leaders={p["partition"]: p["leader"] for p in partitions},
        in_sync={p["partition"]: len(p["isr"]) for p in partitions},
        controller=cluster.active_controller(),
    )


async def wait_fully_replicated(cluster: KafkaCluster, topic: str, timeout: float) -> None:
    """Wait until every partition of `topic` is in sync on every node (a restarted node has
    caught up)."""
    async with asyncio.timeout(timeout):
        while True:
            found = await leadership(cluster, topic)
            if min(found.in_sync.values()) >= cluster.replication_factor:
                return
            await asyncio.sleep(0.5)
