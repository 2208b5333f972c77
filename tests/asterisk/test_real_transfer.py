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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.services.calls import CallTrackingService
from tests.support.event_rig import build_world, poll_all

QUEUE = "ccbridge-test"
AGENTS = "ccbridge-test-agents"
MEMBER_A, MEMBER_C = f"Local/2001@{AGENTS}", f"Local/2003@{AGENTS}"
AGENT_A, AGENT_B, AGENT_RINGS, AGENT_C = "9001", "2002", "2302", "9002"
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


@dataclass(slots=True)
class Scene:
    """A tenant call answered by agent A on the real PBX, watched through the journal."""

    ami: AmiClient
    http: httpx.AsyncClient
    crm: dict[str, str]
    call_id: str
    writer: CallBatchWriter
    transfers: list[AmiMessage] = field(default_factory=list)

    async def params(self) -> Any:
        """``GET /calls/{id}/params`` as the CRM sees it (``None`` while unknown)."""
        resp = await self.http.get(f"/api/v1/calls/{self.call_id}/params", headers=self.crm)
        return resp.json() if resp.status_code == 200 else None

    async def until(self, state: str, agent: str) -> dict[str, Any]:
        """Wait until the call is in *state* with *agent* as its 工号."""
        deadline = time.monotonic() + 15
        got: Any = None
        while time.monotonic() < deadline:
            got = await self.params()
            if got and got["state"] == state and got["params"]["agent_no"] == agent:
                return dict(got)
            await asyncio.sleep(0.1)
        raise AssertionError(f"expected {state} with agent {agent}, got {got}")

    async def channels(self) -> list[AmiMessage]:
        """Every live channel of this call."""
        _, items = await self.ami.send_list_action(act.core_show_channels())
        return [
            m for m in items if m.event == "CoreShowChannel" and m.get("Linkedid") == self.call_id
        ]

    async def channel(self, prefix: str, *, up: bool = False) -> str:
        """The ``;1`` half of the Local channel named *prefix* in this call (once it is
        answered, with *up*)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for m in await self.channels():
                name = m.get("Channel") or ""
                wanted = not up or m.get("ChannelStateDesc") == "Up"
                if name.startswith(prefix) and name.endswith(";1") and wanted:
                    return name
            await asyncio.sleep(0.1)
        raise AssertionError(f"no channel {prefix}…;1 {'up ' if up else ''}in {self.call_id}")

    async def hang_up_caller_and_read_journal(
        self, last_agent: str
    ) -> tuple[dict[str, Any], list[Any]]:
        """End the call from the caller's side; return the final params and its events."""
        caller = await self.channel("Local/s@xfer-test-queue-")
        await self.ami.send_action(act.hangup(caller))
        ended = await self.until("ended", last_agent)
        await self.writer.flush()
        events = [e for e in await poll_all(self.http, self.crm) if e["call_id"] == self.call_id]
        return ended, events

    def transfers_of_this_call(self) -> list[tuple[str | None, str | None]]:
        """What Asterisk itself said: ``(Result, DestType)`` of each transfer of this call."""
        return [
            (m.get("Result"), m.get("DestType"))
            for m in self.transfers
            if m.get("TransfereeLinkedid") == self.call_id
        ]


