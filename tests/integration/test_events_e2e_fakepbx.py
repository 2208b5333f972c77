"""Issue 7 end to end on the fake PBX: IVR → queue → agent A → attended transfer to agent B
→ hang-up. The poll, SSE and webhook consumers see the same ordered events and the four
variables are right at every step (expected values documented per step below)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from ccbridge.api.schemas.events import DATA_MODELS
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.domain.journal.types import EventType
from ccbridge.domain.time import SystemClock
from ccbridge.services.calls import CallTrackingService
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.transfer_scenarios import ivr_queue_attended_transfer
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.event_rig import (
    Receiver,
    allow_loopback,
    build_world,
    eventually,
    poll_all,
    serve,
)

CALLER, DID = "13800138000", "4008001234"
CALLER_E164, DID_E164 = "+8613800138000", "+864008001234"
QUEUE, AGENT_A, AGENT_B = "t1-sales", "1101", "1102"


def four(agent: str | None, group: str | None) -> dict[str, Any]:
    """The four variables as the API shows them (E.164 plus the original text)."""
    return {
        "agent_no": agent,
        "skill_group": group,
        "caller": CALLER_E164,
        "callee": DID_E164,
        "caller_original": CALLER,
        "callee_original": DID,
    }


# Expected GET /calls/{id}/params after each scenario step: (state, params now, legs).
EXPECTED_PARAMS: dict[str, tuple[str, dict[str, Any], list[tuple[str, str, bool]]]] = {
    # caller in the IVR: no skill group, no agent yet
    "ivr": ("ivr", four(None, None), []),
    # IVR hands over to the queue: 技能组 frozen to the queue
    "queued": ("queued", four(None, QUEUE), []),
    # agent A rung (screen-pop): nobody has answered, so 工号 is still empty
    "ringing_a": ("agent_ringing", four(None, QUEUE), []),
    # A answered: leg 1 = A from the queue
    "answered_a": ("connected", four(AGENT_A, QUEUE), [(AGENT_A, "queue", False)]),
    # A consults B on its own call (another Linkedid): the customer's call is unchanged
    "consulting_b": ("connected", four(AGENT_A, QUEUE), [(AGENT_A, "queue", False)]),
    # attended transfer done: leg 1 (A) closed, leg 2 = B; caller, callee, group unchanged
    "transferred_b": (
        "connected",
        four(AGENT_B, QUEUE),
        [(AGENT_A, "queue", True), (AGENT_B, "attended_transfer", False)],
    ),
    # caller hangs up: both legs closed; params stay those of the last agent
    "ended": (
        "ended",
        four(AGENT_B, QUEUE),
        [(AGENT_A, "queue", True), (AGENT_B, "attended_transfer", True)],
    ),
}

# Expected journal of the customer's call, in order, with the four variables each carries.
EXPECTED_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("call.queued", four(None, QUEUE)),
    ("call.ringing", four(AGENT_A, QUEUE)),  # the agent being rung, for the screen-pop
    ("call.answered", four(AGENT_A, QUEUE)),
    ("call.transferred", four(AGENT_B, QUEUE)),  # the new leg's variables
    ("call.ended", four(AGENT_B, QUEUE)),
]


async def _params(http: httpx.AsyncClient, who: dict[str, str], call_id: str) -> Any:
    resp = await http.get(f"/api/v1/calls/{call_id}/params", headers=who)
    return resp.json() if resp.status_code == 200 else None


async def _wait_params(
    http: httpx.AsyncClient, who: dict[str, str], call_id: str, step: str
) -> dict[str, Any]:
    state, params, legs = EXPECTED_PARAMS[step]
    want_legs = [(a, via, ended) for a, via, ended in legs]
    deadline = time.monotonic() + 5
    got: Any = None
    while time.monotonic() < deadline:
        got = await _params(http, who, call_id)
        if got is not None:
            seen = [
                (leg["params"]["agent_no"], leg["via"], leg["ended_at"] is not None)
                for leg in got["legs"]
            ]
            if got["state"] == state and got["params"] == params and seen == want_legs:
                return dict(got)
        await asyncio.sleep(0.02)
    raise AssertionError(f"step {step}: expected {state} {params} {want_legs}, got {got}")


async def _sse(url: str, who: dict[str, str], out: list[dict[str, Any]], stop: int) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=None) as http,
        http.stream("GET", "/api/v1/events/stream", headers=who) as resp,
    ):
        assert resp.status_code == 200
        data: str | None = None
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                data = line[6:]
            elif line == "" and data is not None:
                out.append(json.loads(data))
                data = None
                if len(out) >= stop:
                    return


async def test_ivr_queue_attended_transfer_seen_alike_by_poll_sse_and_webhook(
    engine: AsyncEngine,
) -> None:
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    admin, crm = world.keys["t1:tenant_admin"], world.keys["t1:crm"]
    receiver = Receiver()
    writer = CallBatchWriter(world.calls, flush_interval=0.02)
    tracking = CallTrackingService(writer)
    sse_seen: list[dict[str, Any]] = []
    async with (
        serve(receiver) as hook_url,
        serve(world.app) as api_url,
        httpx.AsyncClient(base_url=api_url) as http,
    ):
        resp = await http.post("/api/v1/webhooks", json={"url": f"{hook_url}/crm"}, headers=admin)
        assert resp.status_code == 201, resp.text
        secret = resp.json()["secret"]
        dispatcher = world.dispatcher(idle_wait=0.2, refresh=0.2)
        tasks = [
            asyncio.create_task(dispatcher.run()),
            asyncio.create_task(writer.run()),
            asyncio.create_task(_sse(api_url, crm, sse_seen, len(EXPECTED_EVENTS))),
        ]
        try:
            async with FakeAsterisk(seed=7, agi_url=None) as pbx:
                client = fake_pbx_client(pbx.ami_port)
                PbxCoordinator(client, calls=AmiCallFeed(tracking, SystemClock().now)).attach()
                async with running(client):
                    steps: asyncio.Queue[str] = asyncio.Queue()
                    gate = asyncio.Event()
                    scenario = asyncio.create_task(
                        ivr_queue_attended_transfer(
                            pbx.ami,
                            tenant="t1",
                            did=DID,
                            caller=CALLER,
                            queue=QUEUE,
                            agent_a=AGENT_A,
                            agent_b=AGENT_B,
                            on_step=steps,
                            gate=gate,
                        )
                    )
                    call_id = ""
                    for expected_step in EXPECTED_PARAMS:
                        step = await asyncio.wait_for(steps.get(), 5)
                        assert step == expected_step
                        if not call_id:
                            call_id = pbx.ami.model.channels[
                                next(iter(pbx.ami.model.channels))
                            ].linkedid
                        await _wait_params(http, crm, call_id, step)
                        gate.set()
                    call = await asyncio.wait_for(scenario, 5)
            assert call.linkedid == call_id
            # The consultation call (A's own Linkedid) is no call of the tenant's.
            assert await _params(http, crm, call.consult_linkedid) is None
            final = await _params(http, crm, call_id)
            assert final["transfers"][0]["kind"] == "attended"
            assert final["transfers"][0]["from_agent_no"] == AGENT_A
            assert final["transfers"][0]["target"] == AGENT_B
            assert final["extras"] == {}  # IVR choice recorded, but extras are off

            # Poll consumer.
            polled = await poll_all(http, crm)
            # SSE consumer.
            await eventually(lambda: len(sse_seen) >= len(EXPECTED_EVENTS))
            # Webhook consumer.
            await eventually(lambda: len(receiver.received) >= len(EXPECTED_EVENTS))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await writer.stop()

    hooked = [r.envelope for r in receiver.received]
    assert [(e["type"], e["data"]["params"]) for e in polled] == EXPECTED_EVENTS
    for env in polled:  # every payload matches its published schema
        DATA_MODELS[EventType(env["type"])].model_validate(env["data"])
    assert [e["id"] for e in polled] == [e["id"] for e in sse_seen] == [e["id"] for e in hooked]
    assert polled == sse_seen == hooked  # the same envelopes, byte for byte in JSON terms
    assert [int(e["cursor"]) for e in polled] == sorted(int(e["cursor"]) for e in polled)
    assert all(e["call_id"] == call_id for e in polled)
    transferred = polled[3]["data"]["transfer"]
    assert transferred == {
        "kind": "attended",
        "from_agent_no": AGENT_A,
        "target": AGENT_B,
        "from_group": QUEUE,
        # Set only for transfers started through ccbridge's call-control API.
        "to_agent_no": None,
        "to_group": None,
        "to_number": None,
    }
    legs = polled[4]["data"]["legs"]
    assert [(leg["agent_no"], leg["via"]) for leg in legs] == [
        (AGENT_A, "queue"),
        (AGENT_B, "attended_transfer"),
    ]
    # Every webhook verifies with the Standard Webhooks reference library.
    hook = Webhook(secret)
    for r in receiver.received:
        assert hook.verify(r.body, r.headers) == json.loads(r.body)
    # t2 sees nothing of t1's call.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app), base_url="http://t"
    ) as http:
        assert await poll_all(http, world.keys["t2:crm"]) == []
        resp = await http.get(f"/api/v1/calls/{call_id}/params", headers=world.keys["t2:crm"])
        assert resp.status_code == 404
