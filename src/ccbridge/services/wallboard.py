"""The supervisor's wallboard: live queues and seats, today's figures and the open alerts.

Calls waiting and the longest wait come from the live call tracker in memory; today's offered,
answered, abandoned and service level come from the reports' own definitions, kept current call
by call (``DayFigures``); seats and alerts come from the database. The stream sends the board
when it changes, at most 4 times a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calendar import local_date
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.floor.alerts import FloorFacts, GroupFact, SeatFact
from ccbridge.domain.floor.rules import FloorRules, light
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.time import Clock
from ccbridge.services.day_figures import TodayFigures
from ccbridge.services.event_codec import encode_json
from ccbridge.services.floor_ports import FloorAlertStore
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.seat_ports import AgentRecord, AgentRepo, SeatSession, SkillGroupRepo
from ccbridge.services.seats import SeatService, all_agents

BOARD_STATES: dict[AgentState, str] = {
    AgentState.READY: "ready",
    AgentState.NOT_READY: "not_ready",
    AgentState.BREAK: "break",
    AgentState.ON_CALL: "on_call",
    AgentState.AFTER_CALL_WORK: "wrap_up",
}
"""Seat states as the wallboard names them (话后处理 is ``wrap_up``)."""
WAITING_STATES = frozenset({CallState.QUEUED, CallState.AGENT_RINGING})
MIN_FRAME_INTERVAL = 0.25
"""At most 4 frames a second per stream."""
HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 1.0
"""Without any event the board is still rebuilt every second (the longest wait grows)."""
GROUP_PAGE = 500


class TodayKpis(Protocol):
    """Today's service-level figures of a tenant (``DayFigures``)."""

    async def figures(self, tenant_id: str) -> TodayFigures:
        """The day so far per queue."""
        ...

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """Journal commit hook: calls changed."""
        ...


