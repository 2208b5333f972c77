"""Which floor rules are broken now, and which alerts that opens or closes (one per episode).

The evaluation is a pure function of the floor's facts; :func:`settle` compares what is broken
with the alerts already open, so each breach is raised once and cleared once however often the
floor is evaluated, and a restart that re-reads the open alerts changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.floor.rules import FloorRule, FloorRules, RuleConfig, Severity
from ccbridge.domain.journal.types import EventType, NewEvent


@dataclass(frozen=True, slots=True)
class SeatFact:
    """A signed-in agent as the rules see it."""

    agent_no: str
    state: AgentState
    since: datetime
    breaks_today: int


@dataclass(frozen=True, slots=True)
class GroupFact:
    """A skill group's live queue and today's service level."""

    name: str
    calls_waiting: int
    service_level_pct: float | None
    """``None`` while nothing was offered today."""
    offered_today: int = 0


@dataclass(frozen=True, slots=True)
class FloorFacts:
    """One tenant's floor at one instant."""

    seats: Sequence[SeatFact]
    groups: Sequence[GroupFact]
    day: str
    """The tenant-local date (ISO): the break count starts again every day."""


@dataclass(frozen=True, slots=True)
class Breach:
    """A rule broken now; ``key`` says which episode it belongs to."""

    rule: FloorRule
    severity: Severity
    agent_no: str | None
    skill_group: str | None
    value: float
    threshold: int
    started_at: datetime
    message: str
    key: str


@dataclass(frozen=True, slots=True)
class FloorAlert:
    """An alert as stored: one episode of one breach, open until ``cleared_at``."""

    id: str
    tenant_id: str
    key: str
    rule: FloorRule
    severity: Severity
    agent_no: str | None
    skill_group: str | None
    value: float
    threshold: int
    started_at: datetime
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None

    def payload(self) -> dict[str, Any]:
        """The ``floor.alert`` event data (and the wallboard's alert object)."""
        return {
            "id": self.id,
            "rule": self.rule.value,
            "severity": self.severity.value,
            "agent_no": self.agent_no,
            "skill_group": self.skill_group,
            "value": _number(self.value),
            "threshold": self.threshold,
            "started_at": _stamp(self.started_at),
            "message": self.message,
        }


def opened(breach: Breach, alert_id: str, tenant_id: str, at: datetime) -> FloorAlert:
    """The alert a new breach opens."""
    return FloorAlert(
        id=alert_id,
        tenant_id=tenant_id,
        key=breach.key,
        rule=breach.rule,
        severity=breach.severity,
        agent_no=breach.agent_no,
        skill_group=breach.skill_group,
        value=breach.value,
        threshold=breach.threshold,
        started_at=breach.started_at,
        message=breach.message,
        raised_at=at,
    )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 1)


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    """``45 s`` under a minute, else whole minutes (``16 min``)."""
    return f"{int(seconds)} s" if seconds < 60 else f"{int(seconds // 60)} min"


def _key(rule: FloorRule, agent_no: str | None, group: str | None, anchor: str) -> str:
    return f"{rule.value}|{agent_no or ''}|{group or ''}|{anchor}"


def _overstay(
    rule: FloorRule, cfg: RuleConfig, seat: SeatFact, now: datetime, label: str
) -> Breach | None:
    """An agent in one state longer than the threshold (the episode is that stay)."""
    seconds = (now - seat.since).total_seconds()
    if seconds <= cfg.threshold:
        return None
    return Breach(
        rule,
        cfg.severity,
        seat.agent_no,
        None,
        float(int(seconds)),
        cfg.threshold,
        seat.since + timedelta(seconds=cfg.threshold),
        f"Agent {seat.agent_no} {label} for {_duration(seconds)}, over the "
        f"{_duration(cfg.threshold)} limit.",
        _key(rule, seat.agent_no, None, seat.since.isoformat()),
    )


