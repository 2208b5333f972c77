"""Call-back requests: a caller who waited the maximum time leaves one instead of hanging on;
each is stored for the tenant's agents and journalled (``callback.requested``) for its CRM."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.services.routing_ports import CallbackRepo, CallbackRequest

log = structlog.get_logger(__name__)


class EventWriter(Protocol):
    """The journal's write side (``db.journal.SqlJournal``)."""

    async def write(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append events in a transaction of their own."""
        ...


class CallbackService:
    """Record call-back requests from the dialplan and list them for the tenant."""

    def __init__(
        self,
        repo: CallbackRepo,
        now: Callable[[], datetime],
        journal: EventWriter | None = None,
    ) -> None:
        self._repo = repo
        self._now = now
        self._journal = journal

    def use_journal(self, journal: EventWriter) -> None:
        """Journal requests from now on (the composition root builds the journal later)."""
        self._journal = journal

    async def request(
        self,
        tenant_id: str,
        *,
        caller: str,
        did: str,
        skill_group: str,
        call_id: str,
        waited_seconds: int,
    ) -> CallbackRequest:
        """Store the request, then journal ``callback.requested`` (keyed by the request id)."""
        request = CallbackRequest(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            caller=caller,
            did=did,
            skill_group=skill_group,
            call_id=call_id,
            waited_seconds=max(0, waited_seconds),
            requested_at=self._now(),
        )
        await self._repo.add(request)
        if self._journal is not None:
            await self._journal.write(
                [
                    NewEvent(
                        tenant=tenant_id,
                        type=EventType.CALLBACK_REQUESTED,
                        occurred_at=request.requested_at,
                        key=f"callback:{request.id}",
                        call_id=call_id or None,
                        data={
                            "request_id": request.id,
                            "caller": caller,
                            "did": did,
                            "skill_group": skill_group,
                            "waited_seconds": request.waited_seconds,
                        },
                    )
                ]
            )
        log.info("callback_requested", tenant=tenant_id, request_id=request.id, call_id=call_id)
        return request

    async def list(
        self, tenant_id: str, before: str | None, limit: int
    ) -> builtins.list[CallbackRequest]:
        """The tenant's requests, newest first."""
        return await self._repo.list(tenant_id, before=before, limit=limit)
