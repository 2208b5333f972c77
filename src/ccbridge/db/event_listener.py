"""Feed this process's event hub from commits made by another process (PostgreSQL only).

The writing process (the PBX owner, ADR 0001) sends ``NOTIFY ccbridge_events`` with
``tenant:first_seq`` pairs inside each journal transaction; PostgreSQL delivers it at commit,
in commit order. An API process listens, reads each named tenant's new rows by cursor (the
stored envelope bytes) and publishes them to its hub, which wakes its long-polls and SSE
streams as if it had written them. A tenant's rows become visible in cursor order (ADR 0008),
so reading after the hub's last cursor never skips one. After a lost connection every known
tenant is read up again, so a missed notification costs a delay, not an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import make_url

from ccbridge.db.journal import MAX_PAGE, NOTIFY_CHANNEL, SqlJournal
from ccbridge.services.event_hub import EventHub

log = structlog.get_logger(__name__)

RECONNECT_DELAY = 1.0


class PgEventListener:
    """``LISTEN ccbridge_events`` and keep *hub* up to date until cancelled."""

    def __init__(self, url: str, journal: SqlJournal, hub: EventHub) -> None:
        """Keep the database URL (SQLAlchemy form), the journal to read and the hub to feed."""
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._journal = journal
        self._hub = hub
        self._pending: asyncio.Queue[str] = asyncio.Queue()
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen, reconnecting after a failure, until cancelled."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted or the network dropped
                log.warning("event_listener_lost", error=repr(exc))
            self.listening.clear()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            # Whatever committed while we were not listening.
            for tenant in self._hub.tenants():
                self._pending.put_nowait(f"{tenant}:0")
            self.listening.set()
            log.info("event_listener_started")
            while not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await self._drain(await self._pending.get())
                        while not self._pending.empty():
                            await self._drain(self._pending.get_nowait())
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for part in payload.split(","):
            self._pending.put_nowait(part)

    async def _drain(self, part: str) -> None:
        """Read one tenant's new rows into the hub (``tenant:first_seq`` of a commit)."""
        tenant, _, first = part.rpartition(":")
        if not tenant:
            return
        after = self._hub.last_seq(tenant) if self._hub.knows(tenant) else int(first) - 1
        while True:
            page = await self._journal.list_encoded(tenant, max(after, 0), MAX_PAGE)
            self._hub.publish_encoded(tenant, page)
            if len(page) < MAX_PAGE:
                return
            after = page[-1].seq
