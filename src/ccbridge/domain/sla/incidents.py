"""Incidents and the fault minutes they cost a tenant in a month (contract F1, 000:202).

Only provider-attributable time counts: an incident marked ``excluded`` (planned cut-over with
notice, terminal-side fault, a cause outside the provider, 000:200) costs nothing. Overlapping
incidents are merged first, so two alarms for one outage never count its minutes twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ccbridge.domain.calendar import require_aware


class IncidentSource(StrEnum):
    """How the incident became known."""

    AUTOMATIC = "automatic"
    """Raised by ccbridge's own health checks (AMI down, FastAGI refusing, 5xx rate, lag)."""
    TENANT_REPORT = "tenant_report"
    """A fault reported by a tenant on the 5×8 hotline (000:188) and confirmed."""
    OPERATOR = "operator"
    """Entered by the provider's operations staff."""


class ExclusionReason(StrEnum):
    """The contract's non-business faults: they do not count against stability."""

    PLANNED_MAINTENANCE = "planned_maintenance"
    TERMINAL_FAULT = "terminal_fault"
    OUTSIDE_PROVIDER = "outside_provider"


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Who excluded an incident from the stability figure, why, and when."""

    reason: ExclusionReason
    by: str
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Incident:
    """An outage: ``[started_at, ended_at)``, open while ``ended_at`` is None."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    cause: str
    source: IncidentSource
    tenants: frozenset[str] | None = None
    """The tenants affected; ``None`` means every tenant (a platform-wide outage)."""
    exclusion: Exclusion | None = None

    def __post_init__(self) -> None:
        """Reject naive times and an end before the start."""
        require_aware(self.started_at)
        if self.ended_at is not None:
            require_aware(self.ended_at)
            if self.ended_at < self.started_at:
                raise ValueError("an incident cannot end before it starts")

    @property
    def excluded(self) -> bool:
        """Say whether the incident is a non-business fault (costs no stability)."""
        return self.exclusion is not None

    def affects(self, tenant: str) -> bool:
        """Say whether ``tenant`` was affected."""
        return self.tenants is None or tenant in self.tenants


def fault_minutes(
    incidents: Iterable[Incident],
    tenant: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> float:
    """Provider-attributable outage minutes of ``tenant`` within ``[start, end)``.

    An open incident runs until ``now``. Overlapping incidents count once (their union).
    """
    for t in (start, end, now):
        require_aware(t)
    spans: list[tuple[datetime, datetime]] = []
    for incident in incidents:
        if incident.excluded or not incident.affects(tenant):
            continue
        lo = max(incident.started_at, start)
        hi = min(incident.ended_at or now, end)
        if hi > lo:
            spans.append((lo, hi))
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for lo, hi in sorted(spans):
        if current is None or lo > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (lo, hi)
        else:
            current = (current[0], max(current[1], hi))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total / 60