@contextlib.asynccontextmanager
async def _answered_by_a(ami: AmiClient, tmp_path: Path) -> AsyncIterator[Scene]:
    """Wire the journal to the real PBX, put agent A in the queue and let A answer a call
    (agent C, 9002, is signed in too but paused, to take the call back from the IVR)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'xfer.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    world = await build_world(engine)
    writer = CallBatchWriter(world.calls, flush_interval=0.02)
    PbxCoordinator(
        ami, calls=AmiCallFeed(CallTrackingService(writer), lambda: datetime.now(UTC))
    ).attach()
    flushing = asyncio.create_task(writer.run())
    control = AmiQueueControl(ami)
    await control.add_member(QueueMemberSpec(QUEUE, MEMBER_A, f"{AGENT_A} 坐席A", 0, False, ""))
    await control.add_member(QueueMemberSpec(QUEUE, MEMBER_C, f"{AGENT_C} 坐席C", 0, True, "小休"))
    transport = httpx.ASGITransport(app=world.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            scene = Scene(
                ami, http, world.keys["t1:crm"], f"ccb-xfer-{uuid.uuid4().hex[:12]}", writer
            )
            ami.subscribe("AttendedTransfer", scene.transfers.append)
            await ami.send_action(
                act.originate(
                    "Local/s@xfer-test-queue",
                    application="Wait",
                    data="30",
                    caller_id=f'"ccbridge test" <{CALLER}>',
                    channel_id=scene.call_id,
                )
            )
            answered = await scene.until("connected", AGENT_A)
            assert answered["params"] == four(AGENT_A)
            yield scene
    finally:
        # Agents' legs talk on after the caller left (Wait(20)); free them for the next test.
        for m in await scene.channels():
            with contextlib.suppress(Exception):
                await ami.send_action(act.hangup(m.get("Channel") or ""))
        flushing.cancel()
        with contextlib.suppress(BaseException):
            await flushing
        await writer.stop()
        await control.remove_member(QUEUE, MEMBER_A)
        await control.remove_member(QUEUE, MEMBER_C)
        await engine.dispose()


async def _consult(scene: Scene, target: str, *, answered: bool = True) -> str:
    """A presses the attended-transfer code (AMI ``Atxfer``) to *target*; return A's channel
    once the target rings, or has answered with *answered*."""
    agent_a = await scene.channel(f"{MEMBER_A}-")
    await scene.ami.send_action(act.atxfer(agent_a, target, AGENTS))
    await scene.channel(f"Local/{target}@{AGENTS}-", up=answered)
    # While A consults, the customer's call is unchanged.
    during = await scene.params()
    assert (during["state"], during["params"]) == ("connected", four(AGENT_A))
    return agent_a


def _legs(params: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [
        (leg["params"]["agent_no"], leg["via"], leg["ended_at"] is not None)
        for leg in params["legs"]
    ]


def _journal(events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["data"]["params"]) for e in events]


def _expected(agent_b: str) -> list[tuple[str, dict[str, Any]]]:
    """The journal a CRM reads for every variant: the same five events as on the fake PBX."""
    return [
        ("call.queued", four(None)),
        ("call.ringing", four(AGENT_A)),
        ("call.answered", four(AGENT_A)),
        ("call.transferred", four(agent_b)),
        ("call.ended", four(agent_b)),
    ]


def _assert_journal(events: list[Any], kind: str, agent_b: str) -> None:
    """The five events with their four variables, and what ``call.transferred`` says."""
    assert _journal(events) == _expected(agent_b)
    transfer = {
        "kind": kind,
        "from_agent_no": AGENT_A,
        "target": agent_b,
        "from_group": QUEUE,
        "to_agent_no": None,  # set only for transfers started through the call-control API
        "to_group": None,
        "to_number": None,
    }
    assert events[3]["data"]["transfer"] == transfer


async def test_attended_transfer_keeps_the_four_variables_right(
    real_ami: AmiClient, tmp_path: Path
) -> None:
    async with _answered_by_a(real_ami, tmp_path) as scene:
        agent_a = await _consult(scene, AGENT_B)
        await real_ami.send_action(act.hangup(agent_a))  # A hangs up: transfer done
        moved = await scene.until("connected", AGENT_B)
        assert moved["params"] == four(AGENT_B)
        assert _legs(moved) == [(AGENT_A, "queue", True), (AGENT_B, "attended_transfer", False)]
        ended, events = await scene.hang_up_caller_and_read_journal(AGENT_B)

    assert ended["params"] == four(AGENT_B)
    assert [(t["kind"], t["from_agent_no"], t["target"]) for t in ended["transfers"]] == [
        ("attended", AGENT_A, AGENT_B)
    ]
    assert scene.transfers_of_this_call() == [("Success", "Bridge")]
    _assert_journal(events, "attended", AGENT_B)


async def test_transfer_completed_while_the_target_rings(
    real_ami: AmiClient, tmp_path: Path
) -> None:
    """A hangs up before B answers (a "blond" transfer): Asterisk's ``AttendedTransfer``
    names no target yet, so the new leg starts with whoever answers next in the call."""
    async with _answered_by_a(real_ami, tmp_path) as scene:
        agent_a = await _consult(scene, AGENT_RINGS, answered=False)
        await real_ami.send_action(act.hangup(agent_a))
        moved = await scene.until("connected", AGENT_RINGS)  # B answers 1.5 s later
        assert moved["params"] == four(AGENT_RINGS)
        assert _legs(moved) == [
            (AGENT_A, "queue", True),
            (AGENT_RINGS, "attended_transfer", False),
        ]
        ended, events = await scene.hang_up_caller_and_read_journal(AGENT_RINGS)

    assert scene.transfers_of_this_call() == [("Success", "Bridge")]
    assert [(t["kind"], t["from_agent_no"], t["target"]) for t in ended["transfers"]] == [
        ("attended", AGENT_A, AGENT_RINGS)
    ]
    _assert_journal(events, "attended", AGENT_RINGS)


async def test_three_way_keeps_agent_a_on_the_call(real_ami: AmiClient, tmp_path: Path) -> None:
    async with _answered_by_a(real_ami, tmp_path) as scene:
        agent_a = await _consult(scene, AGENT_B)
        # A presses *3 during the consultation: A's phone sends the digits, which Asterisk
        # reads on A's leg of the bridge (PlayDTMF with Receive on the ;1 half).
        for digit in "*3":
            await real_ami.send_action(act.play_dtmf(agent_a, digit, receive=True))
        joined = await scene.until("connected", AGENT_B)
        assert joined["params"] == four(AGENT_B)
        assert _legs(joined) == [(AGENT_A, "queue", False), (AGENT_B, "threeway", False)]
        ended, events = await scene.hang_up_caller_and_read_journal(AGENT_B)

    assert scene.transfers_of_this_call() == [("Success", "Threeway")]
    assert ended["params"] == four(AGENT_B)
    assert _legs(ended) == [(AGENT_A, "queue", True), (AGENT_B, "threeway", True)]
    _assert_journal(events, "threeway", AGENT_B)


async def test_blind_transfer_opens_the_targets_leg_when_it_answers(
    real_ami: AmiClient, tmp_path: Path
) -> None:
    async with _answered_by_a(real_ami, tmp_path) as scene:
        agent_a = await scene.channel(f"{MEMBER_A}-")
        # The caller goes to B's extension, which dials B's phone (a new leg in the call).
        await real_ami.send_action(act.blind_transfer(agent_a, AGENT_B, "ccbridge-test-phones"))
        moved = await scene.until("connected", AGENT_B)
        assert moved["params"] == four(AGENT_B)
        assert _legs(moved) == [(AGENT_A, "queue", True), (AGENT_B, "blind_transfer", False)]
        ended, events = await scene.hang_up_caller_and_read_journal(AGENT_B)

    assert [(t["kind"], t["from_agent_no"], t["target"]) for t in ended["transfers"]] == [
        ("blind", AGENT_A, AGENT_B)
    ]
    # call.transferred is written when A hands the call on; B answers just after.
    assert [e["type"] for e in events] == [t for t, _ in _expected(AGENT_B)]
    assert events[4]["data"]["params"] == four(AGENT_B)
    assert [(leg["agent_no"], leg["via"]) for leg in events[4]["data"]["legs"]] == [
        (AGENT_A, "queue"),
        (AGENT_B, "blind_transfer"),
    ]


async def test_ivr_round_trip_keeps_the_skill_group_and_opens_a_queue_leg(
    real_ami: AmiClient, tmp_path: Path
) -> None:
    """Agent A hands the caller back to the IVR (AMI ``Redirect`` of the caller's leg), the
    IVR queues it again, and agent C answers: 技能组, 主叫 and 被叫 stay; 工号 becomes C's."""
    async with _answered_by_a(real_ami, tmp_path) as scene:
        await real_ami.send_action(act.queue_pause(MEMBER_A, paused=True, queue=QUEUE))
        await real_ami.send_action(act.queue_pause(MEMBER_C, paused=False, queue=QUEUE))
        caller = await scene.channel("Local/s@xfer-test-queue-")
        await real_ami.send_action(act.redirect(caller.replace(";1", ";2"), "xfer-test-queue", "s"))
        back = await scene.until("connected", AGENT_C)
        assert back["params"] == four(AGENT_C)
        assert _legs(back) == [(AGENT_A, "queue", True), (AGENT_C, "queue", False)]
        ended, events = await scene.hang_up_caller_and_read_journal(AGENT_C)

    assert ended["transfers"] == []
    assert [(e["type"], e["data"]["params"]) for e in events] == [
        ("call.queued", four(None)),
        ("call.ringing", four(AGENT_A)),
        ("call.answered", four(AGENT_A)),
        ("call.ringing", four(AGENT_C)),
        ("call.answered", four(AGENT_C)),
        ("call.ended", four(AGENT_C)),
    ]
