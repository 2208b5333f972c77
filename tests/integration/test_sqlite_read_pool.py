"""SQLite hot reads run on the loop's own connection; one that meets a lock moves to a thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from ccbridge.db.sqlite_reads import SqliteReadPool


def _db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()


async def test_a_read_runs_on_the_calling_thread(tmp_path: Path) -> None:
    _db(tmp_path / "a.db")
    pool = SqliteReadPool(str(tmp_path / "a.db"))
    seen: list[int] = []
    try:
        original = pool._run

        def spy(*args: object) -> list[object]:
            seen.append(threading.get_ident())
            return original(*args)  # type: ignore[arg-type]

        pool._run = spy  # type: ignore[method-assign]
        assert await pool.fetch("SELECT k FROM t") == [(1,)]
        assert seen == [threading.get_ident()]
        assert pool.handed_off == 0
    finally:
        await pool.close()


async def test_a_read_that_meets_a_lock_waits_on_a_read_thread_not_the_loop(
    tmp_path: Path,
) -> None:
    """An exclusive lock (here a connection in EXCLUSIVE locking mode) blocks even a WAL
    reader: the inline read gives up after 20 ms and the read thread waits it out, while
    the loop goes on."""
    path = tmp_path / "b.db"
    _db(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (2)")
    pool = SqliteReadPool(str(path))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        read = asyncio.create_task(pool.fetch("SELECT k FROM t ORDER BY k"))
        await asyncio.sleep(0.3)
        assert not read.done()
        assert ticks >= 10  # the loop was free while the read waited
        holder.execute("COMMIT")
        holder.close()  # drops the exclusive lock
        assert await asyncio.wait_for(read, 10) == [(1,), (2,)]
        assert pool.handed_off == 1
    finally:
        beat.cancel()
        holder.close()
        await pool.close()
