"""Call control on a real Asterisk 22: ccbridge's AMI adapter (``AmiCallControl``) acting on
real channels, and the call tracker reading what Asterisk reports back.

A tenant call (``Local/s@xfer-test-queue``, tagged t1 / 4008001234) is answered by agent A
(9001 on ``Local/2001@ccbridge-test-agents``); then each test holds and resumes it, transfers
it blind (to an agent, to a group) or attended, makes a 3-way call, hands it back to the IVR
at a flow node and back to the agent, or places a click-to-call.

Needs on the PBX: the call-control contexts of ``asterisk/extensions-ccbridge.conf`` and the
test-tier snippets (``asterisk/test-tier/``). A test whose context is missing skips, naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.call_control import AmiCallControl
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.ivr_return import SCRIPT as RETURN_SCRIPT
from ccbridge.asterisk.ivr_return import IvrReturnHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.tracker import interface_of_channel
from ccbridge.domain.journal.derive import call_params
from ccbridge.services.call_control import conference_room, new_call_id
from ccbridge.services.call_control_ports import Dial, OriginateCall
from ccbridge.services.calls import CallTrackingService
from tests.fakes.ivr import ListSink as IvrLog
from tests.fakes.ivr import StaticFlows, load_example

QUEUE = "ccbridge-test"
AGENTS = "ccbridge-test-agents"
MEMBER_A, MEMBER_C = f"Local/2001@{AGENTS}", f"Local/2003@{AGENTS}"
AGENT_A, AGENT_C = "9001", "9002"
CALLER, DID = "13800138000", "4008001234"
SHIPPED = ("ccbridge-hold", "ccbridge-hold-agent", "ccbridge-conf", "ccbridge-queue")
TEST_TIER = ("ccbridge-test-outbound", "ccbridge-test-customer", "ccbridge-test-ivr-return")


class Sink:
    """Keeps nothing: the tracker's records are read from the service."""

    def submit(self, record: CallRecord) -> None:
        """Drop it."""


@dataclass(slots=True)
class Scene:
    """A tenant call answered by agent A on the real PBX, with the adapter and the tracker."""

    ami: AmiClient
    calls: CallTrackingService
    pbx: AmiCallControl
    call_id: str
    events: list[AmiMessage] = field(default_factory=list)

    def record(self) -> CallRecord:
        rec = self.calls.get(self.call_id)
        assert rec is not None
        return rec

    def legs(self) -> tuple[str, str]:
        """(customer, agent A): the caller's bridged half and A's bridged half."""
        live = self.calls.live_channels(self.call_id)
        customer = next(
            c for c in live if c.startswith("Local/s@xfer-test-queue-") and c.endswith(";2")
        )
        agent = next(c for c in live if interface_of_channel(c) == MEMBER_A and c.endswith(";1"))
        return customer, agent

    async def until(self, check: Callable[[], Any], what: str, within: float = 15.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}; record: {self.calls.get(self.call_id)}"
        )

    def seen(self, event: str, **fields: str) -> list[AmiMessage]:
        return [
            m
            for m in self.events
            if m.event == event and all(m.get(k) == v for k, v in fields.items())
        ]

    async def agent_is(self, agent_no: str) -> CallRecord:
        def check() -> CallRecord | None:
            rec = self.calls.get(self.call_id)
            return rec if rec is not None and rec.current_agent_no == agent_no else None

        rec: CallRecord = await self.until(check, f"agent {agent_no} on the call")
        return rec


def four(agent: str, group: str = QUEUE) -> dict[str, Any]:
    return {
        "agent_no": agent,
        "skill_group": group,
        "caller": "+86" + CALLER,
        "callee": "+86" + DID,
        "caller_original": CALLER,
        "callee_original": DID,
    }


