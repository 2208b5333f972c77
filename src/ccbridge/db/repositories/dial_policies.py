"""Per-tenant dial policies in SQL (implements ``services.seat_ports.DialPolicyRepo``)."""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.seat_tables import DialPolicyRow
from ccbridge.domain.dialing import BusinessHours, DialPolicy, OutboundLimits
from ccbridge.services.seat_ports import DialPolicyRecord, RecordNotFoundError


class DialPolicyRepository:
    """One row per tenant that has set a policy; no row means the default policy."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def get(self, tenant_id: str) -> DialPolicyRecord | None:
        """Return the tenant's policy, or ``None`` when it was never set."""
        async with self._sessions() as session:
            row = await session.get(DialPolicyRow, tenant_id)
        if row is None:
            return None
        policy = DialPolicy(
            tuple(row.allow),
            tuple(row.deny),
            row.region or "CN",
            limits_from_json(row.limits),
            row.caller_id,
        )
        return DialPolicyRecord(row.tenant_id, policy, row.updated_at, row.updated_by)

    async def put(self, record: DialPolicyRecord) -> None:
        """Create or replace the policy; ``RecordNotFoundError`` for an unknown tenant."""
        if record.updated_at is None or record.updated_by is None:
            raise ValueError("a stored policy says when and by whom it was set")
        row = DialPolicyRow(
            tenant_id=record.tenant_id,
            allow=list(record.policy.allow),
            deny=list(record.policy.deny),
            region=record.policy.region,
            limits=limits_to_json(record.policy.limits),
            caller_id=record.policy.caller_id,
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )
        try:
            async with self._sessions() as session, session.begin():
                await session.merge(row)
        except IntegrityError as exc:
            raise RecordNotFoundError(f"tenant {record.tenant_id} does not exist") from exc


def limits_to_json(limits: OutboundLimits) -> dict[str, Any]:
    """The limits as the ``limits`` column stores them (times as ``HH:MM``)."""
    hours = limits.business_hours
    return {
        "deny_international": limits.deny_international,
        "deny_premium_rate": limits.deny_premium_rate,
        "per_seat_per_hour": limits.per_seat_per_hour,
        "per_tenant_per_hour": limits.per_tenant_per_hour,
        "concurrent_per_seat": limits.concurrent_per_seat,
        "concurrent_per_tenant": limits.concurrent_per_tenant,
        "business_hours": None
        if hours is None
        else {
            "start": hours.start.strftime("%H:%M"),
            "end": hours.end.strftime("%H:%M"),
            "working_days_only": hours.working_days_only,
        },
    }


def limits_from_json(data: dict[str, Any] | None) -> OutboundLimits:
    """Read the ``limits`` column back; NULL is the defaults."""
    if not data:
        return OutboundLimits()
    raw = data.get("business_hours")
    hours = (
        None
        if not raw
        else BusinessHours(
            time.fromisoformat(raw["start"]),
            time.fromisoformat(raw["end"]),
            bool(raw.get("working_days_only", True)),
        )
    )
    return OutboundLimits(
        deny_international=bool(data.get("deny_international", True)),
        deny_premium_rate=bool(data.get("deny_premium_rate", True)),
        per_seat_per_hour=data.get("per_seat_per_hour"),
        per_tenant_per_hour=data.get("per_tenant_per_hour"),
        concurrent_per_seat=data.get("concurrent_per_seat"),
        concurrent_per_tenant=data.get("concurrent_per_tenant"),
        business_hours=hours,
    )
