"""CallSimulator: the event sequence of simulated calls against the real captures."""

from __future__ import annotations

import asyncio

from ccbridge.asterisk.agi.server import (
    DONE_VARIABLE,
    AgiRouter,
    AgiServerConfig,
    FastAgiServer,
)
from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.ha_cluster import free_port
from ccbridge.testing.pbx_model import MemberSpec, QueueSpec
from tests.support.agi_client import DyingAgiNode
from tests.unit.testing.conftest import AmiTestClient, capture_frames

CALL_EVENTS = {
    "Newchannel",
    "Newstate",
    "QueueCallerJoin",
    "AgentCalled",
    "DialBegin",
    "DialEnd",
    "QueueCallerLeave",
    "AgentConnect",
    "BridgeCreate",
    "BridgeEnter",
    "AgentComplete",
    "BridgeLeave",
    "Hangup",
    "BridgeDestroy",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "HangupRequest",
    "QueueCallerAbandon",
}


def names(frames: list[AmiMessage]) -> list[str]:
    return [f.event for f in frames if f.event in CALL_EVENTS]


def captured_sip_call() -> list[AmiMessage]:
    """The real PJSIP caller answered by Local/2001@agents (frames 288-456)."""
    frames = capture_frames("queue-call-and-sip/ami-from-asterisk.txt")
    return [
        f
        for f in frames[287:457]
        if "Linkedid" in f.headers or (f.event and f.event.startswith("Bridge"))
    ]


def _stamp(frame: AmiMessage) -> float:
    """The PBX clock when the frame was sent (its ``Timestamp``)."""
    return float(frame.get("Timestamp") or "nan")


async def test_answered_call_matches_captured_sequence(
    pbx: FakeAsterisk, client: AmiTestClient
) -> None:
    handle = await pbx.simulator.place_call(
        caller="13800138000",
        caller_name="张三",
        did="4008001234",
        talk_seconds=20,
        agent_hangs_up=False,
    )
    outcome = await handle
    got = await client.until(lambda m: m.event == "Hangup" and m.get("Uniqueid") == handle.linkedid)
    want = captured_sip_call()
    assert names(got) == names(want)
    for g, w in zip(
        [f for f in got if f.event in CALL_EVENTS],
        [f for f in want if f.event in CALL_EVENTS],
        strict=True,
    ):
        # The capture's PBX had no channelvars; ccbridge's adds ChanVariable after Linkedid.
        assert [k for k, _ in g.fields if not k.endswith("ChanVariable")] == [
            k for k, _ in w.fields
        ], g.event
    legs = [f for f in got if f.get("Linkedid")]
    assert {f.get("Linkedid") for f in legs} == {handle.linkedid}
    first = got[0]
    assert first.event == "Newchannel"
    assert (first.get("Channel") or "").startswith("PJSIP/trunk-")
    assert first.get("Exten") == "4008001234"
    assert first.get("Context") == "from-trunk"
    hangup = next(f for f in got if f.event == "Hangup" and f.get("Uniqueid") == handle.linkedid)
    assert hangup.get_all("ChanVariable") == [
        "CCB_TENANT=t1",
        "CCB_DID=4008001234",
        "CCB_QUEUE=",
        "CCB_STICKY_AGENT=",
        "CCB_STICKY_INTERFACE=",
        "CCB_STICKY_QUEUE=",
        "CCB_STICKY_FILE=",
        "MIXMONITOR_FILENAME=",
    ]
    keys = [k for k, _ in hangup.fields]
    at = keys.index("Linkedid")
    assert keys[at + 1 : at + 9] == ["ChanVariable"] * 8  # right after the channel block
    varsets = {f.get("Variable"): f.get("Value") for f in got if f.event == "VarSet"}
    assert varsets == {"CCB_DID": "4008001234", "CCB_TENANT": "t1"}
    called = next(f for f in got if f.event == "AgentCalled")
    assert (called.get("DestChannel") or "").startswith("Local/2001@agents-")
    assert called.get("MemberName") == "1001 张伟"
    complete = next(f for f in got if f.event == "AgentComplete")
    assert complete.get("Reason") == "caller"
    # The PBX clock runs 1000x the wall clock, so a busy machine stretches the call: bound the
    # TalkTime by the PBX's own timestamps of the call (what it measured), not by a guess.
    connect = next(f for f in got if f.event == "AgentConnect")
    measured = _stamp(complete) - _stamp(connect)
    assert 20 <= int(complete.get("TalkTime") or 0) <= int(measured) + 1
    statuses = [(f.get("Status"), f.get("InCall")) for f in got if f.event == "QueueMemberStatus"]
    assert statuses[0][0] == "2"
    assert statuses[-1] == ("1", "0")
    assert outcome.answered
    assert outcome.member == "Local/2001@agents"
    member = pbx.model.queues["t1-sales"].members["Local/2001@agents"]
    assert member.calls_taken == 1


