"""The shipped routing dialplan on a real Asterisk 22.

The sticky ring: ``[ccbridge-route]`` rings the repeat caller's owner agent before the queue,
and the answer is credited to that agent although no queue (and so no ``AgentConnect``) was
involved: live through the ``CCB_STICKY_*`` channel variables, and for an AMI gap through the
``CCBSTICKY`` line the hang-up writes to the queue log. Overflow: a call not answered within
the first group's timeout moves on to the overflow group.

Recording (ADR 0025): with the caller carrying what ccbridge's FastAGI sets for a tenant whose
policy records the group (``MONITOR_FILENAME``, ``CCB_STICKY_RECORD=yes``), the shipped
``[ccbridge-record-answer]`` records the owner's leg when it answers. With the link up, ccbridge
indexes that file from ``MixMonitorStart`` and sends no MixMonitor; answered and ended inside an
AMI gap, the backfill indexes it after the gap, with no ``recording.missing``.

Needs the tier's ``[sticky-test-caller]`` and ``[overflow-test-caller]`` contexts
(``asterisk/test-tier/``), the shipped dialplan, and the shipped channelvars
(``CCB_STICKY_AGENT``, ``CCB_STICKY_INTERFACE``, ``CCB_STICKY_FILE``, ``MIXMONITOR_FILENAME``).
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
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.model import RecordingStatus
from ccbridge.services.calls import CallTrackingService
from tests.asterisk.test_real_gap_drill import (
    RECORDINGS,
    _named,
    _need_pbx_files,
    proxied_ccbridge,
)
from tests.support.gap_drill import cut, heal

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


async def _sticky_context_or_skip(real_ami: AmiClient) -> None:
    try:
        await real_ami.send_list_action(
            act.AmiAction("ShowDialPlan", (("Context", "ccbridge-record-answer"),))
        )
    except AmiActionError:
        pytest.skip("the test PBX lacks the shipped [ccbridge-record-answer]")


async def test_the_pbx_records_the_owners_answer_with_the_link_up_and_inside_a_gap(
    real_ami: AmiClient, ami_config: AmiConfig, tmp_path: Path
) -> None:
    """Two sticky calls the owner answers: one with ccbridge's link up, one that starts and
    ends while the link is cut. Each has exactly one ``ok`` recording, the PBX's file under
    the name FastAGI gave it; none is ``missing``; ccbridge sent no MixMonitor."""
    _need_pbx_files()
    await _sticky_context_or_skip(real_ami)
    c = await proxied_ccbridge(ami_config, tmp_path / "sticky.db")
    engine, world, writer, tracking = c.engine, c.world, c.writer, c.tracking
    proxy, client, feed, recordings = c.proxy, c.client, c.feed, c.recordings
    recording_feed, sent = c.recording_feed, c.sent
    names: dict[str, str] = {}

    async def sticky_caller(wait_s: float) -> str:
        call_id = f"ccb-stickyrec-{uuid.uuid4().hex[:12]}"
        named = {**_named(call_id), "CCB_STICKY_RECORD": "yes"}
        names[call_id] = named["MONITOR_FILENAME"]
        await real_ami.send_action(
            act.originate(
                "Local/s@sticky-test-caller",
                application="Wait",
                data=str(wait_s),
                caller_id='"sticky rec" <13800138000>',
                channel_id=call_id,
                variables=named,
            )
        )
        return call_id

    def ended(call_id: str) -> bool:
        rec = tracking.get(call_id)
        return rec is not None and rec.state.is_final

    tasks = [
        asyncio.create_task(writer.run()),
        asyncio.create_task(client.run()),
        asyncio.create_task(recording_feed.run()),
    ]
    store = RecordingRepository(create_session_factory(engine))
    try:
        await client.wait_synced(10)
        live = await sticky_caller(4)
        await _until(lambda: ended(live), "the live sticky call to end", within=20.0)
        await cut(proxy, "reset", ami_config.port)
        in_gap = await sticky_caller(4)
        await asyncio.sleep(7)  # rung, answered, talked and hung up: all inside the gap
        await heal(proxy, "reset", ami_config.port)
        await _until(lambda: feed.resyncs >= 2, "the resync after the gap", within=30.0)
        await _until(lambda: ended(in_gap), "the gap call rebuilt", within=20.0)
        rows = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            await recordings.idle()
            rows = {c: await store.of_call(c) for c in (live, in_gap)}
            if all(r and r[0].status is not RecordingStatus.RECORDING for r in rows.values()):
                break
            await asyncio.sleep(0.2)
        flags = await world.journal.list_after("t1", 0, 1000, types=["recording.missing"])
    finally:
        await client.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await writer.stop()
        await proxy.close()
        await engine.dispose()

    for call_id in (live, in_gap):
        got = rows[call_id]
        assert [r.status for r in got] == [RecordingStatus.OK], (call_id, got)
        assert f"{RECORDINGS}/{got[0].path}" == f"{names[call_id]}.wav"
        assert got[0].agent_no == OWNER_AGENT
        assert (RECORDINGS / got[0].path).stat().st_size > 44
    assert (rows[live][0].channel or "").startswith(f"{OWNER_PHONE}-")  # the owner's leg
    assert [e for e in flags if e.call_id in names] == []
    assert "MixMonitor" not in sent  # the PBX started both recordings
