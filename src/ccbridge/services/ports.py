"""Ports: what the application layer needs from adapters, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from ccbridge.domain.access import ApiKey, AuditEntry, Principal, Tenant
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.ha.placement import TenantActivity
from ccbridge.domain.journal.types import NewEvent, StoredEvent


class CallSink(Protocol):
    """Takes changed call records off the event path (batched persistence)."""

    def submit(self, record: CallRecord) -> None:
        """Queue a record for writing; never blocks."""
        ...


@dataclass(frozen=True, slots=True)
class CallWrite:
    """One call snapshot to persist with the journal events it adds over the stored state."""

    record: CallRecord
    events: Sequence[NewEvent]


@dataclass(frozen=True, slots=True)
class WrittenCalls:
    """What one batch transaction wrote: the calls not skipped by the version guard, and the
    journal events committed with them (in commit order; already handed to the hub)."""

    call_ids: frozenset[str]
    events: Sequence[StoredEvent]


class CallBatchStore(Protocol):
    """Writes prepared call batches at driver speed (calls, call parameters and journal
    events in one transaction) and reads back the stored records the writer does not hold."""

    async def write(self, batch: Sequence[CallWrite]) -> WrittenCalls:
        """Upsert every record (version-guarded) and append the events of the written ones."""
        ...

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        """The stored records of *call_ids* with their detail (absent ones left out)."""
        ...


class CallStore(Protocol):
    """Reads call records back for the API."""

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        """Return one call, or ``None`` (also when it belongs to another tenant)."""
        ...

    async def list(
        self,
        *,
        tenant: str | None = None,
        state: CallState | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[CallRecord]:
        """Return calls newest first, after a keyset cursor."""
        ...


# --- tenants and access ----------------------------------------------------------------------


class TenantRepo(Protocol):
    """Tenants inside one unit of work."""

    async def add(self, tenant: Tenant) -> None:
        """Insert; raise ``ConflictError`` when the id is taken."""
        ...

    async def get(self, tenant_id: str) -> Tenant | None:
        """Return one tenant or ``None``."""
        ...

    async def list(
        self, *, only: str | None = None, after: str | None = None, limit: int = 100
    ) -> Sequence[Tenant]:
        """Return tenants ordered by id after *after*; *only* restricts to one tenant."""
        ...

    async def update(self, tenant: Tenant) -> None:
        """Overwrite the mutable fields of an existing tenant."""
        ...

    async def known_pbxs(self) -> frozenset[str]:
        """The PBXs a node has served from this database (their lease rows)."""
        ...

    async def placements(self) -> frozenset[str]:
        """The PBX ids tenants are placed on."""
        ...

    async def place_all(self, from_pbxs: frozenset[str], pbx_id: str) -> int:
        """Move every tenant placed on one of *from_pbxs* to *pbx_id*; how many moved."""
        ...

    async def activity(self, tenant_id: str) -> TenantActivity:
        """The tenant's signed-in seats and calls not ended, as the database records them."""
        ...


class ApiKeyRepo(Protocol):
    """API keys inside one unit of work (hashes only, never plaintext)."""

    async def add(self, key: ApiKey) -> None:
        """Insert a new key."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """Return one key (revoked ones too) or ``None``."""
        ...

    async def list(self, tenant_id: str | None) -> Sequence[ApiKey]:
        """Return a tenant's keys (``None``: the platform keys), newest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> None:
        """Set ``revoked_at`` if not yet set."""
        ...

    async def touch(self, key_id: str, at: datetime, *, unless_after: datetime) -> None:
        """Set ``last_used_at = at`` unless it is already later than *unless_after*."""
        ...

    async def has_active_platform_key(self) -> bool:
        """Say whether any unrevoked platform-admin key exists."""
        ...


class AuditRepo(Protocol):
    """The append-only audit log: there is deliberately no update or delete."""

    async def append(self, entry: AuditEntry) -> None:
        """Add one entry in the current unit of work."""
        ...

    async def list(
        self, *, tenant_id: str | None, before_id: int | None = None, limit: int = 100
    ) -> Sequence[AuditEntry]:
        """Return entries newest first; ``tenant_id=None`` means every tenant."""
        ...


class AccessUnitOfWork(Protocol):
    """One transaction over tenants, keys and the audit log; rolled back unless committed."""

    @property
    def tenants(self) -> TenantRepo:
        """Tenants in this transaction."""
        ...

    @property
    def api_keys(self) -> ApiKeyRepo:
        """API keys in this transaction."""
        ...

    @property
    def audit(self) -> AuditRepo:
        """The audit log in this transaction."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back anything not committed and release the connection."""
        ...

    async def commit(self) -> None:
        """Commit the writes and their audit entries together."""
        ...


class TokenSigner(Protocol):
    """Signs short-lived person tokens (the JWT adapter lives in ccbridge.api.security)."""

    def sign(self, principal: Principal, *, issued_at: datetime, expires_at: datetime) -> str:
        """Return a signed token carrying *principal*."""
        ...
