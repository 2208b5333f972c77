"""Issue 15: the outbound rate cap holds across a restart. A seat allowed one call an hour
dials once through the API; a restarted ccbridge (new call control, new tracker, same
database) refuses the seat's next call with the rate rule, and audits it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.agents.policy import RefusalCode
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.call_control import CallControlRateLimitedError
from ccbridge.services.calls import CallTrackingService
from tests.integration.test_call_control_fakepbx import (  # noqa: F401
    ListSink,
    Rig,
    control_service,
    rig,
)

AGENT = Principal(actor="token:a1000", role=Role.AGENT, tenant_id="t1", agent_no="1000")


async def test_the_hourly_cap_counts_calls_dialled_before_a_restart(rig: Rig) -> None:  # noqa: F811
    policy = {
        "caller_id": "02088880000",
        "allow": ["0", "1", "400"],
        "deny": ["160"],
        "limits": {"per_seat_per_hour": 1, "concurrent_per_seat": 5},
    }
    resp = await rig.http.put("/api/v1/tenants/t1/dial-policy", json=policy, headers=rig.platform)
    assert resp.status_code == 200, resp.text
    first = await rig.post("1000/dial", rig.agent["1000"], {"number": "13900139000"}, key="k1")
    assert first.status_code == 200, first.text
    call_id = first.json()["call_id"]

    def ended() -> CallRecord | None:
        rec = rig.calls.get(call_id)
        return rec if rec is not None and rec.state is CallState.ENDED else None

    await rig.until(
        lambda: (
            rig.calls.get(call_id) is not None
            and rig.calls.get(call_id).state is CallState.CONNECTED
        ),  # type: ignore[union-attr]
        "the customer to answer",
    )
    bye = await rig.post("1000/call/hangup", rig.agent["1000"], key="k2")
    assert bye.status_code == 200, bye.text
    await rig.until(ended, "the call to end")

    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(rig.sessions), lambda: datetime.now(UTC))
    calendar = CalendarService(CalendarRepository(rig.sessions), audit, lambda: datetime.now(UTC))
    restarted = control_service(
        rig.sessions, CallTrackingService(ListSink()), rig.ami, audit, calendar
    )
    mark = rig.mark()
    with pytest.raises(CallControlRateLimitedError) as refused:
        await restarted.dial(AGENT, "t1", "1000", "13700137000")
    assert refused.value.reason is RefusalCode.SEAT_RATE_LIMITED
    assert rig.actions(mark, "Originate") == []
    entries = [e for e in await rig.audit() if e.action == "call_control.refused"]
    assert entries[-1].detail["rule"] == "SEAT_RATE_LIMITED"
