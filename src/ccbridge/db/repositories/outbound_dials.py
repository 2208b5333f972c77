"""The outbound ledger in SQL (implements ``services.call_control_ports.OutboundLedger``).

An admission reads the tenant's calls of the last hour, asks the dial policy and inserts the
new call in one transaction that holds the tenant's write lock first: PostgreSQL takes a
transaction-scoped advisory lock on the tenant; SQLite's first write (dropping the tenant's
expired rows) takes the database's write lock. So two dials at once, in one process or two,
never both take the last place under a cap, and a restart forgets nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.outbound_tables import OutboundDialRow
from ccbridge.domain.agents.policy import Refused
from ccbridge.services.call_control_ports import DialledCall

RATE_WINDOW = timedelta(hours=1)
_LOCK_SPACE = 0x0CCB0019
"""First key of PostgreSQL's two-key advisory lock: the outbound ledger's own space."""


def tenant_lock_key(tenant_id: str) -> int:
    """A stable 32-bit key per tenant (the advisory lock's second key)."""
    return zlib.crc32(tenant_id.encode()) - 2**31


class SqlOutboundLedger:
    """One row per agent-dialled call; rows older than the window are dropped on admission."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, window: timedelta = RATE_WINDOW
    ) -> None:
        """Keep the factory; every admission is its own short transaction."""
        self._sessions = session_factory
        self._window = window

    async def admit(
        self,
        tenant_id: str,
        agent_no: str,
        call_id: str,
        at: datetime,
        decide: Callable[[Sequence[DialledCall]], Refused | None],
    ) -> Refused | None:
        """Decide on the tenant's last hour and count the call unless refused, atomically."""
        since = at - self._window
        async with self._sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                lock = func.pg_advisory_xact_lock(_LOCK_SPACE, tenant_lock_key(tenant_id))
                await session.execute(select(lock))
            await session.execute(
                delete(OutboundDialRow).where(
                    OutboundDialRow.tenant_id == tenant_id, OutboundDialRow.dialled_at <= since
                )
            )
            rows = (
                await session.execute(
                    select(OutboundDialRow)
                    .where(OutboundDialRow.tenant_id == tenant_id)
                    .order_by(OutboundDialRow.dialled_at)
                )
            ).scalars()
            recent = [DialledCall(r.call_id, r.agent_no, r.dialled_at) for r in rows]
            refused = decide(recent)
            if refused is not None:
                return refused
            if all(d.call_id != call_id for d in recent):
                session.add(
                    OutboundDialRow(
                        tenant_id=tenant_id, call_id=call_id, agent_no=agent_no, dialled_at=at
                    )
                )
        return None
