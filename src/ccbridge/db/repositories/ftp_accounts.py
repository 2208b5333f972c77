"""Per-tenant FTP logins in SQL (hashed passwords only)."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.recording_tables import FtpAccountRow
from ccbridge.domain.recordings.model import FtpAccount


def _account(row: FtpAccountRow) -> FtpAccount:
    return FtpAccount(
        username=row.username,
        tenant=row.tenant,
        password_hash=row.password_hash,
        tls_required=row.tls_required,
        created_at=row.created_at,
        created_by=row.created_by,
        disabled_at=row.disabled_at,
    )


class FtpAccountRepository:
    """Implements ``services.recording_ports.FtpAccountStore``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short session."""
        self._sessions = session_factory

    async def get(self, username: str) -> FtpAccount | None:
        """The account named *username* (disabled ones too)."""
        async with self._sessions() as session:
            row = await session.get(FtpAccountRow, username)
            return None if row is None else _account(row)

    async def add(self, account: FtpAccount) -> bool:
        """Insert; False when the user name is taken (by any tenant)."""
        async with self._sessions() as session:
            if await session.get(FtpAccountRow, account.username) is not None:
                return False
            session.add(
                FtpAccountRow(
                    username=account.username,
                    tenant=account.tenant,
                    password_hash=account.password_hash,
                    tls_required=account.tls_required,
                    created_at=account.created_at,
                    created_by=account.created_by,
                    disabled_at=account.disabled_at,
                )
            )
            await session.commit()
        return True

    async def of_tenant(self, tenant: str) -> builtins.list[FtpAccount]:
        """A tenant's accounts, by name."""
        stmt = select(FtpAccountRow).where(FtpAccountRow.tenant == tenant)
        async with self._sessions() as session:
            rows = (await session.execute(stmt.order_by(FtpAccountRow.username))).scalars()
            return [_account(r) for r in rows]

    async def disable(self, username: str, tenant: str, now: datetime) -> bool:
        """Disable one of *tenant*'s accounts; False when it has none such."""
        async with self._sessions() as session:
            row = await session.get(FtpAccountRow, username)
            if row is None or row.tenant != tenant:
                return False
            if row.disabled_at is None:
                row.disabled_at = now
            await session.commit()
        return True