def _seat_breaches(rules: FloorRules, facts: FloorFacts, now: datetime) -> Iterable[Breach]:
    not_ready = rules.active(FloorRule.NOT_READY_TOO_LONG)
    on_break = rules.active(FloorRule.BREAK_TOO_LONG)
    count = rules.active(FloorRule.BREAK_COUNT_EXCEEDED)
    for seat in facts.seats:
        if not_ready and seat.state is AgentState.NOT_READY:
            hit = _overstay(FloorRule.NOT_READY_TOO_LONG, not_ready, seat, now, "not ready (示忙)")
            if hit:
                yield hit
        if on_break and seat.state is AgentState.BREAK:
            hit = _overstay(FloorRule.BREAK_TOO_LONG, on_break, seat, now, "on break (小休)")
            if hit:
                yield hit
        if count and seat.breaks_today > count.threshold:
            yield Breach(
                FloorRule.BREAK_COUNT_EXCEEDED,
                count.severity,
                seat.agent_no,
                None,
                float(seat.breaks_today),
                count.threshold,
                now,
                f"Agent {seat.agent_no} has taken {seat.breaks_today} breaks (小休) today, "
                f"over the limit of {count.threshold}.",
                _key(FloorRule.BREAK_COUNT_EXCEEDED, seat.agent_no, None, facts.day),
            )


def _floor_breaches(rules: FloorRules, facts: FloorFacts, now: datetime) -> Iterable[Breach]:
    cap = rules.active(FloorRule.TOO_MANY_ON_BREAK)
    if cap:
        on_break = sum(1 for s in facts.seats if s.state is AgentState.BREAK)
        if on_break > cap.threshold:
            yield Breach(
                FloorRule.TOO_MANY_ON_BREAK,
                cap.severity,
                None,
                None,
                float(on_break),
                cap.threshold,
                now,
                f"{on_break} agents are on break (小休) at once, over the limit of "
                f"{cap.threshold}.",
                _key(FloorRule.TOO_MANY_ON_BREAK, None, None, ""),
            )
    waiting = rules.active(FloorRule.CALLS_WAITING_OVER)
    service = rules.active(FloorRule.SERVICE_LEVEL_UNDER)
    for group in facts.groups:
        if waiting and group.calls_waiting > waiting.threshold:
            yield Breach(
                FloorRule.CALLS_WAITING_OVER,
                waiting.severity,
                None,
                group.name,
                float(group.calls_waiting),
                waiting.threshold,
                now,
                f"{group.calls_waiting} calls wait in {group.name}, over the limit of "
                f"{waiting.threshold}.",
                _key(FloorRule.CALLS_WAITING_OVER, None, group.name, ""),
            )
        level = group.service_level_pct
        judged = group.offered_today >= rules.service_level_min_offered
        if service and judged and level is not None and level < service.threshold:
            yield Breach(
                FloorRule.SERVICE_LEVEL_UNDER,
                service.severity,
                None,
                group.name,
                round(level, 1),
                service.threshold,
                now,
                f"Service level of {group.name} today is {level:.1f} %, under the target of "
                f"{service.threshold} %.",
                _key(FloorRule.SERVICE_LEVEL_UNDER, None, group.name, ""),
            )


def breaches(rules: FloorRules, facts: FloorFacts, now: datetime) -> list[Breach]:
    """Every rule the floor breaks at *now* (switched-off rules never do)."""
    return [*_seat_breaches(rules, facts, now), *_floor_breaches(rules, facts, now)]


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one evaluation changes: breaches to raise, open alerts to clear."""

    raise_: list[Breach]
    clear: list[FloorAlert]


def settle(open_alerts: Sequence[FloorAlert], broken: Sequence[Breach]) -> Settlement:
    """Raise the breaches no open alert covers; clear the open alerts nothing breaks now."""
    broken_keys = {b.key for b in broken}
    open_keys = {a.key for a in open_alerts}
    fresh: dict[str, Breach] = {}
    for b in broken:
        if b.key not in open_keys:
            fresh.setdefault(b.key, b)
    return Settlement(list(fresh.values()), [a for a in open_alerts if a.key not in broken_keys])


def raised_event(alert: FloorAlert) -> NewEvent:
    """``floor.alert`` for a newly opened alert (keyed by the alert: one event per episode)."""
    return NewEvent(
        tenant=alert.tenant_id,
        type=EventType.FLOOR_ALERT,
        occurred_at=alert.raised_at,
        key=f"floor:{alert.id}:raised",
        data={**alert.payload(), "extras": {}},
    )


def cleared_event(alert: FloorAlert, at: datetime) -> NewEvent:
    """``floor.alert_cleared`` closing *alert* at *at*."""
    return NewEvent(
        tenant=alert.tenant_id,
        type=EventType.FLOOR_ALERT_CLEARED,
        occurred_at=at,
        key=f"floor:{alert.id}:cleared",
        data={**alert.payload(), "cleared_at": _stamp(at), "extras": {}},
    )
