"""What the numbers were measured on: the machine, its load, and the code (git)."""

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT


def describe_machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_mem_total_kib() / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def git_state() -> dict[str, Any]:
    """The commit, and the files that differ from it (others' work in progress included)."""
    changed = _git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {
        "commit": _git("rev-parse", "HEAD").strip(),
        "subject": _git("log", "-1", "--format=%s").strip(),
        "uncommitted_changes": [line[3:] for line in changed],
    }


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0
