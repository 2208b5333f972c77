"""Feed this process's event hub from commits made by another process (PostgreSQL only).

The writing process (the PBX owner, ADR 0001) sends ``NOTIFY ccbridge_events`` with
``tenant:first_seq:last_seq`` inside each journal transaction; PostgreSQL delivers it at
commit, in commit order. An API process listens and, for a tenant that has a long-poll or
stream waiting, reads the new rows by cursor (the stored envelope bytes) and publishes them to
its hub, which wakes those waiters as if it had written them; for any other tenant it only
notes the new last cursor (reading every commit back would cost a query per tenant and
commit for nothing). A tenant's rows become visible in cursor order (ADR 0008),
so reading after the hub's last cursor never skips one. After a lost connection every known
tenant is read up again, so a missed notification costs a delay, not an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import make_url

from ccbridge.db.journal import MAX_PAGE, NOTIFY_CHANNEL, SqlJournal
from ccbridge.services.event_hub import EventHub

log = structlog.get_logger(__name__)

RECONNECT_DELAY = 1.0
PROBE_SECONDS = 10.0
RECONNECTED = "reconnected"
"""Payload given to an extra channel's callback after each (re)connect."""


def _payload_to(heard: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
    def listener(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        heard(payload)

    return listener


class PgEventListener:
    """``LISTEN ccbridge_events`` and keep *hub* up to date until cancelled."""

    def __init__(
        self,
        url: str,
        journal: SqlJournal,
        hub: EventHub,
        *,
        channels: Mapping[str, Callable[[str], None]] | None = None,
    ) -> None:
        """Keep the database URL (SQLAlchemy form), the journal to read and the hub to feed.
        *channels* are more channels to hear on the same connection: each callback gets the
        payload, and ``RECONNECTED`` after each (re)connect (a notice may have been missed)."""
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._journal = journal
        self._hub = hub
        self._channels = dict(channels or {})
        self._first: dict[str, int] = {}
        """First announced cursor of tenants the hub does not know yet."""
        self._dirty: set[str] = set()
        self._reading: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen, reconnecting after a failure, until cancelled."""
        try:
            while True:
                try:
                    await self._listen()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database restarted or the network dropped
                    log.warning("event_listener_lost", error=repr(exc))
                self.listening.clear()
                await asyncio.sleep(RECONNECT_DELAY)
        finally:
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, timeout=10, server_settings={"application_name": "ccbridge-listen"}
        )
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            for channel, heard in self._channels.items():
                await conn.add_listener(channel, _payload_to(heard))
            for tenant in self._hub.tenants():  # what committed while we were not listening
                self._wake(tenant)
            for heard in self._channels.values():
                heard(RECONNECTED)
            self.listening.set()
            log.info("event_listener_started")
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROBE_SECONDS):
                        await closed.wait()
                        return
                # A silently dropped link shows only when used: probe it now and then.
                await conn.fetchval("SELECT 1", timeout=5)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for part in payload.split(","):
            tenant, first, last = part.rsplit(":", 2)
            if self._hub.watched(tenant) or tenant in self._dirty or tenant in self._reading:
                self._first.setdefault(tenant, int(first))
                self._wake(tenant)
            else:
                # Nobody here waits on this tenant: note how far it got, read nothing (a
                # poller at a random cursor reads the database anyway).
                self._first.pop(tenant, None)
                self._hub.skip_to(tenant, int(last))

    def _wake(self, tenant: str) -> None:
        """Read *tenant* up soon: one reader reads every pending tenant in one statement,
        and goes round again for commits that arrived meanwhile."""
        self._dirty.add(tenant)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_pending())

    async def _read_pending(self) -> None:
        while self._dirty:
            tenants, self._dirty = self._dirty, set()
            self._reading = tenants
            cursors = {
                t: self._hub.last_seq(t)
                if self._hub.knows(t)
                else max(self._first.get(t, 1) - 1, 0)
                for t in tenants
            }
            try:
                pages = await self._journal.list_encoded_many(cursors, MAX_PAGE)
            except Exception as exc:  # the next commit of these tenants retries
                log.warning("event_listener_read_failed", tenants=len(tenants), error=repr(exc))
                return
            finally:
                self._reading = set()
            for tenant, page in pages.items():
                self._hub.publish_encoded(tenant, page)
                self._first.pop(tenant, None)
                if len(page) >= MAX_PAGE:
                    self._dirty.add(tenant)
