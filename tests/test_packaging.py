"""The installed product is the bot alone: the test machinery (`testing/`) ships in no install
and no image; tests and benchmarks reach it from the checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_packages_are_the_bot_and_its_cogs_without_the_test_machinery() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = config["tool"]["setuptools"]["packages"]["find"]
    packages = set(find_packages(str(ROOT), include=found["include"], exclude=found.get("exclude", ())))

    assert {"bot", "bot.store", "bot.render", "cogs"} <= packages
    assert not {name for name in packages if name.split(".")[0] not in ("bot", "cogs")}, packages


def test_the_image_copies_no_test_machinery() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")

    assert "COPY bot ./bot" in dockerfile
    assert "testing" not in dockerfile


def test_ci_checks_that_the_installed_package_cannot_import_the_test_machinery() -> None:
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]

    assert 'find_spec("testing") is not None' in command
    check = command.index('find_spec("testing")')
    installed = command.index(".venv-lock/bin/pip install -q --no-deps .")
    assert command.rfind(".venv-lock/bin/python -P", 0, check) > installed, "run in the installed venv"