class ChangeSignal(Protocol):
    """Tells a stream that the tenant's journal moved, or that the service stops (``EventHub``)."""

    closed: bool
    """Shutdown: streams end so the HTTP server can stop."""

    def last_seq(self, tenant: str) -> int:
        """The newest cursor known for *tenant*."""
        ...

    async def wait(self, tenant: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for an event past *after*, at most *timeout* seconds."""
        ...


@dataclass(frozen=True, slots=True)
class QueueNow:
    """A queue's waiting calls right now."""

    waiting: int = 0
    longest_wait_s: int = 0


def queues_now(calls: Iterable[CallRecord], now: datetime) -> dict[str, QueueNow]:
    """Calls in each queue that no agent has answered yet, and the longest wait, by queue."""
    count: Counter[str] = Counter()
    longest: dict[str, int] = {}
    for rec in calls:
        if rec.state not in WAITING_STATES or rec.queued_at is None or rec.skill_group is None:
            continue
        if rec.answered_at is not None:
            continue
        count[rec.skill_group] += 1
        wait = max(0, int((now - rec.queued_at).total_seconds()))
        longest[rec.skill_group] = max(longest.get(rec.skill_group, 0), wait)
    return {q: QueueNow(n, longest[q]) for q, n in count.items()}


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _count(value: float | None) -> int:
    return int(value) if value is not None else 0


@dataclass(frozen=True, slots=True)
class _Floor:
    """What one board or one evaluation reads, gathered once."""

    now: datetime
    sessions: list[SeatSession]
    agents: dict[str, AgentRecord]
    groups: list[tuple[str, str]]
    """(skill group name, its queue), by name."""
    queues: dict[str, QueueNow]
    today: TodayFigures
    rules: FloorRules


class WallboardService:
    """Build a tenant's wallboard and the facts its floor rules are judged on."""

    def __init__(
        self,
        *,
        seats: SeatService,
        agents: AgentRepo,
        groups: SkillGroupRepo,
        live_calls: Callable[[], Iterable[CallRecord]],
        current_call: Callable[[str], str | None],
        today: TodayKpis,
        rules: FloorRuleService,
        alerts: FloorAlertStore,
        clock: Clock,
    ) -> None:
        self._seats = seats
        self._agents = agents
        self._groups = groups
        self._live_calls = live_calls
        self._current_call = current_call
        self._today = today
        self._rules = rules
        self._alerts = alerts
        self._clock = clock
        self._building: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """Journal commit hook: the day's figures follow the calls that changed."""
        self._today.on_events(events)

    async def _group_list(self, tenant_id: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        after: str | None = None
        while True:
            page = await self._groups.list(tenant_id, after=after, limit=GROUP_PAGE)
            out.extend((g.name, g.queue) for g in page)
            if len(page) < GROUP_PAGE:
                return out
            after = page[-1].name

    async def _floor(self, tenant_id: str) -> _Floor:
        now = self._clock.now()
        return _Floor(
            now=now,
            sessions=await self._seats.live(tenant_id),
            agents=await all_agents(self._agents, tenant_id),
            groups=await self._group_list(tenant_id),
            queues=queues_now(self._live_calls(), now),
            today=await self._today.figures(tenant_id),
            rules=await self._rules.rules(tenant_id),
        )

    async def facts(self, tenant_id: str) -> FloorFacts:
        """The seats and groups of the tenant as its floor rules read them."""
        floor = await self._floor(tenant_id)
        return FloorFacts(
            seats=[
                SeatFact(
                    s.agent_no,
                    s.status.state,
                    s.status.since,
                    self._seats.breaks_today(s, floor.now),
                )
                for s in floor.sessions
            ],
            groups=[
                GroupFact(
                    name,
                    floor.queues.get(queue, QueueNow()).waiting,
                    floor.today.by_queue.get(queue, {}).get("service_level"),
                    _count(floor.today.by_queue.get(queue, {}).get("offered")),
                )
                for name, queue in floor.groups
            ],
            day=local_date(floor.now, floor.today.settings.timezone).isoformat(),
        )

    async def shared_board(self, tenant_id: str) -> dict[str, Any]:
        """:meth:`board` for streams: streams of one tenant woken by the same change share one
        build (the one in flight), so ten supervisors cost one build, not ten."""
        task = self._building.get(tenant_id)
        if task is None:
            task = asyncio.ensure_future(self.board(tenant_id))
            self._building[tenant_id] = task
            task.add_done_callback(lambda _t: self._building.pop(tenant_id, None))
        return await asyncio.shield(task)

    async def board(self, tenant_id: str) -> dict[str, Any]:
        """The wallboard JSON (docs/wallboard.md)."""
        floor = await self._floor(tenant_id)
        open_alerts = await self._alerts.open_alerts(tenant_id)
        return {
            "tenant_id": tenant_id,
            "generated_at": _stamp(floor.now),
            "skill_groups": [self._group(floor, name, queue) for name, queue in floor.groups],
            "seats": [self._seat(floor, s) for s in sorted(floor.sessions, key=_agent_no)],
            "alerts": [a.payload() for a in open_alerts],
        }

    def _group(self, floor: _Floor, name: str, queue: str) -> dict[str, Any]:
        states: Counter[str] = Counter()
        for s in floor.sessions:
            agent = floor.agents.get(s.agent_no)
            if agent is not None and any(k.skill_group == name for k in agent.skills):
                label = BOARD_STATES.get(s.status.state)
                if label is not None:
                    states[label] += 1
        live = floor.queues.get(queue, QueueNow())
        kpis = floor.today.by_queue.get(queue, {})
        level = kpis.get("service_level")
        value = round(level, 1) if level is not None else None
        return {
            "name": name,
            "calls_waiting": live.waiting,
            "longest_wait_seconds": live.longest_wait_s,
            "offered_today": _count(kpis.get("offered")),
            "answered_today": _count(kpis.get("answered")),
            "abandoned_today": _count(kpis.get("abandoned")),
            "agents": {label: states[label] for label in BOARD_STATES.values()},
            "service_level": {
                "value_pct": value,
                "target_pct": float(floor.rules.target_pct),
                "threshold_seconds": floor.today.settings.service_level_seconds,
                "status": light(level, floor.rules),
            },
        }

    def _seat(self, floor: _Floor, session: SeatSession) -> dict[str, Any]:
        agent = floor.agents.get(session.agent_no)
        status = session.status
        return {
            "agent_no": session.agent_no,
            "name": agent.name if agent is not None else "",
            "state": BOARD_STATES.get(status.state, status.state.value),
            "state_since": _stamp(status.since),
            "reason": status.reason,
            "skill_groups": [k.skill_group for k in agent.skills] if agent is not None else [],
            "call_id": self._current_call(session.interface),
        }


def _agent_no(session: SeatSession) -> str:
    return session.agent_no


def wallboard_frame(board: dict[str, Any]) -> bytes:
    """One SSE frame: ``event: wallboard`` with the board as one line of JSON."""
    return b"event: wallboard\ndata: %s\n\n" % encode_json(board)


async def wallboard_stream(
    tenant_id: str,
    build: Callable[[str], Awaitable[dict[str, Any]]],
    signal: ChangeSignal,
    *,
    min_interval: float = MIN_FRAME_INTERVAL,
    heartbeat: float = HEARTBEAT_SECONDS,
    recheck: float = RECHECK_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[bytes | None]:
    """Yield a frame whenever the board differs from the last one sent (``generated_at``
    aside), never two within *min_interval*: changes in between are coalesced into the next
    frame, built after the pause so it carries the newest state. ``None`` is a heartbeat,
    after *heartbeat* seconds without a frame. Ends when the signal closes (shutdown)."""
    last_body: bytes | None = None
    last_frame = -min_interval
    last_write = monotonic()
    cursor = signal.last_seq(tenant_id)
    while not signal.closed:
        board = await build(tenant_id)
        body = encode_json({k: v for k, v in board.items() if k != "generated_at"})
        if body != last_body:
            pause = last_frame + min_interval - monotonic()
            if pause > 0:
                await sleep(pause)
                continue  # rebuild: what changed during the pause goes in this frame (or end)
            last_body, last_frame = body, monotonic()
            last_write = last_frame
            yield wallboard_frame(board)
        elif monotonic() - last_write >= heartbeat:
            last_write = monotonic()
            yield None
        await signal.wait(tenant_id, cursor, recheck)
        cursor = signal.last_seq(tenant_id)
