"""Per-tenant thresholds every KPI and report reads (defaults follow requirements §6)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SERVICE_LEVEL_SECONDS = 30
"""The contract's "answer within 30 s" (001:147)."""
DEFAULT_SHORT_ABANDON_SECONDS = 5
"""Not in the sources: a caller who hangs up within 5 s of queueing is not counted as offered."""
DEFAULT_BILLABLE_SECONDS = 15
"""Calls with talk of 15 s or more count for the per-call fee (000:380, F4)."""


@dataclass(frozen=True, slots=True)
class KpiSettings:
    """One tenant's report thresholds and targets."""

    service_level_seconds: int = DEFAULT_SERVICE_LEVEL_SECONDS
    short_abandon_seconds: int = DEFAULT_SHORT_ABANDON_SECONDS
    billable_seconds: int = DEFAULT_BILLABLE_SECONDS
    outbound_daily_quota: int | None = None
    """Outbound calls each agent must place per day (日呼出量, RPT-05); None when not set."""
    required_headcount: int | None = None
    """Agents the tenant needs on line at once (000:398); None when not set."""
    timezone: str | None = None
    """IANA zone of the tenant's intervals; None means Asia/Shanghai."""
    targets: tuple[tuple[str, float], ...] = ()
    """The tenant's targets by KPI key for the monthly operations report (RPT-04)."""

    def __post_init__(self) -> None:
        """Refuse negative thresholds."""
        for name in ("service_level_seconds", "short_abandon_seconds", "billable_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
