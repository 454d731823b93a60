"""The product's modules import each other without a cycle.

The other layering rules are import-linter contracts in pyproject.toml (`lint-imports`, run by CI);
import-linter has no contract for "no cycle anywhere", so this test reads the imports itself: every
`import` and `from ... import` in `bot/` and `cogs/`, those under `if TYPE_CHECKING:` and inside
functions included (a cycle deferred to run time or to the type checker is still two modules that
cannot be understood, tested or moved one without the other)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "cogs")


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the product by dotted name (a package by its own name, for `__init__.py`)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product's modules that `name` imports (not the parent packages Python also runs: an
    `__init__` that gathers its package is not a cycle with each module in it)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules.keys()
            found.update(submodules or {target})
    return {imported for imported in found if imported in modules and imported != name}


def cycles(root: Path) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    modules = module_names(root)
    graph = {name: sorted(imports_of(name, path, modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return sorted(groups)


def test_the_product_has_no_import_cycle():
    assert cycles(ROOT) == []


def test_the_cycle_finder_sees_a_cycle(tmp_path):
    # The test above proves nothing if the finder cannot see a cycle: three modules in a circle,
    # one leg of it under TYPE_CHECKING and one through a relative import.
    (tmp_path / "bot" / "store").mkdir(parents=True)
    (tmp_path / "cogs").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "store" / "__init__.py").write_text("from bot.store.a import A\n")
    (tmp_path / "bot" / "store" / "a.py").write_text("from bot.store import b\nA = 1\n")
    (tmp_path / "bot" / "store" / "b.py").write_text("from . import c\n")
    (tmp_path / "bot" / "store" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.store.a import A\n"
    )
    (tmp_path / "cogs" / "__init__.py").write_text("")

    assert cycles(tmp_path) == [["bot.store.a", "bot.store.b", "bot.store.c"]]


MODULE_LINES = 500


def test_no_module_is_over_the_size_rule():
    # Our rule: a module of more than 500 lines holds more than one concept; split it.
    over = {
        str(path.relative_to(ROOT)): lines
        for path in module_names(ROOT).values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINES
    }

    assert over == {}


CLASS_LINES = 350


def test_no_class_is_over_the_size_rule():
    # Our rule: a class of more than 350 lines does more than one job; split it.
    over = {
        f"{path.relative_to(ROOT)}:{node.name}": lines
        for path in module_names(ROOT).values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > CLASS_LINES
    }

    assert over == {}


def test_every_module_of_bot_is_in_a_layer_the_contracts_name():
    # The import contracts (pyproject.toml) list the services and domain by name, so a new module
    # would escape them unnoticed: each top-level module or package of `bot` must be named, either
    # among the modules that may import discord.py or among the services the contracts check.
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = {contract["name"]: contract for contract in config["contracts"]}
    discord = contracts["Below the cogs, only the Discord side imports discord.py"]
    ignored = {rule.split(" -> ")[0] for rule in discord.get("ignore_imports", [])}
    discord_side = {*discord["allowed_importers"], *ignored}
    services_contract = "Domain and services reach neither discord.py nor the Discord side"
    services = set(contracts[services_contract]["source_modules"])
    top_level = {".".join(name.split(".")[:2]) for name in module_names(ROOT) if name.startswith("bot.")}

    assert sorted(top_level - discord_side - services) == []
    assert sorted(discord_side & services) == []
