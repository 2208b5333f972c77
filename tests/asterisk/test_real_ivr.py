"""Real-PBX IVR: a flow plays on a real Asterisk channel, the caller side presses a key with
SendDTMF, and the call ends in the queue the flow chose; the path equals the simulator's.

Needs, besides the CCBRIDGE_TEST_AMI_* variables, this dialplan on the PBX
(asterisk/test-tier/extensions-ccbridge-test.conf): ``[ivr-test-inbound]`` runs
``AGI(agi://127.0.0.1:4591/inbound)`` then ``Queue(${CCB_QUEUE})``; ``[ivr-test-caller]``
waits 1.5 s, runs ``SendDTMF(${CCB_TEST_DTMF})`` and stays on the line. The queue is the
tier's ``ccbridge-test`` (tenant ``ccbridge``, skill group ``test``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.domain.ivr.simulator import simulate
from ccbridge.ivr_format.parse import parse_flow
from tests.fakes.ivr import ListSink, StaticFlows

AGI_PORT = int(os.environ.get("CCBRIDGE_TEST_IVR_AGI_PORT", "4591"))
DID = "4008009999"
FLOW = {
    "name": "real PBX menu",
    "start": "menu",
    "nodes": {
        "menu": {
            "type": "menu",
            "prompt": "sys:beep",
            "options": {"1": {"next": "other"}, "2": {"next": "to_queue", "label": "test"}},
            "timeout_ms": 6000,
            "retries": 1,
            "on_fail": "bye",
        },
        "to_queue": {"type": "queue", "skill_group": "test"},
        "other": {"type": "hangup"},
        "bye": {"type": "hangup"},
    },
}


async def test_flow_on_a_real_channel_ends_in_the_queue(real_ami: AmiClient) -> None:
    parsed = parse_flow(FLOW)
    assert parsed.errors == []
    assert parsed.flow is not None
    sink = ListSink()
    runner = IvrRunner(StaticFlows({"ccbridge": parsed.flow}), sink, lambda: datetime.now(UTC))
    router = AgiRouter()
    router.add_route(
        SCRIPT, InboundRouteHandler({DID: InboundRoute("ccbridge", "ccbridge-none")}, None, runner)
    )
    server = FastAgiServer(AgiServerConfig(port=AGI_PORT), router)
    joined: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()

    def on_join(message: AmiMessage) -> None:
        if message.get("Queue") == "ccbridge-test" and not joined.done():
            joined.set_result(message)

    unsubscribe = real_ami.subscribe("QueueCallerJoin", on_join)
    await server.start()
    try:
        await real_ami.send_action(
            act.originate(
                f"Local/{DID}@ivr-test-inbound",
                context="ivr-test-caller",
                exten="s",
                caller_id='"ivr test" <13800138000>',
                channel_id=f"ccb-ivr-{uuid.uuid4().hex[:12]}",
                variables={"CCB_TEST_DTMF": "2"},
            )
        )
        async with asyncio.timeout(20):
            event = await joined
        async with asyncio.timeout(10):
            while not sink.records:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        unsubscribe()
        await server.stop()
        waiting = joined.result().get("Channel") if joined.done() else None
        if waiting:
            # Leave the shared queue empty: a caller left waiting in ``ccbridge-test`` would be
            # handed to the next test's agent and starve that test's own call.
            await real_ami.send_action(act.hangup(waiting))
    (record,) = sink.records
    assert record.path == ["menu", "to_queue"]
    assert (record.route, record.target, record.reason) == ("queue", "test", "flow")
    assert record.steps[0] == {
        "node": "menu",
        "type": "menu",
        "input": "2",
        "outcome": "option:test",
    }
    sim = simulate(parsed.flow, CallContext(now=datetime.now(UTC), caller="13800138000"), ["2"])
    assert sim.path == record.path
    assert event.get("Queue") == "ccbridge-test"
