"""WAL checkpoints beside the SQLite batch writer, not inside its commits.

By default SQLite checkpoints in the connection whose commit pushed the WAL past 1,000
pages: that commit then copies the WAL into the database file and syncs it, a third of the
batch writer's time (docs/benchmarks.md, B8). Here the writer's connection only checkpoints
past :data:`WRITER_FALLBACK_PAGES` (if this thread is stalled or gone), and a thread of its
own runs a ``PASSIVE`` checkpoint after commits, at most every :data:`INTERVAL_S`. The
checkpoint is one statement inside SQLite, which holds no GIL, so it runs on the other core
while the writer prepares its next batch. ``PASSIVE`` never blocks the writer or a reader.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

from ccbridge.db.engine import SQLITE_PRAGMAS

log = structlog.get_logger(__name__)

INTERVAL_S = 0.25
"""Least time between two checkpoints: the WAL stays a few MB at the writer's full speed."""
WRITER_FALLBACK_PAGES = 20_000
"""The writer's own ``wal_autocheckpoint`` (pages): only reached if this thread falls behind."""


class WalCheckpointer:
    """A daemon thread that checkpoints *path*'s WAL after the writer nudges it."""

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
        """A commit added to the WAL: checkpoint soon (starts the thread on first use)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="ccbridge-wal-checkpoint", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                break
            self._wake.clear()
            try:
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None)
                    for pragma in SQLITE_PRAGMAS:
                        conn.execute(pragma)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
            except sqlite3.Error as exc:  # the writer's fallback still bounds the WAL
                log.warning("wal_checkpoint_failed", error=repr(exc))
                if conn is not None:
                    conn.close()
                    conn = None
            self._stop.wait(self._interval)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Stop the thread after a last checkpoint in flight; safe to call twice."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
