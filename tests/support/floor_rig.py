"""Shared wiring for the floor API tests: floor rules, alerts in the journal, the wallboard
over a list of live calls, and listen/whisper/barge with the PBX side recorded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.api.app import FloorApi
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.endpoints import EndpointRepository
from ccbridge.db.repositories.floor import SqlFloorAlertStore, SqlFloorRulesStore
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.spy import SpyMode
from ccbridge.domain.floor.rules import platform_defaults
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.day_figures import DayFigures
from ccbridge.services.endpoints import EndpointGuard
from ccbridge.services.event_hub import EventHub
from ccbridge.services.floor_alerts import FloorAlertService
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.reports import ReportService
from ccbridge.services.seats import SeatService
from ccbridge.services.supervision import SpyPbx, SpyService
from ccbridge.services.wallboard import WallboardService
from tests.fakes.seats import FakeClock


@dataclass
class LiveCalls:
    """The live call tracker as a list the test fills: calls and their channels."""

    calls: list[CallRecord] = field(default_factory=list)
    channels: dict[str, list[str]] = field(default_factory=dict)

    def open_calls(self) -> list[CallRecord]:
        return list(self.calls)

    def live_channels(self, call_id: str) -> list[str]:
        return list(self.channels.get(call_id, []))

    def get(self, call_id: str) -> CallRecord | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def current_call_of(self, interface: str) -> str | None:
        for rec in self.calls:
            if rec.agent_interface == interface and rec.answered_at is not None:
                return rec.call_id
        return None


class Tracker(Protocol):
    """What the floor reads of the live calls (``CallTrackingService`` or :class:`LiveCalls`)."""

    def open_calls(self) -> list[CallRecord]: ...

    def live_channels(self, call_id: str) -> list[str]: ...

    def current_call_of(self, interface: str) -> str | None: ...

    def get(self, call_id: str) -> CallRecord | None: ...


@dataclass
class RecordingSpyPbx:
    """The PBX side of ChanSpy, recorded."""

    sent: list[tuple[str, str, SpyMode, str]] = field(default_factory=list)

    async def spy(
        self, supervisor_endpoint: str, agent_channel: str, mode: SpyMode, caller_id: str
    ) -> None:
        self.sent.append((supervisor_endpoint, agent_channel, mode, caller_id))


def committed_to(
    hub: EventHub, listeners: list[Callable[[Sequence[StoredEvent]], None]]
) -> Callable[[Sequence[StoredEvent]], None]:
    """A journal commit hook: the listeners (the wallboard), then the hub."""

    def on_commit(stored: Sequence[StoredEvent]) -> None:
        for listener in listeners:
            listener(stored)
        hub.publish(stored)

    return on_commit


def floor_api(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    seats: SeatService,
    journal: SqlJournal,
    hub: EventHub,
    live: Tracker,
    pbx: SpyPbx,
    listeners: list[Callable[[Sequence[StoredEvent]], None]],
    agents_context: str = "ccbridge-agents",
) -> FloorApi:
    """The floor services over the test database, time from *clock*."""
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    rules = FloorRuleService(SqlFloorRulesStore(sessions), platform_defaults(), audit, clock.now)
    store = SqlFloorAlertStore(sessions, journal)
    reports = ReportService(
        SqlReportSource(sessions),
        SqlReportSettingsStore(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
    )
    agents = AgentRepository(sessions)
    wallboard = WallboardService(
        seats=seats,
        agents=agents,
        groups=SkillGroupRepository(sessions),
        live_calls=live.open_calls,
        current_call=live.current_call_of,
        today=DayFigures(reports, live.get, clock.now),
        rules=rules,
        alerts=store,
        clock=clock,
    )
    listeners.append(wallboard.on_events)
    seat_sessions = SeatSessionRepository(sessions)

    async def tenants() -> set[str]:
        return {s.tenant_id for s in await seat_sessions.list_open(None)}

    alerts = FloorAlertService(
        store=store, rules=rules, facts=wallboard.facts, tenants=tenants, clock=clock
    )
    spy = SpyService(
        calls=live,
        sessions=seat_sessions,
        agents=agents,
        endpoints=EndpointGuard(EndpointRepository(sessions), audit),
        pbx=pbx,
        audit=audit,
        agents_context=agents_context,
    )
    return FloorApi(rules=rules, alerts=alerts, wallboard=wallboard, signal=hub, spy=spy)
