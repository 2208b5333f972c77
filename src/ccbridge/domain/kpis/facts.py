"""What one call contributes to the KPIs: offered, answered within T, abandoned, wait, talk…"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ccbridge.domain.billing.per_call import is_billable
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.settings import KpiSettings


@dataclass(frozen=True, slots=True)
class CallFacts:
    """The measured quantities of one call, derived once and shared by every report."""

    call_id: str
    at: datetime
    """When the call counts: queue entry for inbound calls, start otherwise."""
    skill_group: str | None
    agent_no: str | None
    """The agent who answered it (first agent leg), or the agent who placed it."""
    inbound: bool
    outbound: bool
    answered: bool
    abandoned: bool
    short_abandoned: bool
    answered_within_t: bool
    wait_s: float | None
    talk_s: float
    transfers: int
    billable: bool
    ended: bool


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def talk_seconds(rec: CallRecord) -> float:
    """Talk time: the sum of the agent legs, or answer to hang-up when no leg is known."""
    if rec.segments:
        total = 0.0
        for seg in rec.segments:
            total += _seconds(seg.started_at, seg.ended_at or rec.ended_at) or 0.0
        return total
    return _seconds(rec.answered_at, rec.ended_at) or 0.0


def call_facts(rec: CallRecord, settings: KpiSettings) -> CallFacts:
    """Classify one call under the tenant's thresholds (definitions in docs/kpis.md)."""
    inbound = rec.queued_at is not None
    answered = inbound and rec.answered_at is not None
    final = rec.state.is_final
    wait: float | None = None
    if inbound:
        wait = _seconds(rec.queued_at, rec.answered_at if answered else rec.ended_at)
    abandoned = inbound and not answered and final
    short = abandoned and wait is not None and wait < settings.short_abandon_seconds
    outbound = not inbound and rec.agent_no is not None and rec.answered_at is not None
    talk = talk_seconds(rec) if final else 0.0
    agent = rec.segments[0].agent_no if rec.segments else rec.agent_no
    return CallFacts(
        call_id=rec.call_id,
        at=rec.queued_at or rec.started_at,
        skill_group=rec.skill_group,
        agent_no=agent if (answered or outbound) else None,
        inbound=inbound,
        outbound=outbound,
        answered=answered,
        abandoned=abandoned,
        short_abandoned=short,
        answered_within_t=answered and wait is not None and wait <= settings.service_level_seconds,
        wait_s=wait,
        talk_s=talk,
        transfers=len(rec.transfers),
        billable=final
        and rec.answered_at is not None
        and is_billable(talk, settings.billable_seconds),
        ended=final,
    )
