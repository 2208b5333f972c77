"""Real-PBX FastAGI failover: the shipped ``[ccbridge-fastagi]`` asks ccbridge's nodes in
order (``CCB_FASTAGI_HOSTS``), so a dead node or one that dies mid-script costs the caller at
most the IVR step it was in, never the call (docs/ha.md, issue 20).

Real calls through the shipped ``[ccbridge-inbound]`` (entered from the tier's
``[fastagi-test-inbound]``, which takes the node list from ``CCB_TEST_FASTAGI_HOSTS`` and sets
``CCB_FASTAGI_FALLBACK=fastagi-test-fallback,s,1``):

- the first node's port is closed: the second node (a real ccbridge FastAGI server with an IVR
  flow, on ``CCBRIDGE_TEST_IVR_AGI_PORT``) runs the flow and the call joins its queue;
- the first node takes the call, starts its script and dies (its socket closes mid-script, as
  when the process is killed): Asterisk reports ``AGISTATUS=SUCCESS`` for that, so only the
  missing ``CCB_AGI_DONE`` mark tells the dialplan, which runs the flow on the second node;
- no node completes the call (one refused, one died mid-script): the call continues to the
  fallback instead of being dropped.

and one through the shipped ``[ccbridge-ivr-return]`` (a hand-back to the IVR) that no node
completes: the caller goes back to the group it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from ccbridge.asterisk.agi.server import (
    DONE_VARIABLE,
    AgiRouter,
    AgiServerConfig,
    FastAgiServer,
)
from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.ivr_format.parse import parse_flow
from ccbridge.testing.ha_cluster import free_port
from tests.asterisk.test_real_ivr import FLOW
from tests.fakes.ivr import ListSink, StaticFlows
from tests.support.agi_client import DyingAgiNode

AGI_PORT = int(os.environ.get("CCBRIDGE_TEST_IVR_AGI_PORT", "4591"))
CONTEXT = "fastagi-test-inbound"


@contextlib.asynccontextmanager
async def live_node(did: str, sink: ListSink) -> AsyncIterator[FastAgiServer]:
    """ccbridge's FastAGI as a node serves it: the tenant's IVR flow for *did*, and the
    ``CCB_AGI_DONE`` mark at the end of every script it finishes."""
    parsed = parse_flow(FLOW)
    assert parsed.flow is not None
    runner = IvrRunner(StaticFlows({"ccbridge": parsed.flow}), sink, lambda: datetime.now(UTC))
    router = AgiRouter()
    router.add_route(
        SCRIPT, InboundRouteHandler({did: InboundRoute("ccbridge", "ccbridge-none")}, None, runner)
    )
    server = FastAgiServer(AgiServerConfig(port=AGI_PORT, done_variable=DONE_VARIABLE), router)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _did() -> str:
    return f"40081{secrets.randbelow(10**5):05d}"


def _nodes(ports: list[int]) -> str:
    """``CCB_FASTAGI_HOSTS`` for loopback *ports*, in order."""
    return "&".join(f"127.0.0.1:{port}" for port in ports)


async def _joined(ami: AmiClient, channel: str, variables: dict[str, str]) -> AmiMessage:
    """Originate *channel* (``Local/<exten>@<context>``) with *variables*, its caller side in
    ``[ivr-test-caller]`` (it presses 2 after 1.5 s: the flow's queue option); the
    ``QueueCallerJoin`` of the queue the call ended in. The waiting caller is then hung up,
    so the shared queue ``ccbridge-test`` is left empty."""
    joined: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()

    def on_join(message: AmiMessage) -> None:
        if (message.get("Channel") or "").startswith(channel) and not joined.done():
            joined.set_result(message)

    unsubscribe = ami.subscribe("QueueCallerJoin", on_join)
    try:
        await ami.send_action(
            act.originate(
                channel,
                context="ivr-test-caller",
                exten="s",
                caller_id='"failover test" <13800138000>',
                channel_id=f"ccb-fo-{uuid.uuid4().hex[:12]}",
                variables={"CCB_TEST_DTMF": "2", **variables},
            )
        )
        async with asyncio.timeout(20):
            return await joined
    finally:
        unsubscribe()
        if joined.done():
            await ami.send_action(act.hangup(joined.result().get("Channel") or ""))


async def _call(ami: AmiClient, did: str, nodes: list[int]) -> AmiMessage:
    """A real inbound call to *did* whose dialplan tries *nodes* in order."""
    hosts = {"CCB_TEST_FASTAGI_HOSTS": _nodes(nodes)}
    return await _joined(ami, f"Local/{did}@{CONTEXT}", hosts)


async def _flow_on_the_live_node(ami: AmiClient, first: int) -> tuple[AmiMessage, ListSink]:
    """A call whose first node is *first* and whose second is the live ccbridge node."""
    sink = ListSink()
    did = _did()
    async with live_node(did, sink):
        event = await _call(ami, did, [first, AGI_PORT])
        async with asyncio.timeout(10):
            while not sink.records:  # noqa: ASYNC110 - the IVR record is written at its end
                await asyncio.sleep(0.05)
    return event, sink


def _assert_the_flow_routed(event: AmiMessage, sink: ListSink) -> None:
    (record,) = sink.records
    assert record.path == ["menu", "to_queue"]
    assert (record.route, record.target, record.reason) == ("queue", "test", "flow")
    assert event.get("Queue") == "ccbridge-test"
    assert event.variables().get("CCB_TENANT") == "ccbridge"


async def test_a_dead_first_node_is_skipped_and_the_second_answers(real_ami: AmiClient) -> None:
    event, sink = await _flow_on_the_live_node(real_ami, free_port())
    _assert_the_flow_routed(event, sink)


async def test_a_node_dying_mid_script_hands_the_call_to_the_next(real_ami: AmiClient) -> None:
    async with DyingAgiNode().running() as dying:
        event, sink = await _flow_on_the_live_node(real_ami, dying.port)
    assert dying.calls == 1  # it took the call and died in it: not a refused connection
    _assert_the_flow_routed(event, sink)


async def test_no_node_completing_the_script_leads_to_the_fallback(real_ami: AmiClient) -> None:
    async with DyingAgiNode().running() as dying:
        event = await _call(real_ami, _did(), [free_port(), dying.port])
    assert dying.calls == 1
    # [fastagi-test-fallback] queued the caller: no node named a tenant.
    assert event.get("Queue") == "ccbridge-test"
    assert event.variables().get("CCB_TENANT", "") == ""


async def test_a_hand_back_no_node_completes_returns_to_its_group(real_ami: AmiClient) -> None:
    # The shipped [ccbridge-ivr-return] asks the same node list; with none completing the
    # hand-back, the caller goes back to the group it came from instead of being dropped.
    async with DyingAgiNode().running() as dying:
        variables = {
            "CCB_FASTAGI_HOSTS": _nodes([free_port(), dying.port]),
            "CCB_QUEUE": "ccbridge-test",
            "CCB_IVR_NODE": "menu",
        }
        event = await _joined(real_ami, "Local/s@ccbridge-ivr-return", variables)
    assert dying.calls == 1
    assert event.get("Queue") == "ccbridge-test"
