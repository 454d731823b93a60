"""requirements.lock, which the Docker image installs, agrees with pyproject.toml.

The lock pins every runtime package with hashes for the image. These tests catch it drifting:
a dependency added to or narrowed in pyproject.toml without refreshing the lock fails here, and so
does a floor in pyproject.toml that is not the locked version (a floor the tests never ran on).
(.ci/run proves the lock installs with hashes required; the contributing docs give the refresh
command.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"

# The environment the lock is compiled for (the Docker image's): Python 3.11 on Linux.
LOCK_TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux"}


def runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(LOCK_TARGET)]


def locked_entries() -> dict[str, tuple[Requirement, list[str]]]:
    """Each locked package (canonical name) with its requirement line and its hashes."""
    entries: dict[str, tuple[Requirement, list[str]]] = {}
    current: list[str] | None = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            requirement = Requirement(stripped.removesuffix("\\").strip())
            current = []
            entries[canonicalize_name(requirement.name)] = (requirement, current)
        elif current is not None:
            current += re.findall(r"--hash=(\S+)", stripped)
    return entries


def pinned_version(requirement: Requirement) -> Version | None:
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version:
        return Version(specifiers[0].version)
    return None


@pytest.mark.parametrize("dependency", runtime_dependencies(), ids=lambda r: r.name)
def test_every_runtime_dependency_is_pinned_exactly_in_the_lock(dependency):
    entries = locked_entries()
    name = canonicalize_name(dependency.name)

    assert name in entries, f"{dependency.name} is missing from requirements.lock: refresh the lock"
    locked, _ = entries[name]
    assert pinned_version(locked) is not None, f"{locked} is not pinned with =="


@pytest.mark.parametrize("dependency", runtime_dependencies(), ids=lambda r: r.name)
def test_every_pinned_runtime_dependency_is_within_pyprojects_range(dependency):
    locked, _ = locked_entries()[canonicalize_name(dependency.name)]
    version = pinned_version(locked)

    assert version is not None and dependency.specifier.contains(version, prereleases=True), (
        f"requirements.lock pins {locked}, outside pyproject.toml's {dependency}: refresh the lock"
    )


@pytest.mark.parametrize("dependency", runtime_dependencies(), ids=lambda r: r.name)
def test_every_runtime_dependencys_floor_is_the_version_the_lock_pins(dependency):
    # A floor is a promise that StemBot works from that version on: the only versions the suite
    # is known to have run against are the locked ones (the download limits, say, were verified
    # on the locked aiohttp). Moving the lock to newer versions moves the floors with it.
    locked, _ = locked_entries()[canonicalize_name(dependency.name)]
    floors = [Version(s.version) for s in dependency.specifier if s.operator == ">="]

    assert floors == [pinned_version(locked)], (
        f"pyproject.toml's {dependency} should have the floor >={pinned_version(locked)}, the version "
        "requirements.lock pins and the tests run against"
    )


def test_every_locked_package_is_pinned_with_hashes():
    entries = locked_entries()

    assert entries
    for name, (requirement, hashes) in entries.items():
        assert pinned_version(requirement) is not None, f"{requirement} is not pinned with =="
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{name} has no sha256 hashes"


def test_the_lock_was_made_with_the_refresh_command_the_docs_give():
    header = re.search(r"^#\s+(uv pip compile .+)$", LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    contributing = (ROOT / "docs" / "contributing" / "index.md").read_text(encoding="utf-8")

    assert header, "requirements.lock does not record the command that made it"
    assert header.group(1) in contributing


def test_the_image_installs_the_lock_with_hashes_required_and_the_project_without_dependencies():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    installs = [line for line in dockerfile.splitlines() if re.search(r"\bpip install\b", line)]

    assert any("--require-hashes" in line and "-r requirements.lock" in line for line in installs)
    project = [line for line in installs if line.strip().endswith(" .")]
    assert project and all("--no-deps" in line for line in project), installs
