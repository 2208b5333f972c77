"""Database fixtures: every DB test runs on a temp SQLite file and on a throw-away PostgreSQL DB.

PostgreSQL comes from ``CCBRIDGE_TEST_PG_URL`` (default: postgres@127.0.0.1:5432/test, which
must allow CREATE DATABASE). If it is unreachable the ``postgresql`` params are skipped, unless
``CCBRIDGE_REQUIRE_PG=1`` (set in CI), which turns that into a failure.

The migrations run once per session and backend, not once per test (they took 0.6-1 s on
SQLite and 2-2.6 s on PostgreSQL, for some 385 tests each). A SQLite test gets a copy of the
migrated template file; a PostgreSQL test gets the session database emptied (every table
truncated, every sequence restarted), once its schema is checked to be exactly the one the
migrations built; any difference (a test that altered or wiped it) means a fresh migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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


_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM (
  SELECT 'c:' || table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
         || ':' || coalesce(column_default, '') AS x
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'r:' || relname || ':' || relkind::text FROM pg_class
   WHERE relnamespace = 'public'::regnamespace
  UNION ALL SELECT 'i:' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'k:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
   WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 't:' || tgname FROM pg_trigger
   WHERE NOT tgisinternal AND tgrelid IN (
     SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
  UNION ALL SELECT 'f:' || proname::text || ':' || md5(prosrc) FROM pg_proc
   WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'v:' || version_num FROM public.alembic_version
) parts
"""
"""What the migrations built: columns, relations, indexes, constraints, triggers, functions
and the Alembic revision."""
_OTHER_SESSIONS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
_TABLES = """
SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
 WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""
_RESTART_SEQUENCES = """
SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'public'::regnamespace
"""
_pg_at_head: dict[str, str] = {}
"""PostgreSQL URL → the schema fingerprint right after migrating it to head."""


async def _pg_fingerprint(conn: asyncpg.Connection) -> str | None:
    try:
        value = await conn.fetchval(_SCHEMA_FINGERPRINT)
    except asyncpg.PostgresError:  # no alembic_version: wiped or never migrated
        return None
    return str(value)


async def _pg_empty_at_head(url: str) -> None:
    """Leave ``url`` migrated to head and holding no row, migrating only when needed."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(_OTHER_SESSIONS)  # a connection a test left open holds no lock
        known = _pg_at_head.get(url)
        if known is not None and await _pg_fingerprint(conn) == known:
            tables = await conn.fetchval(_TABLES)
            if tables:
                # As a replica would: the append-only guards (audit log) are triggers.
                await conn.execute("SET session_replication_role = replica")
                await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                await conn.execute("SET session_replication_role = DEFAULT")
            await conn.execute(_RESTART_SEQUENCES)
            return
        _pg_at_head.pop(url, None)
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
    finally:
        await conn.close()
    await run_migrations_async(url)
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        fingerprint = await _pg_fingerprint(conn)
    finally:
        await conn.close()
    if fingerprint is not None:
        _pg_at_head[url] = fingerprint


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once for the session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "ccbridge.db"
    run_in_thread(lambda: run_migrations_async(f"sqlite+aiosqlite:///{path}"))
    with contextlib.closing(sqlite3.connect(path)) as conn:  # all of it in the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Give an empty, unmigrated database: a fresh SQLite file, or a wiped PostgreSQL schema
    (left as it is when the test asks for ``engine``, which migrates or empties it)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'ccbridge.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    if "engine" not in request.fixturenames:
        _pg_at_head.pop(url, None)
        run_in_thread(lambda: pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))
    return url


@pytest.fixture
async def engine(db_url: str, sqlite_template: Path) -> AsyncIterator[AsyncEngine]:
    """The database migrated to head and empty, then an engine on it (disposed afterwards)."""
    if db_url.startswith("sqlite"):
        database = make_url(db_url).database
        assert database is not None
        shutil.copyfile(sqlite_template, database)
    else:
        await _pg_empty_at_head(db_url)
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