async def test_abandon(pbx: FakeAsterisk, client: AmiTestClient) -> None:
    for m in pbx.model.queues["t1-sales"].members.values():
        m.paused = True
    handle = await pbx.simulator.place_call(did="4008001234", abandon_after=18)
    outcome = await handle
    got = await client.until(lambda m: m.event == "Hangup")
    assert names(got)[-5:] == [
        "HangupRequest",
        "MusicOnHoldStop",
        "QueueCallerAbandon",
        "QueueCallerLeave",
        "Hangup",
    ]
    abandon = next(f for f in got if f.event == "QueueCallerAbandon")
    ref = next(
        f
        for f in capture_frames("queue-call-and-sip/ami-from-asterisk.txt")
        if f.event == "QueueCallerAbandon"
    )
    assert [k for k, _ in abandon.fields if k != "ChanVariable"] == [
        k for k, _ in ref.fields if k != "ChanVariable"
    ]
    join = next(f for f in got if f.event == "QueueCallerJoin")
    assert 18 <= int(abandon.get("HoldTime") or 0) <= int(_stamp(abandon) - _stamp(join)) + 1
    assert outcome.abandoned
    assert pbx.model.queues["t1-sales"].abandoned == 1


async def test_agent_hangup_and_no_answer_member() -> None:
    queues = [
        QueueSpec(
            "q",
            "rrmemory",
            [MemberSpec("Local/2901@agents", "9 never"), MemberSpec("Local/2002@agents", "2 ok")],
        )
    ]
    fake = FakeAsterisk(
        agi_url=None, queues=queues, dids={}, time_scale=0.001, seed=3, auth_fail_delay=0.0
    )
    await fake.start()
    try:
        c = await AmiTestClient.connect(fake.ami_port)
        await c.login()
        handle = await fake.simulator.place_call(queue="q", talk_seconds=5, agent_hangs_up=True)
        outcome = await handle
        got = await c.until(lambda m: m.event == "Hangup" and m.get("Uniqueid") == handle.linkedid)
        noanswer = next(f for f in got if f.event == "AgentRingNoAnswer")
        assert noanswer.get("RingTime") == "15000"
        complete = next(f for f in got if f.event == "AgentComplete")
        assert complete.get("Reason") == "agent"
        assert outcome.member == "Local/2002@agents"
        await c.close()
    finally:
        await fake.stop()


