"""Issue 14: a call blind-transferred to another skill group is rebuilt whole from the PBX's
queue log. The fake PBX keeps the records a real one keeps (``CONNECT``, ``BLINDTRANSFER``,
the second ``ENTERQUEUE`` and ``CONNECT``); rebuilt from them alone (as after an AMI gap), the
call has the same segments and transfer as the live stream gave it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from ccbridge.asterisk.ami.actions import blind_transfer, hangup
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.domain.calls.audit import audit_calls
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.pbx_records import (
    assemble_calls,
    parse_queue_log_line,
    reconstruct_events,
)
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.services.calls import CallTrackingService
from ccbridge.testing.call_generator import DidRoute, SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import MemberSpec, QueueSpec
from tests.fakes.calls import MemoryCallStore
from tests.support.ami_rig import fake_pbx_client, running

DID = "4008001234"
MEMBERS = {"1001 张伟": "Local/2001@agents", "1003 王磊": "Local/2003@agents"}
QUEUES = [
    QueueSpec("t1-sales", "rrmemory", [MemberSpec("Local/2001@agents", "1001 张伟")]),
    QueueSpec("t1-support", "rrmemory", [MemberSpec("Local/2003@agents", "1003 王磊")]),
]


async def _until(check, what: str) -> CallRecord:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while (found := check()) is None:  # noqa: ASYNC110 (polls the tracker)
            await asyncio.sleep(0.01)
    assert found is not None, what
    return found  # type: ignore[no-any-return]


def _story(rec: CallRecord) -> tuple:  # type: ignore[type-arg]
    segments = [(s.agent_no, s.agent_interface, s.skill_group, s.via) for s in rec.segments]
    transfers = [(t.kind, t.from_agent_no, t.target, t.from_group) for t in rec.transfers]
    return rec.state, rec.skill_group, rec.agent_no, segments, transfers


async def test_a_requeued_call_rebuilt_from_the_queue_log_matches_the_live_one(
    tmp_path: Path,
) -> None:
    config = SimulatorConfig(ring_seconds=(1.0, 1.5), poll_interval=0.002)
    store = MemoryCallStore()
    calls = CallTrackingService(store)
    async with FakeAsterisk(
        seed=14,
        agi_url=None,
        time_scale=0.05,
        queues=QUEUES,
        dids={DID: DidRoute("t1", "t1-sales")},
        config=config,
        records_dir=tmp_path,
    ) as pbx:
        client = fake_pbx_client(pbx.ami_port)
        PbxCoordinator(client, calls=AmiCallFeed(calls, lambda: datetime.now(UTC))).attach()
        async with running(client):
            handle = await pbx.simulator.place_call(
                "13800138000", did=DID, talk_seconds=600, agent_hangs_up=False
            )

            def answered_by(agent: str) -> CallRecord | None:
                rec = calls.get(handle.linkedid)
                ok = rec is not None and rec.segments and rec.segments[-1].agent_no == agent
                return rec if ok else None

            await _until(lambda: answered_by("1001"), "1001 to answer")
            agent_leg = calls.live_channels(handle.linkedid)[1]
            await client.send_action(blind_transfer(agent_leg, "t1-support", "ccbridge-queue"))
            await _until(lambda: answered_by("1003"), "1003 to answer in t1-support")
            await client.send_action(hangup(handle.channel))

            def ended() -> CallRecord | None:
                rec = calls.get(handle.linkedid)
                return rec if rec is not None and rec.state is CallState.ENDED else None

            live = await _until(ended, "the call to end")
            await handle

    lines = (tmp_path / "queue_log").read_text(encoding="utf-8").splitlines()
    entries = [e for line in lines if (e := parse_queue_log_line(line)) is not None]
    assert [e.event for e in entries if e.callid == handle.linkedid] == [
        "CCBCALL",
        "ENTERQUEUE",
        "CONNECT",
        "BLINDTRANSFER",
        "ENTERQUEUE",
        "CONNECT",
        "COMPLETECALLER",
        "CCBEND",
    ]
    (pbx_call,) = assemble_calls(entries)
    rebuilt = CallTracker()
    rebuilt.apply_all(reconstruct_events(pbx_call, MEMBERS))
    again = rebuilt.get(handle.linkedid)
    assert again is not None
    assert _story(again) == _story(live)
    assert _story(live)[3] == [
        ("1001", "Local/2001@agents", "t1-sales", "queue"),
        ("1003", "Local/2003@agents", "t1-support", "blind_transfer"),
    ]
    for mine, theirs in zip(again.segments, live.segments, strict=True):
        assert abs((mine.started_at - theirs.started_at).total_seconds()) <= 1
    assert audit_calls([pbx_call], {live.call_id: live}) == []
