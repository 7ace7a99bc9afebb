"""constraints.txt pins every dependency pyproject.toml names, at a version it allows, and every
install (make install / CI, the Dockerfile) goes through it."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", re.MULTILINE)


def pinned() -> dict[str, set[Version]]:
    """Package name -> its pinned versions (a universal lock may pin one per platform)."""
    versions: dict[str, set[Version]] = {}
    for name, version in PIN.findall(LOCK.read_text()):
        versions.setdefault(canonicalize_name(name), set()).add(Version(version))
    return versions


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [req for group in project["optional-dependencies"].values() for req in group]
    requirements = [Requirement(text) for text in project["dependencies"] + extras]
    return [req for req in requirements if canonicalize_name(req.name) != project["name"]]


def test_every_declared_dependency_is_pinned_at_an_allowed_version() -> None:
    pins = pinned()
    unpinned = [str(req) for req in declared() if canonicalize_name(req.name) not in pins]
    assert unpinned == [], "run `make lock`"
    outside = [
        str(req)
        for req in declared()
        if not any(req.specifier.contains(v) for v in pins[canonicalize_name(req.name)])
    ]
    assert outside == [], "run `make lock`"


def test_the_lock_pins_exact_versions_only() -> None:
    lines = [line for line in LOCK.read_text().splitlines() if line and line[0].isalnum()]
    assert lines and all(PIN.match(line) for line in lines)


def test_every_install_goes_through_the_lock() -> None:
    assert "pip install -c constraints.txt " in (ROOT / "Dockerfile").read_text()
    assert '-c "$LOCK"' in (ROOT / "ops" / "python.sh").read_text()
    assert 'LOCK="$JALYTICS_ROOT/constraints.txt"' in (ROOT / "ops" / "python.sh").read_text()
