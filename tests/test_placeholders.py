"""The `?` → `$n` rewriter of the PostgreSQL store (`bot.store.postgres.numbered_placeholders`):
the constructs it cannot read safely, which it refuses by name rather than mangle, what only looks
like one of them, and every statement the store writes (each goes through it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.store.postgres import UnsafePlaceholders, numbered_placeholders

STORE = Path(__file__).resolve().parent.parent / "bot" / "store"
SQL_METHODS = {"execute", "fetchall", "fetchone", "scalar", "write"}
"""The `Tx` / `Database` methods whose statement is rewritten on PostgreSQL."""


@pytest.mark.parametrize(
    ("sql", "rewritten"),
    [
        ("SELECT ? || name FROM t", "SELECT $1 || name FROM t"),
        ("SELECT ?||name FROM t", "SELECT $1||name FROM t"),  # concatenation, not the jsonb ?|
        ("SELECT ids && ? FROM t WHERE ?&&ids", "SELECT ids && $1 FROM t WHERE $2&&ids"),
        ("SELECT 1 FROM t WHERE name = 'E''s' AND ? > 0", "SELECT 1 FROM t WHERE name = 'E''s' AND $1 > 0"),
        ("SELECT a$b FROM t WHERE x = ?", "SELECT a$b FROM t WHERE x = $1"),  # a name may hold a $
        ("SELECT 1 -- the end, without a newline: ?", "SELECT 1 -- the end, without a newline: ?"),
    ],
)
def test_what_only_looks_like_a_refused_construct_is_rewritten(sql: str, rewritten: str) -> None:
    assert numbered_placeholders(sql) == rewritten


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT E'it\\'s ?' WHERE x = ?", "escape string"),
        ("SELECT e'\\n' , ?", "escape string"),
        ("SELECT x FROM t WHERE y = E'?'", "escape string"),
        ("SELECT $$it's ?$$, ?", "dollar-quoted string"),
        ("SELECT $body$ ? $body$, ?", "dollar-quoted string"),
        ("SELECT 1 /* outer /* inner ? */ still a comment ? */, ?", "nested comment"),
        ("SELECT data ?| ? FROM t", "jsonb ?| operator"),
        ("SELECT data ?& array['a'] FROM t", "jsonb ?& operator"),
        ("SELECT x FROM t WHERE x = $1 AND y = ?", "numbered placeholder"),
        ("SELECT 'unterminated ?", "unterminated string"),
        ('SELECT "unterminated ?', "unterminated quoted name"),
        ("SELECT 1 /* unterminated ?", "unterminated comment"),
    ],
)
def test_a_construct_the_rewriter_cannot_read_is_refused_by_name(sql: str, construct: str) -> None:
    with pytest.raises(UnsafePlaceholders, match=re.escape(construct)):
        numbered_placeholders(sql)


def store_statements() -> list[tuple[str, int, str]]:
    """Every statement written literally in `bot/store/` and handed to a method that rewrites it:
    (file, line, the SQL), the parts an f-string fills in replaced by a harmless value."""
    found = []
    for path in sorted(STORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            receiver = node.func.value
            native = isinstance(receiver, ast.Name) and receiver.id == "conn"
            if node.func.attr not in SQL_METHODS or native:
                continue  # (asyncpg's own connection takes `$n` as written)
            sql = _literal(node.args[0])
            if sql is not None:
                found.append((path.name, node.lineno, sql))
    return found


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [
            "0" if isinstance(value, ast.FormattedValue) else _literal(value) for value in node.values
        ]
        return None if None in parts else "".join(p for p in parts if p is not None)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    return None


def test_every_statement_the_store_writes_rewrites() -> None:
    statements = store_statements()

    assert len(statements) > 90  # the scan found the store's statements
    for name, line, sql in statements:
        rewritten = numbered_placeholders(sql)  # raises on anything it cannot read
        if not any(mark in sql for mark in ("'", '"', "--", "/*")):  # every ? is a placeholder
            numbers = [f"${n}" for n in range(1, sql.count("?") + 1)]
            assert "?" not in rewritten and all(n in rewritten for n in numbers), (name, line, sql)
