"""Port for a tenant's claimed phones (implemented in ccbridge.db.repositories.endpoints)."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from typing import Protocol

from ccbridge.domain.endpoints import Endpoint
from ccbridge.errors import ConflictError


class EndpointClaimedError(ConflictError):
    """The phone is already claimed; the message never says by which tenant."""


class EndpointInUseError(ConflictError):
    """The endpoint is an agent's default phone or carries a signed-in seat."""


class EndpointRepo(Protocol):
    """Endpoints: each name and interface is claimed by at most one tenant (the DB enforces it)."""

    async def create(self, endpoint: Endpoint) -> Endpoint:
        """Claim the phone; ``EndpointClaimedError`` if its name or interface is taken anywhere."""
        ...

    async def find(self, tenant_id: str, selector: str) -> Endpoint | None:
        """Return the tenant's endpoint with this id, name or interface, or None."""
        ...

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[Endpoint]:
        """Return the tenant's endpoints ordered by name, strictly after the cursor ``after``."""
        ...

    async def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        """Release the phone; ``EndpointInUseError`` while an agent or open seat uses it."""
        ...

    async def owners(self, interfaces: Collection[str]) -> dict[str, str]:
        """Map each claimed interface among *interfaces* to the tenant that owns it."""
        ...
