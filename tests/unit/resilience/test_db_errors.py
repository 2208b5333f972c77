"""What counts as "the database is away" (hold and retry) and what is a bug (log loudly)."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc as sa_exc

from ccbridge.resilience.db_errors import is_database_unavailable


def _wrapped(inner: BaseException) -> BaseException:
    """A driver error as SQLAlchemy's adapter raises it: the original in the cause chain."""
    outer = sa_exc.DBAPIError("SELECT 1", {}, Exception("wrapped"))
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        OSError(113, "No route to host"),
        _wrapped(ConnectionResetError(104, "reset")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_recognised(exc: BaseException) -> None:
    assert is_database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error")),
        asyncpg.UndefinedColumnError("column x does not exist"),
        OSError(28, "No space left on device"),  # a full disk is not the database away
        KeyError("tenant"),
        ValueError("bad value"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_programming_errors_are_not_outages(exc: BaseException) -> None:
    assert not is_database_unavailable(exc)


def test_an_invalidated_connection_is_an_outage_whatever_its_class() -> None:
    exc = sa_exc.DBAPIError("SELECT 1", {}, Exception("terminating connection"))
    exc.connection_invalidated = True
    assert is_database_unavailable(exc)
