"""The SQLite call writer leaves WAL checkpoints to a thread of their own (ADR 0034)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from ccbridge.db.call_batches import SqliteCallBatches
from ccbridge.db.engine import create_engine, create_session_factory, wal_checkpointer_for
from ccbridge.db.journal import CommitOrder, SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.wal_checkpoints import WRITER_FALLBACK_PAGES, WalCheckpointer
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.journal.types import EventType, NewEvent
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


def _checkpoint_threads() -> set[threading.Thread]:
    """The checkpoint threads alive now (another test's engine may still hold one)."""
    return {t for t in threading.enumerate() if t.name == "ccbridge-wal-checkpoint"}


async def test_commits_leave_the_checkpoint_to_the_checkpoint_thread(tmp_path: Path) -> None:
    others = _checkpoint_threads()
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
    assert _checkpoint_threads() <= others  # this test's thread ended


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
    checkpointer.nudge()  # a closed checkpointer starts again on the next commit
    _until(lambda: checkpointer.checkpoints > 1)
    assert checkpointer.checkpoints > 1
    checkpointer.close()


async def test_the_engines_commits_nudge_one_checkpointer_that_the_call_writer_shares(
    tmp_path: Path,
) -> None:
    """The journal's ORM commits (API, seats) and the call writer's commits nudge the same
    thread; the engine's connections checkpoint themselves only past the fallback."""
    others = _checkpoint_threads()
    path = tmp_path / "app.db"
    url = f"sqlite+aiosqlite:///{path}"
    await run_migrations_async(url, "head")
    engine = create_engine(url)
    checkpointer = wal_checkpointer_for(engine)
    assert checkpointer is not None
    try:
        async with engine.connect() as conn:
            pages = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert pages == WRITER_FALLBACK_PAGES
        journal = SqlJournal(create_session_factory(engine))
        event = NewEvent(
            tenant="t1", type=EventType.CALL_QUEUED, occurred_at=T0, key="k", call_id="k", data={}
        )
        await journal.write([event])
        _until(lambda: checkpointer.checkpoints > 0)
        assert checkpointer.checkpoints > 0
        writes = ThreadedCallWrites.for_engine(engine, journal)
        store = writes.persistence._store
        assert isinstance(store, SqliteCallBatches)
        assert store.checkpointer is checkpointer
        before = checkpointer.checkpoints
        await writes.upsert_many([full_call(version=1)])
        _until(lambda: checkpointer.checkpoints > before)
        assert checkpointer.checkpoints > before
        _until(lambda: _calls_in_the_database_file(path) == 1)
        assert _calls_in_the_database_file(path) == 1
    finally:
        await engine.dispose()
    assert _checkpoint_threads() <= others  # this test's thread ended
    assert create_engine("sqlite+aiosqlite://") is not None
    assert wal_checkpointer_for(create_engine("sqlite+aiosqlite://")) is None
