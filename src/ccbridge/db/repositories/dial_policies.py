"""Per-tenant dial policies in SQL (implements ``services.seat_ports.DialPolicyRepo``)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.seat_tables import DialPolicyRow
from ccbridge.domain.dialing import DialPolicy
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
        policy = DialPolicy(tuple(row.allow), tuple(row.deny))
        return DialPolicyRecord(row.tenant_id, policy, row.updated_at, row.updated_by)

    async def put(self, record: DialPolicyRecord) -> None:
        """Create or replace the policy; ``RecordNotFoundError`` for an unknown tenant."""
        if record.updated_at is None or record.updated_by is None:
            raise ValueError("a stored policy says when and by whom it was set")
        row = DialPolicyRow(
            tenant_id=record.tenant_id,
            allow=list(record.policy.allow),
            deny=list(record.policy.deny),
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )
        try:
            async with self._sessions() as session, session.begin():
                await session.merge(row)
        except IntegrityError as exc:
            raise RecordNotFoundError(f"tenant {record.tenant_id} does not exist") from exc
