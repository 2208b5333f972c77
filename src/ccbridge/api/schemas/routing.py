"""Inbound numbers, routing policies and call-back requests as the HTTP API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ccbridge.api.schemas.seats import AgentNo, GroupName, SafeText
from ccbridge.domain.acd.routing import MaxWaitAction
from ccbridge.domain.callbacks import CallbackRequest, CallbackStatus
from ccbridge.domain.inbound_numbers import InboundNumber, NumberKind, TargetType
from ccbridge.services.routing_ports import PolicyRecord

FlowOrGroupId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")]
Caller = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]


class NumberAssignIn(BaseModel):
    """Assign a number to the tenant (platform admin)."""

    model_config = ConfigDict(extra="forbid")

    description: Annotated[SafeText, Field(max_length=200)] = ""


class NumberTargetIo(BaseModel):
    """One of the tenant's IVR flows or skill groups."""

    model_config = ConfigDict(extra="forbid")

    type: TargetType = Field(description="`flow` (an IVR flow id) or `group` (a skill group)")
    id: FlowOrGroupId


class NumberMapIn(BaseModel):
    """Where the number's calls go; ``null`` clears it (the tenant's IVR flow listing the
    number, if any, answers; else the call is unrouted)."""

    model_config = ConfigDict(extra="forbid")

    target: NumberTargetIo | None


class NumberOut(BaseModel):
    """A number assigned to the tenant."""

    number: str
    kind: NumberKind
    target: NumberTargetIo | None
    description: str
    assigned_at: datetime
    assigned_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, n: InboundNumber) -> NumberOut:
        """Map from the domain record."""
        return cls(
            number=n.number,
            kind=n.kind,
            target=NumberTargetIo(type=n.target.type, id=n.target.id) if n.target else None,
            description=n.description,
            assigned_at=n.assigned_at,
            assigned_by=n.assigned_by,
            updated_at=n.updated_at,
            updated_by=n.updated_by,
        )


class SplitShareIo(BaseModel):
    """One group's share of the weighted split."""

    model_config = ConfigDict(extra="forbid")

    group: GroupName
    weight: int = Field(ge=1, le=1000, description="Relative: 70 and 30 split 70 %/30 %")


class VipCrmIo(BaseModel):
    """Ask the tenant's CRM (through the egress guard) whether the caller is a VIP."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="GET with `?caller=<number>`; JSON object")
    field: str = Field("vip", pattern=r"^[A-Za-z0-9_]{1,64}$")
    values: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,32}$")]] = Field(
        default_factory=lambda: ["1", "true", "yes", "vip"], max_length=10
    )
    timeout_ms: int = Field(800, ge=100, le=3000)


class VipIo(BaseModel):
    """Callers on the list, or marked by the CRM, queue with this priority (``QUEUE_PRIO``)."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=1, le=100)
    callers: list[Caller] = Field(default_factory=list, max_length=10_000)
    crm: VipCrmIo | None = None


class StickyIo(BaseModel):
    """Ring a repeat caller's owner agent (the last who answered them) first."""

    model_config = ConfigDict(extra="forbid")

    ring_seconds: int = Field(ge=5, le=120, description="Then the group (the fallback time)")
    lookback_days: int = Field(30, ge=1, le=365)


class OverflowIo(BaseModel):
    """After ``after_seconds`` in the first group, move the caller to ``group``."""

    model_config = ConfigDict(extra="forbid")

    after_seconds: int = Field(ge=5, le=3600)
    group: GroupName


class MaxWaitIo(BaseModel):
    """After ``seconds`` in queues: voicemail (``mailbox``) or a call-back request."""

    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=10, le=3600)
    action: MaxWaitAction
    mailbox: str = Field("", pattern=r"^$|^[0-9A-Za-z_-]{1,32}(@[0-9A-Za-z_-]{1,32})?$")


class RoutingPolicyIn(BaseModel):
    """The policy of calls routed to one skill group; every part is optional."""

    model_config = ConfigDict(extra="forbid")

    split: list[SplitShareIo] = Field(default_factory=list, max_length=10)
    languages: dict[Language, GroupName] = Field(
        default_factory=dict, max_length=20, description="Caller language → skill group"
    )
    vip: VipIo | None = None
    sticky: StickyIo | None = None
    overflow: OverflowIo | None = None
    max_wait: MaxWaitIo | None = None


class RoutingPolicyOut(RoutingPolicyIn):
    """A stored policy with its version."""

    model_config = ConfigDict(extra="ignore")

    group: str
    version: int
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, record: PolicyRecord) -> RoutingPolicyOut:
        """Map from the stored record."""
        return cls.model_validate(
            {
                **record.document,
                "group": record.skill_group,
                "version": record.version,
                "updated_at": record.updated_at,
                "updated_by": record.updated_by,
            }
        )


class CallbackOut(BaseModel):
    """A caller who waited the maximum time and asked to be called back, and how far the
    call-back has got (``requested`` → ``dialing`` → ``connected``/``failed``/``cancelled``)."""

    id: str
    caller: str
    did: str
    skill_group: str
    call_id: str = Field(description="The caller's original call")
    waited_seconds: int
    requested_at: datetime
    status: CallbackStatus
    attempts: int = Field(description="Call-back attempts started so far")
    agent_no: str | None = Field(description="工号 of the agent of the current or last attempt")
    attempt_call_id: str | None = Field(description="The call of the current or last attempt")
    updated_at: datetime | None
    reason: str | None = Field(
        description="`no_answer` after an unanswered attempt, or who cancelled"
    )

    @classmethod
    def of(cls, r: CallbackRequest) -> CallbackOut:
        """Map from the stored request."""
        return cls(
            id=r.id,
            caller=r.caller,
            did=r.did,
            skill_group=r.skill_group,
            call_id=r.call_id,
            waited_seconds=r.waited_seconds,
            requested_at=r.requested_at,
            status=r.status,
            attempts=r.attempts,
            agent_no=r.agent_no,
            attempt_call_id=r.attempt_call_id or None,
            updated_at=r.updated_at,
            reason=r.reason,
        )


class CallbackDialIn(BaseModel):
    """Which agent calls the caller back (an agent may only name itself)."""

    model_config = ConfigDict(extra="forbid")

    agent_no: AgentNo = Field(description="工号 of the agent whose phone rings first")
