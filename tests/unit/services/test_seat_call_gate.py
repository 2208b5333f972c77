"""A hold takes the call out of the queue's bridge and app_queue says the member's call is
complete: the seat stays on the call until the agent's leg is really gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccbridge.domain.calls.events import (
    AgentAnswered,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelVariableSet,
)
from ccbridge.domain.calls.model import CallControl, CallRecord
from ccbridge.services.call_control import SeatCallGate
from ccbridge.services.calls import CallTrackingService

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
L1, TRUNK = "1795433102.17", "PJSIP/trunk-00000001"
AGENT_LEG, IFACE = "Local/1101@agents-00000002;1", "Local/1101@agents"


class Sink:
    def submit(self, record: CallRecord) -> None:
        pass


def _calls() -> CallTrackingService:
    calls = CallTrackingService(Sink())
    calls.handle(
        [
            ChannelCreated(T0, L1, L1, TRUNK, "13800138000", None, "4008001234", "in"),
            ChannelVariableSet(T0, L1, L1, TRUNK, "CCB_TENANT", "t1"),
            CallerJoinedQueue(T0, L1, L1, TRUNK, "t1-sales", "13800138000", None),
            ChannelCreated(T0, L1, "u2", AGENT_LEG, None, None, "s", "agents"),
            AgentAnswered(T0, L1, L1, TRUNK, "t1-sales", IFACE, "1101 A"),
        ]
    )
    return calls


async def test_a_held_calls_end_waits_until_the_agent_leg_is_gone() -> None:
    calls = _calls()
    seen: list[tuple[str, bool]] = []

    async def handle(interface: str, started: bool) -> None:
        seen.append((interface, started))

    gate = SeatCallGate(calls, handle)
    await gate(IFACE, True)
    calls.note(L1, CallControl("held", T0 + timedelta(seconds=5), "1101"))
    await gate(IFACE, False)  # app_queue: AgentComplete at hold time
    assert seen == [(IFACE, True)]
    assert await gate.sweep() == 0  # still on the call (held, then resumed)
    calls.note(L1, CallControl("resumed", T0 + timedelta(seconds=9), "1101"))
    assert await gate.sweep() == 0
    calls.handle([ChannelHungUp(T0 + timedelta(seconds=30), L1, "u2", AGENT_LEG, "16")])
    assert await gate.sweep() == 1
    assert seen == [(IFACE, True), (IFACE, False)]
    assert await gate.sweep() == 0


async def test_an_ordinary_call_end_passes_straight_through() -> None:
    calls = _calls()
    seen: list[tuple[str, bool]] = []

    async def handle(interface: str, started: bool) -> None:
        seen.append((interface, started))

    gate = SeatCallGate(calls, handle)
    await gate(IFACE, False)
    assert seen == [(IFACE, False)]
