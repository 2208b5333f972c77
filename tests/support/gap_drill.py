"""Checks shared by the AMI-gap drills (fake PBX and real PBX): every call of the PBX's queue
log is in /api/v1/calls with its four variables and agent, and in the journal once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.domain.calls.pbx_records import PbxCall
from ccbridge.domain.calls.tracker import agent_no_from_member
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from tests.support.event_rig import EventWorld, poll_all
from tests.support.fault_proxy import FaultProxy

AUTH = {"t1": "t1:crm", "t2": "t2:crm"}


async def api_calls(world: EventWorld, calls: list[PbxCall]) -> dict[str, dict[str, Any]]:
    """``GET /api/v1/calls/{id}`` of every call, as its tenant's CRM key sees it."""
    out: dict[str, dict[str, Any]] = {}
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for call in calls:
            who = world.keys[AUTH[call.tenant or ""]]
            resp = await http.get(f"/api/v1/calls/{call.linkedid}", headers=who)
            assert resp.status_code == 200, (call, resp.text)
            out[call.linkedid] = resp.json()
    return out


async def journal_by_call(world: EventWorld) -> dict[str, list[dict[str, Any]]]:
    """Both tenants' journals, polled whole, grouped by call."""
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for key in AUTH.values():
            for env in await poll_all(http, world.keys[key]):
                by_call[env["call_id"]].append(env)
    return by_call


def assert_every_call_whole(
    calls: list[PbxCall], api: dict[str, dict[str, Any]], journal: dict[str, list[dict[str, Any]]]
) -> None:
    """Tenant, 技能组, caller, callee, 工号 and outcome as the PBX recorded them; each journal
    step exactly once, in the order the call lived them."""
    for call in calls:
        got = api[call.linkedid]
        agent = agent_no_from_member(call.agent_member, "") if call.agent_member else None
        assert (got["tenant"], got["skill_group"], got["caller"], got["callee"]) == (
            call.tenant,
            call.queue,
            call.caller,
            call.callee,
        ), (call, got)
        assert got["agent_no"] == agent, call
        want_state = "abandoned" if call.outcome == "abandoned" else "ended"
        assert got["state"] == want_state, (call, got)
        # The call's own steps (its recording's events are checked where recordings run).
        types = [e["type"] for e in journal[call.linkedid] if e["type"].startswith("call.")]
        final = "call.abandoned" if call.outcome == "abandoned" else "call.ended"
        expected = ["call.queued", *(["call.answered"] if agent else []), final]
        # Each step exactly once, in the order the call lived them (ringing is live-only).
        assert [t for t in types if t != "call.ringing"] == expected, (call, types)
        assert len({e["id"] for e in journal[call.linkedid]}) == len(journal[call.linkedid])
        for env in journal[call.linkedid]:
            assert env["data"]["params"]["skill_group"] == call.queue


def _closed_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def cut(proxy: FaultProxy, shape: str, pbx_port: int) -> None:
    """Open the gap in one of the three shapes."""
    if shape == "reset":
        proxy.upstream_port = _closed_port()  # reconnects reach a proxy that resets them
        proxy.reset_all()
    elif shape == "refused":
        await proxy.refuse()
    else:
        proxy.blackhole()


async def heal(proxy: FaultProxy, shape: str, pbx_port: int) -> None:
    """Close the gap again."""
    if shape == "reset":
        proxy.upstream_port = pbx_port
    elif shape == "refused":
        await proxy.listen()
    else:
        proxy.restore()


@dataclass
class CallPath:
    """One ccbridge process's call and recording path (tracker, writer, AMI client, feed),
    as the gap drills wire it; stopping lets each task end, cancelling it after 3 s."""

    tracking: CallTrackingService
    writer: CallBatchWriter
    client: AmiClient
    feed: AmiCallFeed
    recordings: RecordingService
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        await self.client.stop()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(3):
                    await task
        await self.recordings.idle()
        await self.writer.stop()
