"""Tell "the database is away" (retry later) from a programming error (log loudly, do not retry).

Drivers wrap the same loss differently: SQLAlchemy raises ``OperationalError`` or
``InterfaceError`` (``connection_invalidated`` when it noticed the link died), asyncpg raises
its connection errors or a bare ``ConnectionResetError``, a full pool raises SQLAlchemy's
``TimeoutError``. The whole cause chain is inspected, so a wrapped driver error counts too.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # PostgreSQL gone, SQLite locked or unopenable
    sa_exc.InterfaceError,  # the driver's connection is closed
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection within pool_timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
    asyncpg.CannotConnectNowError,  # the server is starting or in recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    sqlite3.OperationalError,
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    socket.gaierror,  # the database's host name does not resolve
)
_NETWORK_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT}
)
"""Other socket errors that mean the server cannot be reached (a full disk is not one)."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """*exc*, then its causes, and the driver error a SQLAlchemy error wraps (``orig``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__context__, current.__cause__):
            if isinstance(nxt, BaseException):
                pending.append(nxt)


def is_database_unavailable(exc: BaseException) -> bool:
    """True when *exc* (or anything in its cause chain) means the database cannot be reached."""
    for current in _chain(exc):
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS:
            return True
    return False


def is_database_busy(exc: BaseException) -> bool:
    """True for a locked SQLite file: worth a retry, but the database is there (not "down")."""
    return any(
        isinstance(current, sqlite3.OperationalError) and "locked" in str(current)
        for current in _chain(exc)
    )