async def _missing_contexts(ami: AmiClient, names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        try:
            await ami.send_list_action(act.AmiAction("ShowDialPlan", (("Context", name),)))
        except AmiActionError:
            missing.append(name)
    return missing


@pytest.fixture
async def scene(real_ami: AmiClient) -> AsyncIterator[Scene]:
    missing = await _missing_contexts(real_ami, SHIPPED + TEST_TIER)
    if missing:
        pytest.skip(f"the test PBX lacks the dialplan contexts {missing} (docs/call-control.md)")
    calls = CallTrackingService(Sink())
    PbxCoordinator(real_ami, calls=AmiCallFeed(calls, lambda: datetime.now(UTC))).attach()
    control = AmiQueueControl(real_ami)
    await control.add_member(QUEUE_SPEC_A)
    await control.add_member(QUEUE_SPEC_C)
    call_id = f"ccb-ctl-{uuid.uuid4().hex[:12]}"
    pbx = AmiCallControl(
        real_ami,
        AGENTS,
        outbound_context="ccbridge-test-outbound",
        ivr_return_context="ccbridge-test-ivr-return",
    )
    s = Scene(real_ami, calls, pbx, call_id)
    for name in ("MusicOnHoldStart", "BridgeEnter", "ConfbridgeJoin", "BlindTransfer"):
        real_ami.subscribe(name, s.events.append)
    try:
        await real_ami.send_action(
            act.originate(
                "Local/s@xfer-test-queue",
                application="Wait",
                data="30",
                caller_id=f'"ccbridge test" <{CALLER}>',
                channel_id=call_id,
            )
        )
        rec = await s.agent_is(AGENT_A)
        assert call_params(rec) == four(AGENT_A)
        yield s
    finally:
        _, items = await real_ami.send_list_action(act.core_show_channels())
        for m in items:
            if m.event == "CoreShowChannel" and m.get("Linkedid") == call_id:
                with contextlib.suppress(Exception):
                    await real_ami.send_action(act.hangup(m.get("Channel") or ""))
        await control.remove_member(QUEUE, MEMBER_A)
        await control.remove_member(QUEUE, MEMBER_C)


QUEUE_SPEC_A = QueueMemberSpec(QUEUE, MEMBER_A, f"{AGENT_A} 坐席A", 0, False, "")
QUEUE_SPEC_C = QueueMemberSpec(QUEUE, MEMBER_C, f"{AGENT_C} 坐席C", 0, True, "小休")


async def test_hold_and_resume_on_real_channels(scene: Scene) -> None:
    customer, agent = scene.legs()
    # The queue already played hold music to the customer while it waited: count only new ones.
    before = len(scene.seen("MusicOnHoldStart", Channel=customer))
    await scene.pbx.hold(customer, agent)
    await scene.until(
        lambda: len(scene.seen("MusicOnHoldStart", Channel=customer)) > before, "music on hold"
    )
    await scene.pbx.resume(customer, agent)

    def together() -> bool:
        mine = scene.seen("BridgeEnter", Channel=customer)
        theirs = scene.seen("BridgeEnter", Channel=agent)
        return bool(
            mine and theirs and mine[-1].get("BridgeUniqueid") == theirs[-1].get("BridgeUniqueid")
        )

    await scene.until(together, "customer and agent bridged again")
    rec = scene.record()
    assert rec.state is CallState.CONNECTED
    assert call_params(rec) == four(AGENT_A)


async def test_blind_transfer_to_an_agent(scene: Scene) -> None:
    _, agent = scene.legs()
    # Like [ccbridge-agents] in production, [ccbridge-test-phones] dials the agent's "phone".
    phones = AmiCallControl(scene.ami, "ccbridge-test-phones")
    await phones.blind_transfer(agent, Dial("agent", "2002"))
    rec = await scene.agent_is("2002")
    assert [(s.agent_no, s.via) for s in rec.segments] == [
        (AGENT_A, "queue"),
        ("2002", "blind_transfer"),
    ]
    assert call_params(rec) == four("2002")


async def test_blind_transfer_to_a_group_requeues(scene: Scene) -> None:
    _, agent = scene.legs()
    await AmiQueueControl(scene.ami).set_paused(QUEUE, MEMBER_A, True, "consult")
    await AmiQueueControl(scene.ami).set_paused(QUEUE, MEMBER_C, False, "")
    await scene.pbx.blind_transfer(agent, Dial("queue", QUEUE))
    rec = await scene.agent_is(AGENT_C)
    assert call_params(rec) == four(AGENT_C)
    assert rec.transfers[0].target == QUEUE


async def test_attended_transfer_started_and_completed(scene: Scene) -> None:
    _, agent = scene.legs()
    await scene.pbx.attended_transfer(agent, Dial("agent", "2002"))
    await scene.until(
        lambda: any(
            c.startswith(f"Local/2002@{AGENTS}-") for c in scene.calls.live_channels(scene.call_id)
        ),
        "the consultation to ring 2002",
    )
    await asyncio.sleep(0.5)
    await scene.pbx.hangup(agent)
    rec = await scene.agent_is("2002")
    assert rec.transfers[-1].kind == "attended"
    assert call_params(rec) == four("2002")


async def test_three_way_call_in_confbridge(scene: Scene) -> None:
    customer, agent = scene.legs()
    room = conference_room(scene.call_id)
    await scene.pbx.conference(customer, agent, room, Dial("agent", "2002"), caller_id="+8620888")
    joined = await scene.until(
        lambda: len(scene.seen("ConfbridgeJoin", Conference=room)) >= 3, "three in the room"
    )
    assert joined
    names = [m.get("Channel") for m in scene.seen("ConfbridgeJoin", Conference=room)]
    assert customer in names
    assert agent in names


async def test_hand_back_to_ivr_at_a_node_then_back_to_the_agent(scene: Scene) -> None:
    log = IvrLog()
    runner = IvrRunner(
        StaticFlows({"t1": load_example("return_visit_survey.yaml")}),
        log,
        lambda: datetime.now(UTC),
    )
    router = AgiRouter()
    router.add_route(RETURN_SCRIPT, IvrReturnHandler(runner))
    port = int(os.environ.get("CCBRIDGE_TEST_IVR_AGI_PORT", "4591"))
    agi = FastAgiServer(AgiServerConfig(host="127.0.0.1", port=port), router)
    await agi.start()
    try:
        customer, _agent = scene.legs()
        await scene.pbx.return_to_ivr(
            customer, {"CCB_IVR_NODE": "thanks", "CCB_RETURN_TO": f"Local/2002@{AGENTS}"}
        )
        (entry,) = await scene.until(lambda: log.records, "the flow to run from the node")
        assert entry.path[0] == "thanks"
        assert entry.tenant_id == "t1"
        await scene.until(
            lambda: any(
                c.startswith(f"Local/2002@{AGENTS}-")
                for c in scene.calls.live_channels(scene.call_id)
            ),
            "the caller back with an agent",
        )
        assert call_params(scene.record()) == four(AGENT_A)
    finally:
        await agi.stop()


async def test_click_to_call_rings_the_agent_then_the_customer(real_ami: AmiClient) -> None:
    missing = await _missing_contexts(
        real_ami, ("ccbridge-test-outbound", "ccbridge-test-customer")
    )
    if missing:
        pytest.skip(f"the test PBX lacks the dialplan contexts {missing}")
    calls = CallTrackingService(Sink())
    PbxCoordinator(real_ami, calls=AmiCallFeed(calls, lambda: datetime.now(UTC))).attach()
    pbx = AmiCallControl(real_ami, AGENTS, outbound_context="ccbridge-test-outbound")
    call_id = new_call_id()
    now = datetime.now(UTC)
    calls.start_call(
        CallRecord(
            call_id=call_id,
            started_at=now,
            state=CallState.AGENT_RINGING,
            tenant="t1",
            caller="+862088880000",
            callee="+8613900139000",
            skill_group="t1-sales",
            agent_no=AGENT_A,
            agent_interface=MEMBER_A,
            direction="outbound",
        )
    )
    try:
        await pbx.originate(
            OriginateCall(
                endpoint=MEMBER_A,
                to=Dial("outbound", "13900139000"),
                caller_id="<+862088880000>",
                call_id=call_id,
                variables={"CCB_TENANT": "t1", "CCB_AGENT": AGENT_A},
            )
        )
        deadline = time.monotonic() + 15
        rec = calls.get(call_id)
        while time.monotonic() < deadline and (rec is None or rec.state is not CallState.CONNECTED):
            await asyncio.sleep(0.05)
            rec = calls.get(call_id)
        assert rec is not None
        assert rec.state is CallState.CONNECTED
        assert [(s.agent_no, s.via) for s in rec.segments] == [(AGENT_A, "outbound")]
        assert call_params(rec)["callee"] == "+8613900139000"
        live = calls.live_channels(call_id)
        assert any(c.startswith("Local/13900139000@ccbridge-test-customer-") for c in live)
    finally:
        for name in calls.live_channels(call_id):
            with contextlib.suppress(Exception):
                await real_ami.send_action(act.hangup(name))
