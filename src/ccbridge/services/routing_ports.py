"""Ports of inbound routing: numbers, routing policies, call-back requests and call history
(implemented in ``ccbridge.db.repositories.routing``)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.callbacks import CallbackRequest, CallbackStatus
from ccbridge.domain.inbound_numbers import InboundNumber, NumberTarget
from ccbridge.errors import ConflictError


class NumberTakenError(ConflictError):
    """The number is assigned to another tenant; the message never says which."""


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A routing policy as stored: the API's document, its version and who wrote it."""

    tenant_id: str
    skill_group: str
    document: dict[str, Any]
    version: int
    updated_at: datetime
    updated_by: str


class InboundNumberRepo(Protocol):
    """Numbers by tenant; a number belongs to at most one tenant (the database enforces it)."""

    async def add(self, number: InboundNumber) -> None:
        """Store a new assignment; ``NumberTakenError`` if any tenant holds the number."""
        ...

    async def get(self, number: str) -> InboundNumber | None:
        """The number's assignment, whichever tenant holds it."""
        ...

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[InboundNumber]:
        """The tenant's numbers in number order, strictly after the cursor ``after``."""
        ...

    async def set_target(
        self, tenant_id: str, number: str, target: NumberTarget | None, at: datetime, by: str
    ) -> InboundNumber | None:
        """Point the tenant's number at *target*; ``None`` when the tenant has no such number."""
        ...

    async def remove(self, tenant_id: str, number: str) -> bool:
        """Release the tenant's number; ``False`` when it has none such."""
        ...

    async def every(self, pbx: str | None = None) -> builtins.list[InboundNumber]:
        """Every assigned number (the FastAGI route table is built from it); with *pbx*, only
        those of the tenants placed on it."""
        ...


class RoutingPolicyRepo(Protocol):
    """One policy per (tenant, entry skill group)."""

    async def put(
        self, tenant_id: str, skill_group: str, document: dict[str, Any], at: datetime, by: str
    ) -> PolicyRecord:
        """Create or replace the policy; the version goes up by one each time."""
        ...

    async def get(self, tenant_id: str, skill_group: str) -> PolicyRecord | None:
        """The group's policy, if any."""
        ...

    async def list(self, tenant_id: str | None) -> builtins.list[PolicyRecord]:
        """The tenant's policies by group (``None``: every tenant's, for the call-time cache)."""
        ...

    async def delete(self, tenant_id: str, skill_group: str) -> bool:
        """Remove the policy; ``False`` when there was none."""
        ...


class CallbackRepo(Protocol):
    """Call-back requests, newest first per tenant."""

    async def add(self, request: CallbackRequest) -> None:
        """Store one request."""
        ...

    async def list(
        self,
        tenant_id: str,
        before: str | None = None,
        limit: int = 100,
        status: CallbackStatus | None = None,
    ) -> builtins.list[CallbackRequest]:
        """The tenant's requests (of *status*), newest first, strictly older than ``before``."""
        ...

    async def get(self, tenant_id: str, request_id: str) -> CallbackRequest | None:
        """One request of the tenant (another tenant's is ``None``)."""
        ...

    async def dialing(
        self, limit: int = 500, *, pbx: str | None = None
    ) -> builtins.list[CallbackRequest]:
        """Requests with an attempt under way, oldest first; with *pbx*, of its tenants."""
        ...

    async def transition(self, before: CallbackRequest, after: CallbackRequest) -> bool:
        """Store *after* only if the row is still *before* (status and attempts): of two
        concurrent steps exactly one wins. ``False`` when another step came first."""
        ...


class CallHistory(Protocol):
    """Who answered a caller before (sticky routing)."""

    async def last_agent(self, tenant_id: str, caller: str, since: datetime) -> str | None:
        """The agent (工号) who answered the tenant's caller most recently since *since*."""
        ...
