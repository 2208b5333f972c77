"""Issue 15: a call-back request worked end to end on the fake PBX. An agent dials it over
HTTP (click-to-call under the dial policy: the agent's phone, then the caller); a replayed
``Idempotency-Key`` never dials twice; when the call ends the settle job marks the request
connected; a supervisor cancels another; every step is in the journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import CallControlApi, RoutingApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.bootstrap import build_calendar_service, build_ivr_fastagi
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.time import SystemClock
from ccbridge.observability.health import Readiness
from ccbridge.services.callbacks import CallbackService
from ccbridge.services.tenants import AccessService
from ccbridge.settings import AgiSettings, IvrSettings, Settings
from tests.integration.test_call_control_fakepbx import SECRET, Rig, rig  # noqa: F401

CB = "/api/v1/tenants/t1/callback-requests"


@pytest.fixture
async def routed(
    rig: Rig,  # noqa: F811
    engine: AsyncEngine,
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, CallbackService, SqlJournal]]:
    """The rig's PBX and call control, behind an app that also serves the call-back routes."""
    settings = Settings(
        _env_file=None,
        simulate_pbx=False,
        agi=AgiSettings(port=0),
        ivr=IvrSettings(prompts_dir=tmp_path / "prompts"),
    )
    ivr, _agi = build_ivr_fastagi(settings, engine, build_calendar_service(engine))
    journal = SqlJournal(rig.sessions)
    callbacks = ivr.routing.callbacks
    callbacks.use_journal(journal)
    codec = JwtCodec(SECRET)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(rig.sessions),
        codec,
        now=SystemClock().now,
        token_ttl_seconds=600,
    )
    app = create_app(
        call_store=CallRepository(rig.sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        call_control_api=CallControlApi(rig.control, rig.idempotency),
        routing_api=RoutingApi(ivr.routing.numbers, ivr.routing.policies, callbacks),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http, callbacks, journal


async def test_an_agent_dials_a_callback_request_and_it_ends_connected(
    rig: Rig,  # noqa: F811
    routed: tuple[httpx.AsyncClient, CallbackService, SqlJournal],
) -> None:
    http, callbacks, journal = routed
    req = await callbacks.request(
        "t1",
        caller="13900139000",
        did="4008001234",
        skill_group="sales",
        call_id="1795433102.7",
        waited_seconds=240,
    )
    waiting = await http.get(f"{CB}?status=requested", headers=rig.admin)
    assert [r["id"] for r in waiting.json()] == [req.id]

    mark = rig.mark()
    headers = {**rig.agent["1000"], "Idempotency-Key": "cb-1"}
    resp = await http.post(f"{CB}/{req.id}/dial", json={"agent_no": "1000"}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["status"], body["attempts"], body["agent_no"]) == ("dialing", 1, "1000")
    call_id = body["attempt_call_id"]
    (originate,) = rig.actions(mark, "Originate")
    assert ("Channel", "Local/1000@agents") in originate
    assert ("Exten", "13900139000") in originate
    assert ("ChannelId", call_id) in originate
    for _ in range(2):  # a replay answers the first answer and never dials again
        again = await http.post(f"{CB}/{req.id}/dial", json={"agent_no": "1000"}, headers=headers)
        assert (again.status_code, again.json()["attempt_call_id"]) == (200, call_id)
    assert len(rig.actions(mark, "Originate")) == 1
    other = {**rig.agent["1002"], "Idempotency-Key": "cb-2"}
    busy = await http.post(f"{CB}/{req.id}/dial", json={"agent_no": "1002"}, headers=other)
    assert busy.status_code == 409  # already being dialled
    assert busy.headers["content-type"] == "application/problem+json"
    assert len(rig.actions(mark, "Originate")) == 1
    wrong = {**rig.agent["1002"], "Idempotency-Key": "cb-3"}
    mine = await http.post(f"{CB}/{req.id}/dial", json={"agent_no": "1000"}, headers=wrong)
    assert mine.status_code == 404  # an agent dials only as itself

    async def lookup(call: str) -> CallRecord | None:
        return rig.calls.get(call)

    def state(wanted: CallState) -> CallRecord | None:
        rec = rig.calls.get(call_id)
        return rec if rec is not None and rec.state is wanted else None

    await rig.until(lambda: state(CallState.CONNECTED), "the caller to answer")
    assert await callbacks.settle(lookup) == 0  # still talking
    hangup = await rig.post("1000/call/hangup", rig.agent["1000"], key="cb-bye")
    assert hangup.status_code == 200, hangup.text
    await rig.until(lambda: state(CallState.ENDED), "the call to end")
    assert await callbacks.settle(lookup) == 1

    done = (await http.get(f"{CB}/{req.id}", headers=rig.admin)).json()
    assert (done["status"], done["attempts"], done["attempt_call_id"]) == ("connected", 1, call_id)
    assert (await http.post(f"{CB}/{req.id}/cancel", headers=rig.admin)).status_code == 409

    second = await callbacks.request(
        "t1",
        caller="13700137000",
        did="4008001234",
        skill_group="sales",
        call_id="1795433102.9",
        waited_seconds=60,
    )
    refused = await http.post(f"{CB}/{second.id}/cancel", headers=rig.agent["1000"])
    assert refused.status_code == 403  # agents do not cancel; supervisors and admins do
    gone = await http.post(f"{CB}/{second.id}/cancel", headers=rig.admin)
    assert (gone.status_code, gone.json()["status"]) == (200, "cancelled")
    assert (await http.get(f"{CB}/nope", headers=rig.admin)).status_code == 404

    events = await journal.list_after(
        "t1",
        0,
        100,
        types=[
            "callback.requested",
            "callback.dialing",
            "callback.connected",
            "callback.cancelled",
        ],
    )
    assert [(e.type, e.data["request_id"]) for e in events] == [
        ("callback.requested", req.id),
        ("callback.dialing", req.id),
        ("callback.connected", req.id),
        ("callback.requested", second.id),
        ("callback.cancelled", second.id),
    ]
    assert events[1].data["attempt_call_id"] == call_id
