"""Issue 15: the owner agent answering the sticky ring is credited, end to end on the fake PBX.

The inbound FastAGI route sets a sticky decision on the channel (the production
``apply_decision``); the fake PBX then does what ``[ccbridge-route]`` does (``Set(__CCB_STICKY_*)``,
``Dial`` of the owner's phone before ``Queue``) and reports the variables through
``channelvars``; ccbridge's AMI feed and tracker turn the owner's leg going up into the call's
agent segment. An owner who does not answer leaves the call to the queue, whose member is
credited as usual (the cleared variables never name the owner on the member's leg). The PBX's
queue log tells the owner's answer too (``CCBSTICKY``), so a backfill after an AMI gap
rebuilds the same call and the audit finds no difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.domain.acd.routing import RoutingDecision
from ccbridge.domain.calls.audit import audit_calls
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.pbx_records import (
    assemble_calls,
    parse_queue_log_line,
    reconstruct_events,
)
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.services.calls import CallTrackingService
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.fakes.calls import MemoryCallStore
from tests.support.ami_rig import fake_pbx_client, running

DID = "4008001234"


class StickyPolicy:
    """A sticky policy on t1's sales group: the owner is whoever the test names."""

    def __init__(self) -> None:
        self.owner = ("1101", "PJSIP/1101")

    async def route(
        self,
        tenant_id: str,
        group: str,
        caller: str,
        language: Callable[[], Awaitable[str]] | None = None,
    ) -> RoutingDecision:
        agent, interface = self.owner
        return RoutingDecision(
            group="sales",
            queue_seconds=300,
            sticky_agent=agent,
            sticky_interface=interface,
            sticky_seconds=15,
            reason="default",
        )


async def _ended(store: MemoryCallStore, call_id: str) -> CallRecord:
    async with asyncio.timeout(10):
        while True:
            rec = store.records.get(call_id)
            if rec is not None and rec.state.is_final:
                return rec
            await asyncio.sleep(0.01)


async def test_the_owner_answering_the_sticky_ring_is_the_calls_agent(tmp_path: Path) -> None:
    policy = StickyPolicy()
    router = AgiRouter()
    router.add_route(
        SCRIPT, InboundRouteHandler({DID: InboundRoute("t1", group="sales")}, None, policies=policy)
    )
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    config = SimulatorConfig(ring_seconds=(1.0, 2.0), talk_seconds=(5.0, 5.0), poll_interval=0.002)
    config.agi_url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
    store = MemoryCallStore()
    tracking = CallTrackingService(store)
    try:
        async with FakeAsterisk(
            seed=15, time_scale=0.01, config=config, records_dir=tmp_path
        ) as pbx:
            client = fake_pbx_client(pbx.ami_port)
            PbxCoordinator(client, calls=AmiCallFeed(tracking, lambda: datetime.now(UTC))).attach()
            async with running(client):
                owner = await pbx.simulator.place_call("13800138000", did=DID, agent_hangs_up=False)
                outcome = await owner
                rec = await _ended(store, owner.linkedid)
                policy.owner = ("2901", "PJSIP/2901")  # an owner who never answers
                queued = await pbx.simulator.place_call("13900139000", did=DID)
                queued_outcome = await queued
                fallback = await _ended(store, queued.linkedid)
    finally:
        await agi.stop()

    assert (outcome.answered, outcome.member, outcome.queue) == (True, "PJSIP/1101", "t1-sales")
    assert rec.state is CallState.ENDED
    assert (rec.tenant, rec.agent_no, rec.agent_interface, rec.skill_group) == (
        "t1",
        "1101",
        "PJSIP/1101",
        "t1-sales",
    )
    assert rec.answered_at is not None
    assert rec.queued_at is None
    assert [(s.agent_no, s.skill_group, s.via) for s in rec.segments] == [
        ("1101", "t1-sales", "sticky")
    ]
    assert rec.segments[0].ended_at is not None

    assert queued_outcome.answered
    assert queued_outcome.member is not None
    assert queued_outcome.member.startswith("Local/")  # a queue member took it
    assert fallback.agent_interface == queued_outcome.member
    assert [(s.agent_no, s.skill_group, s.via) for s in fallback.segments] == [
        (fallback.agent_no, "t1-sales", "queue")
    ]
    assert fallback.agent_no != "2901"

    # The queue log names the owner's answer; rebuilt from it alone (the call answered in an
    # AMI gap), the call is the one the live stream built, and the audit agrees.
    lines = (tmp_path / "queue_log").read_text(encoding="utf-8").splitlines()
    entries = [e for line in lines if (e := parse_queue_log_line(line)) is not None]
    sticky_lines = [e for e in entries if e.event == "CCBSTICKY"]
    assert [(e.callid, e.queue, e.data[5:7]) for e in sticky_lines] == [
        (owner.linkedid, "t1-sales", ("1101", "PJSIP/1101"))
    ]
    pbx_calls = {c.linkedid: c for c in assemble_calls(entries)}
    rebuilt = CallTracker()
    rebuilt.apply_all(reconstruct_events(pbx_calls[owner.linkedid]))
    again = rebuilt.get(owner.linkedid)
    assert again is not None
    assert (again.state, again.agent_no, again.agent_interface, again.skill_group) == (
        CallState.ENDED,
        "1101",
        "PJSIP/1101",
        "t1-sales",
    )
    assert [(s.agent_no, s.skill_group, s.via) for s in again.segments] == [
        ("1101", "t1-sales", "sticky")
    ]
    assert again.answered_at is not None
    assert rec.answered_at is not None
    assert abs((again.answered_at - rec.answered_at).total_seconds()) <= 1  # whole seconds
    assert audit_calls(pbx_calls.values(), {rec.call_id: rec, fallback.call_id: fallback}) == []
