"""Many rows to SQLite in ONE statement step: the rows bound as one JSON array.

``sqlite3`` steps once per row in ``executemany`` (and once per returned row of an
``INSERT … RETURNING``), and releases and retakes the GIL around every step. Beside a busy
event loop each retake waits up to the 5 ms switch interval: a 300-row batch took 1.8 s
on a thread next to a busy one, against 16 ms as one statement (docs/benchmarks.md, B7). Here
the rows travel as one JSON text, ``json_each`` expands them inside SQLite, and the whole
batch is a single step: one GIL hand-off, whatever its size.

Values are spelt as the SQLAlchemy tables store them (``UTCDateTime``: naive UTC text with
microseconds; booleans as 0/1), so the ORM reads them back unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

MIN_SQLITE = (3, 38, 0)
"""The ``->>`` operator (SQLite 3.38, 2022); Debian 12 and the image's bookworm ship 3.40."""


def require_json_operators(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Refuse to start on a SQLite library too old for :func:`one_step_insert`."""
    if version < MIN_SQLITE:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_SQLITE))
        raise RuntimeError(
            f"SQLite {have} is too old: ccbridge needs {need} or newer (the ->> operator); "
            "use PostgreSQL or a Python built against a newer SQLite"
        )


SPELLINGS = 65_536
"""Datetimes whose SQLite text is remembered: a call's snapshots repeat the same instants, and
a lookup (datetimes cache their hash) costs a twentieth of ``isoformat``."""
_SQLITE_TEXT: dict[datetime, str] = {}


def sqlite_time(value: datetime | None) -> str | None:
    """A datetime as ``UTCDateTime`` stores it in SQLite: naive UTC text with microseconds."""
    if value is None:
        return None
    text = _SQLITE_TEXT.get(value)  # equal instants spell the same UTC text; naive ones miss
    if text is None:
        utc = value
        if value.tzinfo is not UTC:
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(
                    f"naive datetime {value!r} cannot be stored; pass an aware UTC time"
                )
            utc = value.astimezone(UTC)
        text = utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"
        if len(_SQLITE_TEXT) >= SPELLINGS:
            _SQLITE_TEXT.clear()
        _SQLITE_TEXT[value] = text
    return text


def one_step_insert(
    table: str,
    columns: Sequence[str],
    *,
    blobs: Iterable[str] = (),
    tail: str = "",
    bind: str = "?",
) -> str:
    """``INSERT INTO table (columns) SELECT … FROM json_each(?)`` with *tail* (an ``ON
    CONFLICT`` clause). Bind :func:`rows_json` of tuples in *columns* order as *bind* (``?``
    for ``sqlite3``, ``:rows`` for SQLAlchemy's ``text``); a column in *blobs* travels as
    UTF-8 text and is stored as a BLOB."""
    binary = set(blobs)
    picks = ", ".join(
        f"CAST(value->>{i} AS BLOB)" if name in binary else f"value->>{i}"
        for i, name in enumerate(columns)
    )
    # "WHERE true": an upsert after INSERT … SELECT needs it (SQLite's parsing ambiguity).
    insert = f"INSERT INTO {table} ({', '.join(columns)}) "
    return insert + f"SELECT {picks} FROM json_each({bind}) WHERE true {tail}".rstrip()  # noqa: S608


def rows_json(rows: Sequence[Sequence[Any]]) -> str:
    """The rows as one JSON array of arrays, the one bound value of :func:`one_step_insert`."""
    return orjson.dumps(rows).decode()
