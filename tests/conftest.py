from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.settings import DatabaseTarget
from bot.store import Store
from tests.postgres import PostgresServer

Databases = Callable[..., Awaitable[DatabaseTarget]]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so `pytest -m "not e2e and not postgres"` is the fast loop:
    `e2e` for everything under tests/e2e/ (real bot processes; tests/test_bench.py marks its
benchmark runs by hand), `postgres` for every test that
    starts the session's PostgreSQL, whether it asks for `postgres_server` itself or reaches it
    through `databases` on the `postgresql` backend (which asks for the server only at run time)."""
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and callspec.params.get("backend") == "postgresql"
        if "postgres_server" in getattr(item, "fixturenames", ()) or on_postgresql:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "data" / "stembot.db")
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """The store on SQLite, for the tests of SQLite's own machinery (where a test file's `store`
    runs on both backends)."""
    opened = await Store.open(tmp_path / "sqlite" / "stembot.db")
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store's tests run on both backends."""
    return str(request.param)


@pytest.fixture
async def databases(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Databases]:
    """`await databases(name)`: where a test's store lives on the backend under test, an SQLite
    file or a fresh PostgreSQL database. The same name gives the same database (a store opened
    again on it is a restart); `migrated=False` leaves a PostgreSQL database without the schema."""
    made: dict[str, DatabaseTarget] = {}
    server: PostgresServer | None = (
        request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    )

    async def database(name: str = "stembot", *, migrated: bool = True) -> DatabaseTarget:
        if name in made:
            return made[name]
        if server is None:
            made[name] = tmp_path / f"{name}.db"
        else:
            made[name] = await server.new_database(migrated=migrated)
        return made[name]

    yield database
    if server is not None:
        for url in made.values():
            assert not isinstance(url, Path)
            await server.drop(url)
