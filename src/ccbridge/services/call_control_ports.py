"""Ports of call control: the PBX actions it needs, and the store of Idempotency-Key answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.agents.policy import Refused
from ccbridge.errors import ConflictError, InvalidRequestError


@dataclass(frozen=True, slots=True)
class Dial:
    """Where a PBX action sends a party: a ccbridge dialplan place, chosen by kind."""

    place: str
    """``agent`` (an endpoint name), ``queue`` (a queue name), ``outbound`` (digits the trunk
    dials), ``conference`` (a room number)."""
    exten: str


@dataclass(frozen=True, slots=True)
class OriginateCall:
    """A call ccbridge starts: ``endpoint`` rings first, then ``to``."""

    endpoint: str
    """The tenant endpoint's interface (``PJSIP/1001``): never a trunk."""
    to: Dial
    caller_id: str
    call_id: str
    """Becomes the first channel's Uniqueid, hence the call's Linkedid."""
    variables: Mapping[str, str] = field(default_factory=dict)


class CallControlPbx(Protocol):
    """The PBX side of call control (implemented with AMI actions in ``asterisk``)."""

    async def hold(self, customer: str, agent: str) -> None:
        """Customer to music on hold, agent to silence (both leave their bridge)."""
        ...

    async def resume(self, customer: str, agent: str) -> None:
        """Bridge the customer and the agent together again."""
        ...

    async def mute(self, agent: str, muted: bool) -> None:
        """Stop (or restart) the customer hearing the agent."""
        ...

    async def blind_transfer(self, agent: str, to: Dial) -> None:
        """Hand the agent's peer (the customer) to *to*; the agent leaves."""
        ...

    async def attended_transfer(self, agent: str, to: Dial) -> None:
        """Put the customer on hold and ring *to* from the agent's channel (consultation)."""
        ...

    async def cancel_transfer(self, agent: str) -> None:
        """Drop the consultation and go back to the customer."""
        ...

    async def conference(
        self, customer: str, agent: str, room: str, third: Dial, *, caller_id: str
    ) -> None:
        """Move customer and agent into a conference room and ring the third party into it."""
        ...

    async def return_to_ivr(self, customer: str, variables: Mapping[str, str]) -> None:
        """Send the customer to the IVR return place with *variables* set on its channel."""
        ...

    async def originate(self, call: OriginateCall) -> None:
        """Start a call (click-to-call, internal call)."""
        ...

    async def hangup(self, channel: str) -> None:
        """Hang one channel up."""
        ...


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer first given to an Idempotency-Key; ``status`` None while still running."""

    fingerprint: str
    status: int | None
    body: dict[str, Any] | None


class IdempotencyStore(Protocol):
    """Keys of telephony POSTs per tenant, with the answer first given."""

    async def claim(
        self, tenant_id: str, key: str, actor: str, fingerprint: str, at: datetime
    ) -> StoredAnswer | None:
        """Claim *key* for a new request (``None``), or return what it already holds."""
        ...

    async def finish(self, tenant_id: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Store the answer of the claimed request."""
        ...

    async def release(self, tenant_id: str, key: str) -> None:
        """Forget a claim whose request failed, so a retry runs again."""
        ...

    async def purge(self, before: datetime) -> int:
        """Delete keys older than *before*; return how many."""
        ...


class IdempotencyKeyReusedError(InvalidRequestError):
    """The key was used before with a different request (422 naming the header)."""


class IdempotencyInProgressError(ConflictError):
    """The first request with this key has not finished yet (409; retry later)."""


@dataclass(frozen=True, slots=True)
class DialledCall:
    """One agent-dialled call counted against the tenant's outbound caps."""

    call_id: str
    agent_no: str
    at: datetime


class OutboundLedger(Protocol):
    """The agent-dialled calls of the last hour, per tenant (the rate and concurrency caps)."""

    async def admit(
        self,
        tenant_id: str,
        agent_no: str,
        call_id: str,
        at: datetime,
        decide: Callable[[Sequence[DialledCall]], Refused | None],
    ) -> Refused | None:
        """In one step no other admission of the tenant interleaves with: hand *decide* the
        tenant's calls since ``at - 1 h``; unless it refuses, count *call_id*. Returns the
        refusal, or ``None`` when the call was counted."""
        ...
