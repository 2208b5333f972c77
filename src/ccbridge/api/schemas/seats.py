"""Agents, skill groups, leases and seats as the HTTP API shows and accepts them."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calls.numbers import DEFAULT_REGION, check_region, to_e164
from ccbridge.domain.dialing import (
    DEFAULT_ALLOW,
    DEFAULT_DENY,
    MAX_CAP,
    MAX_PREFIXES,
    PREFIX_RE,
    BusinessHours,
    DialPolicy,
    OutboundLimits,
)
from ccbridge.domain.leases.model import SeatKind, SeatLease, SeatUsage
from ccbridge.services.seat_ports import (
    AgentRecord,
    DialPolicyRecord,
    SeatSession,
    SkillGroupRecord,
    SkillLevel,
)


def _no_control_chars(value: str) -> str:
    """Refuse CR, LF and NUL: these strings reach AMI headers and queue member names."""
    if any(ch in value for ch in "\r\n\0"):
        raise ValueError("must not contain CR, LF or NUL")
    return value


SafeText = Annotated[str, AfterValidator(_no_control_chars)]
AgentNo = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")]
# No "-" in group names: queue = "<tenant>-<group>" must map back to one (tenant, group).
GroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")]
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
EndpointRef = Annotated[str, Field(max_length=1024)]
"""One of the tenant's endpoints, by id, name or interface. Free text on purpose: the endpoint
guard, not the schema, decides, so every refusal is audited (ADR 0009)."""


class SkillIn(BaseModel):
    """A skill group membership; level 1 (lowest) .. 10 (highest; rings first)."""

    skill_group: GroupName
    level: int = Field(5, ge=1, le=10)


class AgentIn(BaseModel):
    """Create or replace an agent (坐席人员)."""

    agent_no: AgentNo = Field(description="工号, unique in the tenant")
    name: Annotated[SafeText, Field(min_length=1, max_length=64)]
    certified: bool = False
    interface: EndpointRef = Field(
        description="The agent's phone: one of the tenant's endpoints, by id, name or "
        "interface (e.g. PJSIP/1001); stored as the endpoint's interface"
    )
    seat_kind: SeatKind = SeatKind.INBOUND
    skills: list[SkillIn] = Field(default_factory=list, max_length=32)

    def to_record(self, tenant_id: str, version: int = 1) -> AgentRecord:
        """Map to the stored record."""
        return AgentRecord(
            tenant_id=tenant_id,
            agent_no=self.agent_no,
            name=self.name,
            certified=self.certified,
            interface=self.interface,
            seat_kind=self.seat_kind,
            skills=tuple(SkillLevel(s.skill_group, s.level) for s in self.skills),
            version=version,
        )


class AgentOut(AgentIn):
    """An agent as stored."""

    version: int

    @classmethod
    def of(cls, rec: AgentRecord) -> AgentOut:
        """Map from the stored record."""
        return cls(
            agent_no=rec.agent_no,
            name=rec.name,
            certified=rec.certified,
            interface=rec.interface,
            seat_kind=rec.seat_kind,
            skills=[SkillIn(skill_group=s.skill_group, level=s.level) for s in rec.skills],
            version=rec.version,
        )


class SkillGroupIn(BaseModel):
    """Create a skill group (技能组); its Asterisk queue is ``<tenant>-<name>``."""

    name: GroupName
    strategy: Literal["rrmemory", "ringall", "leastrecent", "fewestcalls", "random"] = "rrmemory"
    description: Annotated[SafeText, Field(max_length=200)] = ""


class SkillGroupOut(SkillGroupIn):
    """A skill group as stored, with its queue name."""

    queue: str

    @classmethod
    def of(cls, rec: SkillGroupRecord) -> SkillGroupOut:
        """Map from the stored record."""
        return cls(
            name=rec.name, strategy=rec.strategy, description=rec.description, queue=rec.queue
        )


class LeaseIn(BaseModel):
    """A seat lease: N seats per kind, a validity window and a monthly price per kind."""

    seats: dict[SeatKind, Annotated[int, Field(ge=0, le=100_000)]]
    valid_from: date
    valid_until: date | None = None
    monthly_price: dict[
        SeatKind, Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    ] = Field(default_factory=dict)
    seat_usage: SeatUsage = Field(
        SeatUsage.PEAK,
        description="How the monthly statement counts seats used: peak (largest number signed "
        "in at once) or seat_days (daily peaks averaged over the month); docs/billing.md",
    )

    @field_validator("valid_until")
    @classmethod
    def _window(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("valid_from")
        if value is not None and isinstance(start, date) and value < start:
            raise ValueError("valid_until is before valid_from")
        return value

    def to_lease(self, tenant_id: str) -> SeatLease:
        """Map to the domain lease (validates the window)."""
        return SeatLease(
            tenant=tenant_id,
            seats=dict(self.seats),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            monthly_price=dict(self.monthly_price),
            seat_usage=self.seat_usage,
        )


DialPrefix = Annotated[str, Field(pattern=PREFIX_RE.pattern, max_length=16)]
DialPrefixes = Annotated[list[DialPrefix], Field(max_length=MAX_PREFIXES)]


Cap = Annotated[int, Field(ge=1, le=MAX_CAP)] | None


class BusinessHoursIn(BaseModel):
    """The tenant-time window in which agents may dial out."""

    start: time = Field(description="Local time (tenant zone) from which dialling is allowed")
    end: time = Field(description="Local time from which it is refused again; after `start`")
    working_days_only: bool = Field(
        True, description="Also refuse on weekends and public holidays (working-day calendar)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHoursIn:
        if not self.start < self.end:
            raise ValueError("start must be before end")
        return self


class OutboundLimitsIn(BaseModel):
    """Toll-fraud limits of agent-dialled calls (click-to-call, transfer out, 3-way)."""

    deny_international: bool = True
    deny_premium_rate: bool = True
    per_seat_per_hour: Cap = 60
    per_tenant_per_hour: Cap = None
    concurrent_per_seat: Cap = 1
    concurrent_per_tenant: Cap = None
    business_hours: BusinessHoursIn | None = None

    def to_limits(self) -> OutboundLimits:
        """Map to the domain limits."""
        hours = self.business_hours
        return OutboundLimits(
            deny_international=self.deny_international,
            deny_premium_rate=self.deny_premium_rate,
            per_seat_per_hour=self.per_seat_per_hour,
            per_tenant_per_hour=self.per_tenant_per_hour,
            concurrent_per_seat=self.concurrent_per_seat,
            concurrent_per_tenant=self.concurrent_per_tenant,
            business_hours=None
            if hours is None
            else BusinessHours(hours.start, hours.end, hours.working_days_only),
        )

    @classmethod
    def of(cls, limits: OutboundLimits) -> OutboundLimitsIn:
        """Build from the domain limits."""
        hours = limits.business_hours
        return cls(
            deny_international=limits.deny_international,
            deny_premium_rate=limits.deny_premium_rate,
            per_seat_per_hour=limits.per_seat_per_hour,
            per_tenant_per_hour=limits.per_tenant_per_hour,
            concurrent_per_seat=limits.concurrent_per_seat,
            concurrent_per_tenant=limits.concurrent_per_tenant,
            business_hours=None
            if hours is None
            else BusinessHoursIn(
                start=hours.start, end=hours.end, working_days_only=hours.working_days_only
            ),
        )


class DialPolicyIn(BaseModel):
    """Where the tenant's calls may be dialled out to: the longest matching prefix decides,
    a tie goes to ``deny``, and a number matching no prefix is refused. Agent-dialled calls
    are also held to ``limits``; numbers are read in ``region``."""

    allow: DialPrefixes = Field(default_factory=lambda: list(DEFAULT_ALLOW))
    deny: DialPrefixes = Field(default_factory=lambda: list(DEFAULT_DENY))
    region: str = Field(
        DEFAULT_REGION,
        min_length=2,
        max_length=2,
        description="ISO 3166 region numbers are read in (national numbers, international)",
    )
    limits: OutboundLimitsIn = Field(default_factory=OutboundLimitsIn)
    caller_id: str | None = Field(
        None,
        max_length=32,
        description="The number agent-dialled calls present (read in `region`, stored E.164); "
        "click-to-call is refused until it is set",
    )

    @model_validator(mode="after")
    def _caller_id_e164(self) -> DialPolicyIn:
        if self.caller_id is not None:
            check_region(self.region)
            e164 = to_e164(self.caller_id, self.region)
            if e164 is None:
                raise ValueError(f"caller_id is not a valid number in region {self.region}")
            self.caller_id = e164
        return self

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        check_region(value)
        return value

    def to_policy(self) -> DialPolicy:
        """Map to the domain policy (duplicates dropped, order kept)."""
        return DialPolicy(
            tuple(dict.fromkeys(self.allow)),
            tuple(dict.fromkeys(self.deny)),
            self.region,
            self.limits.to_limits(),
            self.caller_id,
        )


class DialPolicyOut(DialPolicyIn):
    """The policy in force; ``updated_at`` is null while the default applies."""

    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, record: DialPolicyRecord) -> DialPolicyOut:
        """Build from the stored record."""
        return cls(
            allow=list(record.policy.allow),
            deny=list(record.policy.deny),
            region=record.policy.region,
            limits=OutboundLimitsIn.of(record.policy.limits),
            caller_id=record.policy.caller_id,
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )


class LeaseOut(LeaseIn):
    """A lease as stored."""

    id: str


class StateChangeIn(BaseModel):
    """Change a seat's state: 示闲 ready, 示忙 not_ready (with reason), 小休 break, etc."""

    action: Literal[
        "ready",
        "not_ready",
        "break",
        "cancel_break_request",
        "pause_after_call",
        "sign_out_after_call",
        "cancel_after_call",
    ]
    reason: Annotated[SafeText, Field(max_length=64)] = ""


