"""The SQLite call writer leaves WAL checkpoints to a thread of their own (ADR 0034)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ccbridge.db.call_batches import SqliteCallBatches
from ccbridge.db.journal import CommitOrder
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.wal_checkpoints import WRITER_FALLBACK_PAGES, WalCheckpointer
from ccbridge.services.ports import CallWrite
from tests.integration.test_call_batches import T0, full_call


def _calls_in_the_database_file(path: Path) -> int:
    """Calls in the main database file alone, the WAL ignored: what checkpoints copied."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM calls").fetchone()
    finally:
        conn.close()
    return int(count)


def _until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


async def test_commits_leave_the_checkpoint_to_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    await run_migrations_async(f"sqlite+aiosqlite:///{path}", "head")
    store = SqliteCallBatches(str(path), CommitOrder(lambda _events: None), lambda: T0)
    try:
        for n in range(5):
            rec = replace(full_call(version=1), call_id=f"1795433000.{n}")
            await store.write([CallWrite(rec, ())])
        conn = store._connection()
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (WRITER_FALLBACK_PAGES,)
        _until(lambda: store.checkpointer.checkpoints > 0)
        assert store.checkpointer.checkpoints > 0
        names = {t.name for t in threading.enumerate()}
        assert "ccbridge-wal-checkpoint" in names
        # Everything the writer committed has been copied into the database file.
        _until(lambda: _calls_in_the_database_file(path) == 5)
        assert _calls_in_the_database_file(path) == 5
    finally:
        await store.close()
    assert "ccbridge-wal-checkpoint" not in {t.name for t in threading.enumerate()}


def test_a_failing_checkpoint_is_logged_and_the_thread_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "missing" / "x.db"), interval=0.01)
    try:
        checkpointer.nudge()
        time.sleep(0.2)
        checkpointer.nudge()
        time.sleep(0.2)
        assert checkpointer.checkpoints == 0
        assert "wal_checkpoint_failed" in capsys.readouterr().out
        (tmp_path / "missing").mkdir()
        checkpointer.nudge()
        _until(lambda: checkpointer.checkpoints > 0)
        assert checkpointer.checkpoints > 0
    finally:
        checkpointer.close()
        checkpointer.close()