async def test_ivr_sets_queue_over_fastagi() -> None:
    seen: dict[str, str] = {}

    async def ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := (await reader.readline()).decode().strip():
            k, _, v = line.partition(": ")
            seen[k] = v
        for cmd in ("ANSWER", "GET DATA menu 3000 1", 'SET VARIABLE CCB_QUEUE "t1-support"'):
            writer.write(cmd.encode() + b"\n")
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(ivr, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = FakeAsterisk(
        agi_url=f"agi://127.0.0.1:{port}", time_scale=0.001, seed=5, auth_fail_delay=0.0
    )
    await fake.start()
    try:
        c = await AmiTestClient.connect(fake.ami_port)
        await c.login()
        outcome = await (
            await fake.simulator.place_call(did="4008001234", dtmf="2", talk_seconds=3)
        )
        assert outcome.queue == "t1-support"
        assert outcome.agi is not None
        assert outcome.agi.variables_set == {"CCB_QUEUE": "t1-support"}
        assert seen["agi_request"] == f"agi://127.0.0.1:{port}/ivr"
        assert seen["agi_dnid"] == "4008001234"
        assert seen["agi_extension"] == "4008001234"
        assert seen["agi_type"] == "PJSIP"
        got = await c.until(lambda m: m.event == "AgentCalled")
        assert got[-1].get("Queue") == "t1-support"
        assert any(f.event == "VarSet" and f.get("Variable") == "CCB_QUEUE" for f in got)
        await c.close()
    finally:
        await fake.stop()
        server.close()
        await server.wait_closed()


async def test_the_ivr_fails_over_to_the_next_fastagi_node() -> None:
    # As the shipped [ccbridge-fastagi]: a refused node and one that dies mid-script are
    # skipped; the node that finishes the script (CCB_AGI_DONE) routes the call.
    async def ivr(session: AgiSession) -> None:
        await session.answer()
        await session.set_variable("CCB_QUEUE", "t1-support")

    router = AgiRouter()
    router.add_route("ivr", ivr)
    live = FastAgiServer(AgiServerConfig(port=0, done_variable=DONE_VARIABLE), router)
    await live.start()
    async with DyingAgiNode().running() as dying:
        nodes = [free_port(), dying.port, live.port]
        fake = FakeAsterisk(
            agi_url="&".join(f"agi://127.0.0.1:{port}" for port in nodes),
            time_scale=0.001,
            seed=5,
            auth_fail_delay=0.0,
        )
        await fake.start()
        try:
            outcome = await (
                await fake.simulator.place_call(did="4008001234", dtmf="2", talk_seconds=3)
            )
        finally:
            await fake.stop()
            await live.stop()
    assert dying.calls == 1
    assert outcome.queue == "t1-support"
    assert outcome.agi is not None
    assert outcome.agi.variables_set == {"CCB_QUEUE": "t1-support", DONE_VARIABLE: "ivr"}


async def test_external_hangup_of_caller_during_talk(
    pbx: FakeAsterisk, client: AmiTestClient
) -> None:
    handle = await pbx.simulator.place_call(did="4008005678", talk_seconds=100_000)
    await client.until(lambda m: m.event == "AgentConnect")
    await client.send(Action="Hangup", ActionID="h", Channel=handle.channel)
    outcome = await asyncio.wait_for(handle.task, 2)
    assert outcome.answered
    assert outcome.reason == "caller"
    got = await client.until(lambda m: m.event == "AgentComplete")
    assert got[-1].get("Queue") == "t2-service"
    assert not pbx.model.channels


async def test_traffic_generator_runs_calls() -> None:
    cfg = SimulatorConfig(talk_seconds=(5, 10), abandon_probability=0.3, dialplan_noise=True)
    fake = FakeAsterisk(agi_url=None, time_scale=0.0005, seed=11, config=cfg, auth_fail_delay=0.0)
    await fake.start()
    try:
        c = await AmiTestClient.connect(fake.ami_port)
        await c.login()
        fake.simulator.start_traffic(rate_per_min=60)
        async with asyncio.timeout(30):  # a hang guard: three calls done, however busy
            while len(fake.simulator.outcomes) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await fake.simulator.stop_traffic()
        got = await c.drain_for(0.2)
        assert len(fake.simulator.outcomes) >= 3
        assert any(f.event == "Newexten" for f in got)
        assert any(f.event == "AgentComplete" for f in got)
        await c.close()
    finally:
        await fake.stop()


async def test_a_local_member_is_rung_in_its_own_context() -> None:
    """Call control finds an agent by its leg's interface: ``Local/soft1@ccbridge-agents``
    must ring as ``Local/soft1@ccbridge-agents-…;1``, not in a fixed ``agents`` context."""
    queues = [QueueSpec("q", "rrmemory", [MemberSpec("Local/soft1@ccbridge-agents", "1 ok")])]
    fake = FakeAsterisk(
        agi_url=None, queues=queues, dids={}, time_scale=0.001, seed=3, auth_fail_delay=0.0
    )
    await fake.start()
    try:
        c = await AmiTestClient.connect(fake.ami_port)
        await c.login()
        handle = await fake.simulator.place_call(queue="q", talk_seconds=5)
        await handle
        got = await c.until(lambda m: m.event == "Hangup" and m.get("Uniqueid") == handle.linkedid)
        connect = next(f for f in got if f.event == "AgentConnect")
        assert connect.get("DestChannel", "").startswith("Local/soft1@ccbridge-agents-")
        assert connect.get("DestChannel", "").endswith(";1")
        await c.close()
    finally:
        await fake.stop()
