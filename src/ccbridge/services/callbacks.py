"""Call-back requests: a caller who waited the maximum time leaves one instead of hanging on;
each is stored for the tenant's agents and journalled (``callback.requested``) for its CRM.

Then it is worked (``domain.callbacks``): an agent dials the caller back (click-to-call, one
attempt, ``callback.dialing``); the attempt's call decides ``connected`` or, unanswered, the
next attempt or ``failed``; a supervisor or tenant admin can cancel it. Each change is stored with
a compare-and-set on the status (two agents never dial the same request) and journalled.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import structlog

from ccbridge.domain.access import Principal, Role
from ccbridge.domain.callbacks import (
    MAX_ATTEMPTS,
    CallbackRequest,
    CallbackStateError,
    CallbackStatus,
    cancel,
    settle_attempt,
    start_attempt,
    status_event,
)
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.routing_ports import CallbackRepo

log = structlog.get_logger(__name__)


class EventWriter(Protocol):
    """The journal's write side (``db.journal.SqlJournal``)."""

    async def write(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append events in a transaction of their own."""
        ...


class CallbackNotFoundError(NotFoundError):
    """No such call-back request (or another tenant's)."""


class CallbackConflictError(ConflictError):
    """The request's status does not allow the step, or another step came first (409)."""


Dialler = Callable[[Principal, str, str, str], Awaitable[str]]
"""Click-to-call (who, tenant, agent, number) → the new call's id (``CallControlService.dial``,
with its seat-kind and dial-policy checks)."""
CallLookup = Callable[[str], Awaitable[CallRecord | None]]


class CallbackService:
    """Record call-back requests from the dialplan, list them, and work them to an end."""

    def __init__(
        self,
        repo: CallbackRepo,
        now: Callable[[], datetime],
        journal: EventWriter | None = None,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        pbx: str | None = None,
    ) -> None:
        """*pbx*: only the attempts of the tenants placed on it are settled here (ADR 0033)."""
        self._pbx = pbx
        self._repo = repo
        self._now = now
        self._journal = journal
        self._max_attempts = max_attempts

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
        self,
        tenant_id: str,
        before: str | None,
        limit: int,
        status: CallbackStatus | None = None,
    ) -> builtins.list[CallbackRequest]:
        """The tenant's requests (of *status*), newest first."""
        return await self._repo.list(tenant_id, before=before, limit=limit, status=status)

    async def get(self, tenant_id: str, request_id: str) -> CallbackRequest:
        """One request; another tenant's is 404."""
        request = await self._repo.get(tenant_id, request_id)
        if request is None:
            raise CallbackNotFoundError(f"call-back request {request_id} not found")
        return request

    async def dial(
        self, who: Principal, tenant_id: str, request_id: str, agent_no: str, dialler: Dialler
    ) -> CallbackRequest:
        """The agent calls the caller back: claim the request (``dialing``, one more attempt),
        then click-to-call. A refused or failed dial gives the claim back (no attempt used)."""
        before = await self.get(tenant_id, request_id)
        if who.role is Role.AGENT and who.agent_no != agent_no:
            raise CallbackNotFoundError(f"call-back request {request_id} not found")
        claimed = await self._step(before, lambda r: start_attempt(r, agent_no, "", self._now()))
        try:
            call_id = await dialler(who, tenant_id, agent_no, before.caller)
        except Exception:
            if not await self._repo.transition(claimed, before):
                log.warning("callback_claim_not_returned", request_id=request_id)
            raise
        dialing = replace(claimed, attempt_call_id=call_id)
        if not await self._repo.transition(claimed, dialing):
            # Cancelled while the phones rang: the call is placed, the request stays cancelled.
            log.warning("callback_changed_while_dialling", request_id=request_id, call_id=call_id)
            return await self.get(tenant_id, request_id)
        await self._tell(dialing)
        log.info("callback_dialing", request_id=request_id, call_id=call_id, agent=agent_no)
        return dialing

    async def cancel(self, who: Principal, tenant_id: str, request_id: str) -> CallbackRequest:
        """Nobody will call back (``cancelled``, with who cancelled)."""
        before = await self.get(tenant_id, request_id)
        after = await self._step(before, lambda r: cancel(r, who.actor, self._now()))
        await self._tell(after)
        return after

    async def settle(self, lookup: CallLookup) -> int:
        """Periodic: end every attempt whose call is over (answered → ``connected``; else the
        next attempt, or ``failed``); return how many changed."""
        changed = 0
        for request in await self._repo.dialing(pbx=self._pbx):
            call = await lookup(request.attempt_call_id) if request.attempt_call_id else None
            if call is None or not call.state.is_final:
                continue
            answered = call.answered_at is not None
            after = settle_attempt(request, answered, self._now(), max_attempts=self._max_attempts)
            if await self._repo.transition(request, after):
                await self._tell(after)
                changed += 1
        return changed

    async def _step(
        self, before: CallbackRequest, step: Callable[[CallbackRequest], CallbackRequest]
    ) -> CallbackRequest:
        """Apply a lifecycle step and store it if nobody changed the request meanwhile."""
        try:
            after = step(before)
        except CallbackStateError as exc:
            raise CallbackConflictError(str(exc)) from None
        if not await self._repo.transition(before, after):
            raise CallbackConflictError(f"call-back request {before.id} changed meanwhile")
        return after

    async def _tell(self, after: CallbackRequest) -> None:
        """Journal the change (keyed, so a retry never tells it twice)."""
        if self._journal is not None:
            await self._journal.write([status_event(after)])
