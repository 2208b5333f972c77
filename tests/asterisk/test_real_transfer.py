"""Attended transfer on a real Asterisk 22, seen through the event journal: a tenant call
queues, agent A (9001) answers, A consults extension 2002 with the ``*2`` feature (AMI
``Atxfer``), A hangs up to complete the transfer, then the caller hangs up. The four variables
and the journal must be what the fake-PBX test (tests/integration/test_events_e2e_fakepbx.py)
expects of the same story.

Needs the test-tier snippets in asterisk/test-tier/ (context ``xfer-test-queue``, the
``atxfer = *2`` feature code); see docs/asterisk.md, section 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.services.calls import CallTrackingService
from tests.support.event_rig import EventWorld, build_world, poll_all

QUEUE = "ccbridge-test"
AGENTS = "ccbridge-test-agents"
MEMBER_A = f"Local/2001@{AGENTS}"
AGENT_A, AGENT_B = "9001", "2002"
CALLER, DID = "13800138000", "4008001234"


def four(agent: str | None) -> dict[str, Any]:
    """The four variables of this call as the API shows them."""
    return {
        "agent_no": agent,
        "skill_group": QUEUE,
        "caller": "+86" + CALLER,
        "callee": "+86" + DID,
        "caller_original": CALLER,
        "callee_original": DID,
    }


async def _params(http: httpx.AsyncClient, who: dict[str, str], call_id: str) -> Any:
    resp = await http.get(f"/api/v1/calls/{call_id}/params", headers=who)
    return resp.json() if resp.status_code == 200 else None


async def _until(
    http: httpx.AsyncClient, who: dict[str, str], call_id: str, state: str, agent: str
) -> dict[str, Any]:
    """Wait until the call is in *state* with *agent* as its 工号."""
    deadline = time.monotonic() + 15
    got: Any = None
    while time.monotonic() < deadline:
        got = await _params(http, who, call_id)
        if got and got["state"] == state and got["params"]["agent_no"] == agent:
            return dict(got)
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {state} with agent {agent}, got {got}")


async def _channel(ami: AmiClient, prefix: str, linkedid: str) -> str:
    """The ``;1`` half of the Local channel named *prefix* in the call *linkedid*."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, items = await ami.send_list_action(act.core_show_channels())
        for m in items:
            name = m.get("Channel") or ""
            if name.startswith(prefix) and name.endswith(";1") and m.get("Linkedid") == linkedid:
                return name
        await asyncio.sleep(0.2)
    raise AssertionError(f"no channel {prefix}…;1 in call {linkedid}")


@contextlib.asynccontextmanager
async def _world(tmp_path: Path) -> AsyncIterator[EventWorld]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'xfer.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    try:
        yield await build_world(engine)
    finally:
        await engine.dispose()


async def test_attended_transfer_keeps_the_four_variables_right(
    real_ami: AmiClient, tmp_path: Path
) -> None:
    transfers: list[AmiMessage] = []
    real_ami.subscribe("AttendedTransfer", transfers.append)
    async with _world(tmp_path) as world:
        crm = world.keys["t1:crm"]
        writer = CallBatchWriter(world.calls, flush_interval=0.02)
        AmiCallFeed(real_ami, CallTrackingService(writer), lambda: datetime.now(UTC)).attach()
        flushing = asyncio.create_task(writer.run())
        control = AmiQueueControl(real_ami)
        await control.add_member(QueueMemberSpec(QUEUE, MEMBER_A, f"{AGENT_A} 坐席A", 0, False, ""))
        call_id = f"ccb-xfer-{uuid.uuid4().hex[:12]}"
        transport = httpx.ASGITransport(app=world.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                await real_ami.send_action(
                    act.originate(
                        "Local/s@xfer-test-queue",
                        application="Wait",
                        data="30",
                        caller_id=f'"ccbridge test" <{CALLER}>',
                        channel_id=call_id,
                    )
                )
                answered = await _until(http, crm, call_id, "connected", AGENT_A)
                assert answered["params"] == four(AGENT_A)

                agent_a = await _channel(real_ami, f"{MEMBER_A}-", call_id)
                await real_ami.send_action(act.atxfer(agent_a, AGENT_B, AGENTS))
                consult = await _channel(real_ami, f"Local/{AGENT_B}@{AGENTS}-", call_id)
                assert consult  # B answered A's consultation (Answer, then Wait)
                # While A consults, the customer's call is unchanged.
                during = await _params(http, crm, call_id)
                assert (during["state"], during["params"]) == ("connected", four(AGENT_A))

                await real_ami.send_action(act.hangup(agent_a))  # A hangs up: transfer done
                moved = await _until(http, crm, call_id, "connected", AGENT_B)
                assert moved["params"] == four(AGENT_B)
                assert [(leg["params"]["agent_no"], leg["via"]) for leg in moved["legs"]] == [
                    (AGENT_A, "queue"),
                    (AGENT_B, "attended_transfer"),
                ]

                caller = await _channel(real_ami, "Local/s@xfer-test-queue-", call_id)
                await real_ami.send_action(act.hangup(caller))
                ended = await _until(http, crm, call_id, "ended", AGENT_B)
                await writer.flush()
                events = [e for e in await poll_all(http, crm) if e["call_id"] == call_id]
        finally:
            flushing.cancel()
            with contextlib.suppress(BaseException):
                await flushing
            await writer.stop()
            await control.remove_member(QUEUE, MEMBER_A)

    assert ended["params"] == four(AGENT_B)
    assert ended["transfers"] == [
        {**ended["transfers"][0], "kind": "attended", "from_agent_no": AGENT_A, "target": AGENT_B}
    ]
    # What Asterisk itself said: one successful attended transfer, bridge to bridge, in this call.
    mine = [m for m in transfers if m.get("TransfereeLinkedid") == call_id]
    assert [(m.get("Result"), m.get("DestType")) for m in mine] == [("Success", "Bridge")]
    # The journal as a CRM reads it: the same five events as on the fake PBX.
    assert [(e["type"], e["data"]["params"]) for e in events] == [
        ("call.queued", four(None)),
        ("call.ringing", four(AGENT_A)),
        ("call.answered", four(AGENT_A)),
        ("call.transferred", four(AGENT_B)),
        ("call.ended", four(AGENT_B)),
    ]
    assert events[3]["data"]["transfer"] == {
        "kind": "attended",
        "from_agent_no": AGENT_A,
        "target": AGENT_B,
    }
