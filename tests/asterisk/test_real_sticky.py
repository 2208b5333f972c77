"""The shipped routing dialplan on a real Asterisk 22.

The sticky ring: ``[ccbridge-route]`` rings the repeat caller's owner agent before the queue,
and the answer is credited to that agent although no queue (and so no ``AgentConnect``) was
involved: live through the ``CCB_STICKY_*`` channel variables, and for an AMI gap through the
``CCBSTICKY`` line the hang-up writes to the queue log. Overflow: a call not answered within
the first group's timeout moves on to the overflow group.

Needs the tier's ``[sticky-test-caller]`` and ``[overflow-test-caller]`` contexts
(``asterisk/test-tier/``), the shipped dialplan, and ``CCB_STICKY_AGENT``/``CCB_STICKY_INTERFACE``
in the AMI user's channelvars.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.calls import CallTrackingService

OWNER_AGENT = "9004"
OWNER_PHONE = "Local/2004@ccbridge-test-agents"
QUEUE_LOG = Path(os.environ.get("CCBRIDGE_TEST_QUEUE_LOG", "/var/log/asterisk/queue_log"))


class Sink:
    """The tracker's snapshots go nowhere: the test reads the tracker itself."""

    def submit(self, record: CallRecord) -> None:
        """Drop it."""


async def _until(check: object, what: str, within: float = 15.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_owner_agent_who_answers_the_sticky_ring_is_credited(
    real_ami: AmiClient,
) -> None:
    try:
        await real_ami.send_list_action(
            act.AmiAction("ShowDialPlan", (("Context", "sticky-test-caller"),))
        )
    except AmiActionError:
        pytest.skip("the test PBX lacks [sticky-test-caller] (asterisk/test-tier/)")
    calls = CallTrackingService(Sink())
    PbxCoordinator(real_ami, calls=AmiCallFeed(calls, lambda: datetime.now(UTC))).attach()
    call_id = f"ccb-sticky-{uuid.uuid4().hex[:12]}"
    await real_ami.send_action(
        act.originate(
            "Local/s@sticky-test-caller",
            application="Wait",
            data="4",
            caller_id='"sticky test" <13800138000>',
            channel_id=call_id,
        )
    )

    def credited() -> bool:
        rec = calls.get(call_id)
        return rec is not None and rec.current_agent_no == OWNER_AGENT

    await _until(credited, f"agent {OWNER_AGENT} credited with the sticky answer")
    rec = calls.get(call_id)
    assert rec is not None
    assert rec.skill_group == "ccbridge-test"
    assert rec.answered_at is not None
    assert rec.agent_interface == OWNER_PHONE

    def ended() -> bool:
        done = calls.get(call_id)
        return done is not None and done.state is CallState.ENDED

    await _until(ended, "the call to end", within=20.0)
    done = calls.get(call_id)
    assert done is not None
    assert (done.tenant, done.agent_no) == ("t1", OWNER_AGENT)
    if not os.access(QUEUE_LOG, os.R_OK):
        return  # the live half is proven; the queue-log half needs the file
    lines: list[str] = []

    def logged() -> bool:
        lines[:] = [
            ln
            for ln in QUEUE_LOG.read_text(errors="replace").splitlines()
            if "|CCBSTICKY|" in ln and f"|{call_id}|" in ln
        ]
        return bool(lines)

    await _until(logged, "the CCBSTICKY line in the queue log", within=10.0)
    fields = lines[0].split("|")
    assert OWNER_AGENT in fields
    assert OWNER_PHONE in fields


async def test_a_call_not_answered_in_time_overflows_to_the_next_group(
    real_ami: AmiClient,
) -> None:
    """The shipped route's queue timeout and overflow: first group, then the overflow group."""
    try:
        await real_ami.send_list_action(
            act.AmiAction("ShowDialPlan", (("Context", "overflow-test-caller"),))
        )
    except AmiActionError:
        pytest.skip("the test PBX lacks [overflow-test-caller] (asterisk/test-tier/)")
    call_id = f"ccb-overflow-{uuid.uuid4().hex[:12]}"
    joined: list[str] = []

    def on_join(msg: AmiMessage) -> None:
        if msg.get("Linkedid") == call_id:
            joined.append(msg.get("Queue") or "")

    unsubscribe = real_ami.subscribe("QueueCallerJoin", on_join)
    try:
        await real_ami.send_action(
            act.originate(
                "Local/s@overflow-test-caller",
                application="Wait",
                data="30",
                caller_id='"overflow test" <13800138001>',
                channel_id=call_id,
            )
        )
        await _until(lambda: len(joined) >= 2, "the call to join the overflow group")
        assert joined[:2] == ["ccbridge-drill", "ccbridge-test"]
    finally:
        unsubscribe()
        _, items = await real_ami.send_list_action(act.core_show_channels())
        for m in items:
            if m.event == "CoreShowChannel" and m.get("Linkedid") == call_id:
                with contextlib.suppress(AmiActionError):
                    await real_ami.send_action(act.hangup(m.get("Channel") or ""))
