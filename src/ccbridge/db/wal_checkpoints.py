"""WAL checkpoints on a thread of their own, not inside the commits of the writers.

By default SQLite checkpoints in the connection whose commit pushed the WAL past 1,000
pages: that commit then copies the WAL into the database file and syncs it, a third of the
call writer's time (docs/benchmarks.md, B8) and a stall of the journal's commit on the
serving loop. Here every connection of the process only checkpoints past
:data:`WRITER_FALLBACK_PAGES` (if this thread is stalled or gone), and one thread per
database runs a ``PASSIVE`` checkpoint after commits, at most every :data:`INTERVAL_S`. The
checkpoint is one statement inside SQLite, which holds no GIL, so it runs on the other core
while the writers go on. ``PASSIVE`` never blocks a writer or a reader (ADR 0034).
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger(__name__)

INTERVAL_S = 0.25
"""Least time between two checkpoints: the WAL stays a few MB at the writer's full speed."""
WRITER_FALLBACK_PAGES = 20_000
"""The writers' own ``wal_autocheckpoint`` (pages, 80 MB): only reached if this thread falls
behind."""
FALLBACK_PRAGMA = f"PRAGMA wal_autocheckpoint={WRITER_FALLBACK_PAGES}"
BUSY_TIMEOUT_MS = 30_000


class WalCheckpointer:
    """A daemon thread that checkpoints *path*'s WAL after a writer nudges it."""

    def __init__(self, path: str, *, interval: float = INTERVAL_S) -> None:
        """Nothing starts before the first :meth:`nudge`."""
        self._path = path
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.checkpoints = 0
        """Checkpoints run so far (tests and diagnostics)."""

    def nudge(self) -> None:
        """A commit added to the WAL: checkpoint soon (starts the thread when none runs)."""
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._stop,),
                    name="ccbridge-wal-checkpoint",
                    daemon=True,
                )
                self._thread.start()
        self._wake.set()

    def _run(self, stop: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        while not stop.is_set():
            self._wake.wait()
            if stop.is_set():
                break
            self._wake.clear()
            try:
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None)
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
            except sqlite3.Error as exc:  # the writers' fallback still bounds the WAL
                log.warning("wal_checkpoint_failed", error=repr(exc))
                if conn is not None:
                    conn.close()
                    conn = None
            stop.wait(self._interval)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Stop the thread (a checkpoint in flight finishes); a later nudge starts another."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
