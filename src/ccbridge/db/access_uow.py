"""One transaction over tenants, API keys and the audit log (``AccessUnitOfWork``)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.repositories.api_keys import ApiKeyRepository
from ccbridge.db.repositories.audit import AuditRepository
from ccbridge.db.repositories.tenants import TenantRepository


class SqlAccessUnitOfWork:
    """Open a session on enter; commit only on :meth:`commit`; roll back otherwise."""

    tenants: TenantRepository
    api_keys: ApiKeyRepository
    audit: AuditRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; the session is opened by ``async with``."""
        self._factory = session_factory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        """Begin: bind the repositories to a fresh session."""
        session = self._factory()
        self._session = session
        self.tenants = TenantRepository(session)
        self.api_keys = ApiKeyRepository(session)
        self.audit = AuditRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and close the session."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.rollback()
        finally:
            await session.close()

    async def commit(self) -> None:
        """Commit the writes with their audit entries."""
        if self._session is None:
            raise RuntimeError("unit of work is not open")
        await self._session.commit()