class SignInIn(BaseModel):
    """签入 options."""

    ready: bool = True
    reason: Annotated[SafeText, Field(max_length=64)] = ""
    endpoint: EndpointRef | None = Field(
        None,
        description="The tenant's endpoint (id or name) the agent sits at today "
        "(default: the agent's own phone)",
    )
    interface: EndpointRef | None = Field(
        None,
        json_schema_extra={"deprecated": True},
        description="Deprecated: the interface of one of the tenant's endpoints; use `endpoint`",
    )

    @model_validator(mode="after")
    def _one_choice(self) -> SignInIn:
        if self.endpoint is not None and self.interface is not None:
            raise ValueError("pass endpoint or interface, not both")
        return self


class SeatOut(BaseModel):
    """A signed-in seat as the wallboard shows it."""

    agent_no: str
    kind: SeatKind
    interface: str
    state: AgentState
    reason: str
    since: datetime
    signed_in_at: datetime
    signed_out_at: datetime | None
    deferred: str | None
    break_requested: bool
    current_call: str | None = None
    queued: str | None = None
    pbx_synced: bool = True

    @classmethod
    def of(
        cls,
        session: SeatSession,
        *,
        current_call: str | None = None,
        queued: str | None = None,
        pbx_synced: bool = True,
    ) -> SeatOut:
        """Map a session to its public shape."""
        st = session.status
        return cls(
            agent_no=session.agent_no,
            kind=session.kind,
            interface=session.interface,
            state=st.state,
            reason=st.reason,
            since=st.since,
            signed_in_at=session.signed_in_at,
            signed_out_at=session.signed_out_at,
            deferred=st.deferred.value if st.deferred else None,
            break_requested=st.break_requested,
            current_call=current_call,
            queued=queued,
            pbx_synced=pbx_synced,
        )


class UtilisationHourOut(BaseModel):
    """Peak concurrent signed-in seats of one kind in one hour against the leased seats."""

    hour: datetime
    kind: SeatKind
    peak: int
    leased: int


class UtilisationOut(BaseModel):
    """Hourly peaks and the month's "seats actually used" per kind (docs/seat-states.md)."""

    hours: list[UtilisationHourOut]
    month_seats_used: dict[SeatKind, int]
