"""The docs site: it builds, its references cover every command and setting, and the README
stays a short front door whose links lead into it.

The references are generated from the code at build time (docs/_ext/stembot_reference.py); these
tests read the built pages, so a command or a setting the generator missed fails here, and so
does a setting `.env.example` does not list.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.discord_side.client import EXTENSIONS, StemBot
from bot.invite import PERMISSIONS_VALUE
from bot.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The docs built with warnings as errors, as CI builds them."""
    pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def page_text(built: Path, page: str) -> str:
    """A built page's words, without markup, on one line."""
    raw = (built / f"{page}.html").read_text(encoding="utf-8")
    main = raw.split('<article role="main"', 1)[-1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


async def every_command() -> list[str]:
    """`/group sub` for every command a member can run, from the tree the bot syncs."""
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    names = []
    for command in bot.tree.walk_commands():
        if not hasattr(command, "walk_commands"):  # a group is not a command one can run
            names.append(f"/{command.qualified_name}")
    return names


async def test_every_slash_command_is_in_the_built_command_reference(built):
    reference = page_text(built, "reference/commands")
    commands = await every_command()

    assert len(commands) > 20
    for name in commands:
        assert f"{name} ¶" in reference, f"{name} is missing from the command reference"


async def test_every_option_and_choice_is_in_the_built_command_reference(built):
    reference = page_text(built, "reference/commands")
    bot = StemBot(lambda client: SimpleNamespace())  # type: ignore[arg-type,return-value]
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    for command in bot.tree.walk_commands():
        for parameter in getattr(command, "parameters", []):
            assert f" {parameter.display_name} " in reference, (command.qualified_name, parameter.name)
            assert parameter.description in reference, (command.qualified_name, parameter.name)
            for choice in parameter.choices:
                assert f"{choice.name} ( {choice.value} )" in reference, (command.qualified_name, choice)


def test_every_setting_is_in_the_built_settings_reference_with_its_default(built):
    # Cells and inline code break the words apart differently: compare without any spaces.
    reference = "".join(page_text(built, "reference/settings").split())

    for spec in SETTINGS:
        default = "required" if spec.required else "unset" if spec.default is None else spec.default
        row = f"{spec.name} {default} {spec.expected} {spec.description}"
        assert "".join(row.replace("`", "").split()) in reference, f"{spec.name}'s row is missing or wrong"


def test_every_setting_is_in_env_example_and_nothing_else_is():
    listed = re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M)

    assert sorted(listed) == sorted(spec.name for spec in SETTINGS)


def test_the_readme_is_short_and_every_link_in_it_leads_somewhere():
    text = README.read_text(encoding="utf-8")

    assert len(text.splitlines()) < 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_the_install_page_shows_the_invite_permissions_of_the_code():
    install = (DOCS / "operators" / "install.md").read_text(encoding="utf-8")
    assert f"permissions={PERMISSIONS_VALUE}" in install


def test_the_backups_page_gives_both_databases_ways():
    backups = (DOCS / "operators" / "backups.md").read_text(encoding="utf-8")

    for words in ("python -m bot --backup", "pg_dump", "pg_restore", "psql"):
        assert words in backups
