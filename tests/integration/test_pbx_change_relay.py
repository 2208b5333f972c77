"""A PBX config change made through a standby's API reaches the owner at once (ADR 0030).

Two nodes on one PostgreSQL, each with its LISTEN connection (``PgEventListener``) and its
relay: a skill-group or recording-policy change on the standby is announced by NOTIFY, and
the owner re-renders, reloads and reconciles; the standby touches nothing on the PBX. On the
owner a change is applied in the request, as with a single node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.event_listener import PgEventListener
from ccbridge.db.journal import SqlJournal
from ccbridge.db.pbx_changes import PBX_CHANGES_CHANNEL, PgPbxChangeNotices
from ccbridge.services.event_hub import EventHub
from ccbridge.services.pbx_change_relay import PbxChangeRelay


@dataclass
class FakePbxConfig:
    """Counts what a node did to its PBX: applies (render, reload, verify) and reconciles."""

    applied: int = 0
    synced: int = 0
    reconciled: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def apply(self, *, force_reload: bool = False) -> object:
        self.applied += 1
        return None

    async def sync(self) -> None:
        self.synced += 1

    async def reconcile(self) -> object:
        self.reconciled += 1
        self.done.set()
        return None


@dataclass
class FakeNode:
    pbx: FakePbxConfig
    relay: PbxChangeRelay
    listener: PgEventListener


@contextlib.asynccontextmanager
async def _node(engine: AsyncEngine, owner: bool) -> AsyncIterator[FakeNode]:
    sessions = create_session_factory(engine)
    pbx = FakePbxConfig()
    relay = PbxChangeRelay(pbx, pbx.reconcile, lambda: owner, PgPbxChangeNotices(sessions))
    listener = PgEventListener(
        engine.url.render_as_string(hide_password=False),
        SqlJournal(sessions),
        EventHub(),
        channels={PBX_CHANGES_CHANNEL: relay.on_notice},
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        yield FakeNode(pbx, relay, listener)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_change_through_the_standby_is_applied_by_the_owner(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several nodes run on PostgreSQL only (ADR 0026)")
    async with _node(engine, owner=True) as a, _node(engine, owner=False) as b:
        await asyncio.sleep(0)  # the owner's catch-up round after connecting
        await asyncio.wait_for(a.pbx.done.wait(), 10)
        a.pbx.done.clear()
        before = a.pbx.applied, a.pbx.reconciled

        await b.relay.sync()  # a skill group created through the standby's API
        await asyncio.wait_for(a.pbx.done.wait(), 10)
        assert (a.pbx.applied, a.pbx.reconciled) == (before[0] + 1, before[1] + 1)
        a.pbx.done.clear()

        await b.relay.apply()  # a recording policy changed through the standby's API
        await asyncio.wait_for(a.pbx.done.wait(), 10)
        assert (a.pbx.applied, a.pbx.reconciled) == (before[0] + 2, before[1] + 2)

        # The standby only announced; it never touched the PBX, even hearing its own notice.
        assert (b.pbx.applied, b.pbx.synced, b.pbx.reconciled) == (0, 0, 0)
        assert b.relay.relayed == 2

        # On the owner a change is applied in the request (and verified: sync may raise).
        await a.relay.sync()
        assert a.pbx.synced == 1
        assert a.relay.relayed == 0
