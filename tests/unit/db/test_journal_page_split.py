"""A journal page read as one SQLite row is cut back into its events, or refused."""

from __future__ import annotations

import sqlite3

from ccbridge.db.sqlite_reads import journal_page_sql, split_journal_page
from ccbridge.domain.journal.types import EncodedEvent


def _db(rows: list[tuple[str, int, str, bytes | None, int]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE events (tenant TEXT, seq INTEGER, type TEXT, envelope BLOB, "
        "has_extras BOOLEAN, PRIMARY KEY (tenant, seq))"
    )
    conn.executemany(
        "INSERT INTO events (tenant, seq, type, envelope, has_extras) VALUES (?, ?, ?, ?, ?)", rows
    )
    return conn


def test_a_page_is_one_row_cut_into_its_events_byte_for_byte() -> None:
    multibyte = '{"caller":"主叫 ,\'"}'.encode()
    conn = _db(
        [
            ("t1", 1, "call.queued", b'{"a":1}', 0),
            ("t1", 2, "call.answered", multibyte, 1),
            ("t2", 3, "call.queued", b'{"other":1}', 0),
            ("t1", 4, "call.ended", b"", 0),
        ]
    )
    rows = conn.execute(journal_page_sql(0), ("t1", 0, 10)).fetchall()
    assert len(rows) == 1
    assert split_journal_page(rows[0]) == [
        EncodedEvent(1, "call.queued", b'{"a":1}', False),
        EncodedEvent(2, "call.answered", multibyte, True),
        EncodedEvent(4, "call.ended", b"", False),
    ]
    (typed,) = conn.execute(journal_page_sql(2), ("t1", 1, "call.ended", "call.queued", 10))
    assert split_journal_page(typed) == [EncodedEvent(4, "call.ended", b"", False)]
    (empty,) = conn.execute(journal_page_sql(0), ("t1", 4, 10))
    assert split_journal_page(empty) == []


def test_a_row_without_an_envelope_sends_the_page_to_the_row_path() -> None:
    conn = _db([("t1", 1, "call.queued", b"{}", 0), ("t1", 2, "call.queued", None, 0)])
    (row,) = conn.execute(journal_page_sql(0), ("t1", 0, 10))
    assert split_journal_page(row) is None


def test_rows_out_of_cursor_order_or_cut_wrong_are_refused() -> None:
    assert split_journal_page((2, 2, "2 a 0 2,1 a 0 2", b"{}{}")) is None
    assert split_journal_page((1, 1, "1 a 0 5", b"{}")) is None
