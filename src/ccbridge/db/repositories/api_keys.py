"""API keys in SQL: only the SHA-256 of the secret is ever stored."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ccbridge.db.access_tables import ApiKeyRow
from ccbridge.domain.access import ApiKey, Role


def _to_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        role=Role(row.role),
        scopes=frozenset(row.scopes or ()),
        name=row.name,
        secret_sha256=row.secret_sha256,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class ApiKeyRepository:
    """Implements ``services.ports.ApiKeyRepo`` on one session."""

    def __init__(self, session: AsyncSession) -> None:
        """Work inside *session*; the unit of work commits."""
        self._session = session

    async def add(self, key: ApiKey) -> None:
        """Insert a new key."""
        self._session.add(
            ApiKeyRow(
                key_id=key.key_id,
                tenant_id=key.tenant_id,
                role=key.role.value,
                scopes=sorted(key.scopes),
                name=key.name,
                secret_sha256=key.secret_sha256,
                created_at=key.created_at,
                created_by=key.created_by,
                revoked_at=key.revoked_at,
                last_used_at=key.last_used_at,
            )
        )
        await self._session.flush()

    async def get(self, key_id: str) -> ApiKey | None:
        """Return one key or ``None``."""
        row = await self._session.get(ApiKeyRow, key_id)
        return None if row is None else _to_key(row)

    async def list(self, tenant_id: str | None) -> builtins.list[ApiKey]:
        """A tenant's keys (``None``: platform keys), newest first."""
        cond = (
            ApiKeyRow.tenant_id.is_(None) if tenant_id is None else ApiKeyRow.tenant_id == tenant_id
        )
        stmt = select(ApiKeyRow).where(cond).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.key_id)
        rows = (await self._session.execute(stmt)).scalars().all()
        return [_to_key(r) for r in rows]

    async def revoke(self, key_id: str, at: datetime) -> None:
        """Set ``revoked_at`` once."""
        await self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def touch(self, key_id: str, at: datetime, *, unless_after: datetime) -> None:
        """Record use, skipping the write when another process recorded it recently."""
        await self._session.execute(
            update(ApiKeyRow)
            .where(
                ApiKeyRow.key_id == key_id,
                or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= unless_after),
            )
            .values(last_used_at=at)
        )

    async def has_active_platform_key(self) -> bool:
        """Say whether an unrevoked platform-admin key exists."""
        stmt = (
            select(ApiKeyRow.key_id)
            .where(
                ApiKeyRow.tenant_id.is_(None),
                ApiKeyRow.role == Role.PLATFORM_ADMIN.value,
                ApiKeyRow.revoked_at.is_(None),
            )
            .limit(1)
        )
        return (await self._session.execute(stmt)).first() is not None
