"""Seats on a real Asterisk 22: sign-in (paused first), pause with reason, a queued call
answered by the signed-in agent, sign-out. Needs the snippets in asterisk/."""

from __future__ import annotations

import asyncio

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.domain.endpoints import Technology, interface_for

QUEUE = "ccbridge-test"
AGENTS_CONTEXT = "ccbridge-test-agents"
"""The test tier's agents context (``CCBRIDGE_AGENTS_CONTEXT`` when ccbridge runs on it)."""
MEMBER = interface_for(Technology.LOCAL, "2001", AGENTS_CONTEXT)
"""The interface of a claimed ``Local`` endpoint 2001: what a signed-in seat's QueueAdd sends."""


def spec(paused: bool = False, reason: str = "") -> QueueMemberSpec:
    return QueueMemberSpec(QUEUE, MEMBER, "9001 测试", 0, paused, reason)


async def test_sign_in_pause_answer_sign_out(real_ami: AmiClient) -> None:
    control = AmiQueueControl(real_ami)
    connected: asyncio.Queue[AmiMessage] = asyncio.Queue()
    real_ami.subscribe("AgentConnect", connected.put_nowait)
    await control.add_member(spec())
    try:
        members = {m.interface: m for m in await control.snapshot([QUEUE])}
        assert members[MEMBER].paused is False

        await control.set_paused(QUEUE, MEMBER, True, "小休 break")
        members = {m.interface: m for m in await control.snapshot([QUEUE])}
        assert (members[MEMBER].paused, members[MEMBER].reason) == (True, "小休 break")

        await control.set_paused(QUEUE, MEMBER, False, "")
        await real_ami.send_action(
            act.originate(
                "Local/s@ccbridge-test-queue",
                application="Wait",
                data="5",
                caller_id='"ccbridge test" <13800138000>',
            )
        )
        async with asyncio.timeout(20):
            event = await connected.get()
        assert event.get("Queue") == QUEUE
        assert event.get("Interface") == MEMBER
    finally:
        await control.remove_member(QUEUE, MEMBER)
    assert MEMBER not in {m.interface for m in await control.snapshot([QUEUE])}
