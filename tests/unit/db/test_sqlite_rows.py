"""Rows bound as one JSON array reach SQLite exactly as ``executemany`` would store them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ccbridge.db.sqlite_rows import (
    one_step_insert,
    require_json_operators,
    rows_json,
    sqlite_time,
)


def _table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB, f BOOLEAN, v INTEGER)")
    return conn


def test_one_step_stores_what_executemany_stores() -> None:
    rows = [
        ("主叫\r\n'\"\\", 2**62, '{"caller":"主叫"}', True, 1),
        ("nulls", None, "", False, 1),
    ]
    one, many = _table(), _table()
    one.execute(one_step_insert("t", ("k", "n", "b", "f", "v"), blobs=("b",)), (rows_json(rows),))
    many.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [(k, n, b.encode(), f, v) for k, n, b, f, v in rows],
    )
    query = "SELECT k, n, b, typeof(b), f, v FROM t ORDER BY k"
    assert one.execute(query).fetchall() == many.execute(query).fetchall()
    assert one.execute("SELECT b FROM t WHERE k = 'nulls'").fetchone() == (b"",)


def test_the_tail_makes_it_an_upsert_and_rowcount_counts_rows() -> None:
    conn = _table()
    upsert = one_step_insert(
        "t",
        ("k", "v"),
        tail="ON CONFLICT (k) DO UPDATE SET v = excluded.v WHERE t.v <= excluded.v",
    )
    assert conn.execute(upsert, (rows_json([("a", 1), ("b", 1)]),)).rowcount == 2
    assert conn.execute(upsert, (rows_json([("a", 2), ("b", 0), ("c", 1)]),)).rowcount == 2
    assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
        ("a", 2),
        ("b", 1),
        ("c", 1),
    ]
    named = one_step_insert("t", ("k",), bind=":rows")
    assert "json_each(:rows)" in named


def test_times_are_spelt_as_the_orm_stores_them() -> None:
    at = datetime(2026, 12, 4, 8, 0, 1, 5, tzinfo=timezone(timedelta(hours=8)))
    assert sqlite_time(at) == "2026-12-04 00:00:01.000005"
    assert sqlite_time(at.astimezone(UTC)) == "2026-12-04 00:00:01.000005"
    assert sqlite_time(None) is None
    with pytest.raises(ValueError, match="naive"):
        sqlite_time(datetime(2026, 12, 4))  # noqa: DTZ001


def test_a_sqlite_without_the_json_operators_is_refused_with_the_version() -> None:
    require_json_operators((3, 38, 0))
    with pytest.raises(RuntimeError, match=r"SQLite 3\.31\.1 is too old: ccbridge needs 3\.38\.0"):
        require_json_operators((3, 31, 1))
