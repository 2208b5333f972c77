"""Hand work from the FTP thread to the asyncio loop: audit entries and account lookups."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.model import FtpAccount

log = structlog.get_logger(__name__)

LOOKUP_TIMEOUT = 5.0


class LoopBridge:
    """Thread-safe calls into the service's event loop (never called on the loop itself)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        append_audit: Callable[[AuditEntry], Awaitable[None]],
        find_account: Callable[[str], Awaitable[FtpAccount | None]],
    ) -> None:
        self._loop = loop
        self._append = append_audit
        self._find = find_account
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def audit(self, entry: AuditEntry) -> None:
        """Queue one audit entry on the loop; the FTP thread never waits for the database."""
        future = asyncio.run_coroutine_threadsafe(self._write(entry), self._loop)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    async def _write(self, entry: AuditEntry) -> None:
        await self._append(entry)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("ftp_audit_failed", error=repr(future.exception()))

    def account(self, username: str) -> FtpAccount | None:
        """Look an account up in the database, waiting at most a few seconds."""
        future = asyncio.run_coroutine_threadsafe(self._lookup(username), self._loop)
        return future.result(LOOKUP_TIMEOUT)

    async def _lookup(self, username: str) -> FtpAccount | None:
        return await self._find(username)

    def pending(self) -> int:
        """Audit entries not yet written (tests and shutdown wait for 0)."""
        with self._lock:
            return len(self._pending)
