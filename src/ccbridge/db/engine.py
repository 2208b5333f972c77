"""Async engine and session factory with per-backend tuning (SQLite pragmas, PostgreSQL pool)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from ccbridge.db.sqlite_rows import require_json_operators
from ccbridge.db.wal_checkpoints import FALLBACK_PRAGMA, WalCheckpointer

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./ccbridge.db"
"""Used when neither settings nor ``CCBRIDGE_DATABASE_URL`` name a database."""

SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
)
"""Applied to every new SQLite connection: WAL lets readers run beside the batch writer; a
writer waits up to 30 s for the lock (sign-in storms queue on it) before the API answers 503."""

PING_TIMEOUT_S = 2.0


def is_sqlite(url: str | URL) -> bool:
    """Say whether *url* points at SQLite (pragmas and batch migrations apply)."""
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """Apply :data:`SQLITE_PRAGMAS`; foreign keys are off by default in SQLite."""
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def create_engine(url: str, *, echo: bool = False, null_pool: bool = False) -> AsyncEngine:
    """Build an async engine tuned for the backend named in *url*.

    ``null_pool=True`` suits one-shot tools (migrations) that should leave no idle connection.
    """
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    kwargs: dict[str, Any] = {"echo": echo}
    if backend == "postgresql":
        kwargs["connect_args"] = {
            "timeout": 10,
            "command_timeout": 60,
            "server_settings": {"application_name": "ccbridge", "timezone": "UTC"},
        }
        if not null_pool:
            # One process owns the event loop (architecture §1.1); 10+10 covers the API and
            # the batch writer without starving PostgreSQL's default max_connections=100.
            kwargs.update(
                pool_size=10,
                max_overflow=10,
                pool_timeout=10,
                pool_recycle=1800,
                pool_pre_ping=True,
            )
    if null_pool:
        kwargs["poolclass"] = NullPool
    if backend == "sqlite":
        require_json_operators()
    engine = create_async_engine(sa_url, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        if sa_url.database not in (None, "", ":memory:") and sa_url.query.get("mode") != "memory":
            _checkpoint_off_the_commits(engine, sa_url.database)
    return engine


_CHECKPOINTERS: weakref.WeakKeyDictionary[Any, WalCheckpointer] = weakref.WeakKeyDictionary()


def _checkpoint_off_the_commits(engine: AsyncEngine, path: str) -> None:
    """Every commit of *engine* nudges one checkpoint thread for its file; its connections
    only checkpoint themselves past the fallback (ADR 0034). Stopped when disposed."""
    checkpointer = WalCheckpointer(path)
    sync = engine.sync_engine
    _CHECKPOINTERS[sync] = checkpointer

    def fallback_only(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(FALLBACK_PRAGMA)
        finally:
            cursor.close()

    event.listen(sync, "connect", fallback_only)
    event.listen(sync, "commit", lambda _conn: checkpointer.nudge())
    event.listen(sync, "engine_disposed", lambda _engine: checkpointer.close())


def wal_checkpointer_for(engine: AsyncEngine) -> WalCheckpointer | None:
    """The checkpoint thread of *engine*'s SQLite file (``None``: not a SQLite file)."""
    return _CHECKPOINTERS.get(engine.sync_engine)


def on_connection_lost(engine: AsyncEngine, notify: Callable[[BaseException], object]) -> None:
    """Call *notify* with every error of *engine* that means the database link is gone (a
    disconnect, a refused connect), whichever component's query met it. A failed pre-ping is
    left out: it is the pool replacing a stale connection, and the reconnect follows."""

    def handle_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return
        if context.is_disconnect or context.connection is None:
            notify(context.original_exception)

    event.listen(engine.sync_engine, "handle_error", handle_error)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Build the session factory; objects stay usable after commit (no lazy reloads in async)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, *, timeout_s: float = PING_TIMEOUT_S) -> None:
    """Run ``SELECT 1`` so /readyz can tell a dead database; raises on failure or timeout."""
    async with asyncio.timeout(timeout_s), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Release a read connection as it is: this pool runs only single read statements, which
    leave no session state (no SET, LISTEN, cursor or lock), and asyncpg still rolls back an
    open transaction first. The default reset (``RESET ALL``, ``UNLISTEN *``…) is a second
    round trip per page."""


class PgReadPool:
    """A small asyncpg pool for the hot keyset reads of the event journal: a page is one
    prepared statement, with no ORM session, pre-ping or rollback around it (about a third
    of a poll's server time; docs/benchmarks.md, Events). Opened on first use."""

    def __init__(self, url: str, *, max_size: int = 20) -> None:
        """Keep the DSN (a SQLAlchemy URL of a PostgreSQL database)."""
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._max = max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> PgReadPool | None:
        """A pool on *engine*'s database when that is PostgreSQL, else ``None``."""
        if engine.dialect.name != "postgresql":
            return None
        return cls(engine.url.render_as_string(hide_password=False))

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """Run a read; one retry on a connection that died (what pre-ping does elsewhere)."""
        pool = self._pool or await self._open()
        rows: list[Any]
        try:
            rows = await pool.fetch(query, *args)
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            rows = await pool.fetch(query, *args)
        return rows

    async def _open(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=min(4, self._max),
                    max_size=self._max,
                    timeout=10,
                    command_timeout=60,
                    server_settings={"application_name": "ccbridge-read", "timezone": "UTC"},
                    reset=_keep_session,
                )
            return self._pool

    async def close(self) -> None:
        """Close the connections (shutdown)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
