"""Database fixtures: every DB test runs on a temp SQLite file and on a throw-away PostgreSQL DB.

PostgreSQL comes from ``CCBRIDGE_TEST_PG_URL`` (default: postgres@127.0.0.1:5432/test, which
must allow CREATE DATABASE). If it is unreachable the ``postgresql`` params are skipped, unless
``CCBRIDGE_REQUIRE_PG=1`` (set in CI), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories import CallRepository

PG_URL_ENV = "CCBRIDGE_TEST_PG_URL"
REQUIRE_PG_ENV = "CCBRIDGE_REQUIRE_PG"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

T = TypeVar("T")


def asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy URL into a DSN asyncpg accepts (no ``+asyncpg`` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_execute(url: str, *statements: str) -> None:
    """Run admin statements on their own connection (CREATE DATABASE cannot run in a txn)."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def run_in_thread(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop, never touching pytest-asyncio's loop."""

    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """Create ``ccbridge_test_<random>`` for this session and drop it at the end."""
    admin_url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    name = f"ccbridge_test_{secrets.token_hex(4)}"
    try:
        run_in_thread(lambda: pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = make_url(admin_url).render_as_string(hide_password=True)
        reason = f"PostgreSQL not usable at {where}: {exc!r}"
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_PG_ENV}=1 demands it)", pytrace=False)
        pytest.skip(reason)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        run_in_thread(
            lambda: pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Give an empty, unmigrated database: a fresh SQLite file, or a wiped PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'ccbridge.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    run_in_thread(lambda: pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Migrate the database to head, then hand out an engine (disposed afterwards)."""
    await run_migrations_async(db_url)
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to the migrated test database."""
    return create_session_factory(engine)


@pytest.fixture
def call_repo(session_factory: async_sessionmaker[AsyncSession]) -> CallRepository:
    """A repository over the migrated test database."""
    return CallRepository(session_factory)
