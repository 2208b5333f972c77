"""Wallboard, floor rules, floor alerts and listen/whisper/barge as the HTTP API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ccbridge.api.schemas.seats import AgentNo
from ccbridge.domain.floor.alerts import FloorAlert
from ccbridge.domain.floor.rules import UNITS
from ccbridge.services.floor_rules import TenantFloorRules
from ccbridge.services.supervision import SpyStarted

RuleName = Literal[
    "not_ready_too_long",
    "break_too_long",
    "too_many_on_break",
    "break_count_exceeded",
    "calls_waiting_over",
    "service_level_under",
]
SeverityName = Literal["warning", "critical"]


class RuleIn(BaseModel):
    """One rule as a tenant sets it; the threshold is in the rule's unit."""

    enabled: bool
    threshold: int = Field(
        description="seconds 1–86400, counts 0–10000, percent 0–100 (see the rule's unit)"
    )
    severity: SeverityName


class RuleOut(RuleIn):
    """One rule in force."""

    unit: Literal["seconds", "agents", "breaks", "calls", "percent"]


class FloorRulesIn(BaseModel):
    """A tenant's rules: any subset (the rest keep the platform defaults) and the amber band."""

    rules: dict[str, RuleIn] = Field(
        default_factory=dict, description="By rule name; an unknown name is refused"
    )
    amber_band_pct: int | None = Field(
        default=None,
        description="Points under the service-level target that are still amber (0–100)",
    )
    service_level_min_offered: int | None = Field(
        default=None,
        description="Calls offered today before service_level_under judges a group (0–100000)",
    )

    def overrides(self) -> dict[str, Any]:
        """The request as the domain's overrides document (options left out: not given)."""
        out: dict[str, Any] = {"rules": {k: v.model_dump() for k, v in self.rules.items()}}
        for name in ("amber_band_pct", "service_level_min_offered"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class FloorRulesOut(BaseModel):
    """The rules in force for the tenant."""

    tenant_id: str
    rules: dict[RuleName, RuleOut]
    amber_band_pct: int
    service_level_min_offered: int
    customised: bool = Field(description="False while the platform defaults apply unchanged")
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, value: TenantFloorRules) -> FloorRulesOut:
        """Map the service's value."""
        return cls(
            tenant_id=value.tenant_id,
            rules={
                name.value: RuleOut(
                    enabled=cfg.enabled,
                    threshold=cfg.threshold,
                    severity=cfg.severity.value,
                    unit=UNITS[name],
                )
                for name, cfg in value.rules.rules.items()
            },
            amber_band_pct=value.rules.amber_band_pct,
            service_level_min_offered=value.rules.service_level_min_offered,
            customised=value.customised,
            updated_at=value.updated_at,
            updated_by=value.updated_by,
        )


class FloorAlertOut(BaseModel):
    """An open alert: the payload of its ``floor.alert`` event."""

    id: str
    rule: RuleName
    severity: SeverityName
    agent_no: str | None
    skill_group: str | None
    value: int | float = Field(description="What was measured, in the rule's unit")
    threshold: int
    started_at: datetime
    message: str


class AgentsByState(BaseModel):
    """Signed-in agents of a skill group by state."""

    ready: int
    not_ready: int
    break_: int = Field(alias="break")
    on_call: int
    wrap_up: int

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ServiceLevelOut(BaseModel):
    """Today's service level (the reports' KPI) against the target."""

    value_pct: float | None = Field(description="null while nothing was offered today")
    target_pct: float
    threshold_seconds: int = Field(description="T: answered within this many seconds")
    status: Literal["green", "amber", "red", "none"]


class SkillGroupBoard(BaseModel):
    """One skill group on the wallboard."""

    name: str
    calls_waiting: int
    longest_wait_seconds: int
    offered_today: int
    answered_today: int
    abandoned_today: int
    agents: AgentsByState
    service_level: ServiceLevelOut


class SeatBoard(BaseModel):
    """One signed-in agent on the wallboard."""

    agent_no: str
    name: str
    state: Literal["ready", "not_ready", "break", "on_call", "wrap_up"]
    state_since: datetime
    reason: str
    skill_groups: list[str]
    call_id: str | None


class WallboardOut(BaseModel):
    """The tenant's floor now (docs/wallboard.md)."""

    tenant_id: str
    generated_at: datetime
    skill_groups: list[SkillGroupBoard]
    seats: list[SeatBoard]
    alerts: list[FloorAlertOut]


class SeatAlertOut(BaseModel):
    """A floor alert, open or cleared (newest first in the list)."""

    agent_no: str | None
    code: str = Field(description="The rule in upper case, e.g. NOT_READY_TOO_LONG")
    message: str
    at: datetime = Field(description="When the alert was raised")
    id: str
    rule: RuleName
    severity: SeverityName
    skill_group: str | None
    value: int | float
    threshold: int
    started_at: datetime
    cleared_at: datetime | None

    @classmethod
    def of(cls, alert: FloorAlert) -> SeatAlertOut:
        """Map a stored alert."""
        return cls(
            agent_no=alert.agent_no,
            code=alert.rule.value.upper(),
            message=alert.message,
            at=alert.raised_at,
            id=alert.id,
            rule=alert.rule.value,
            severity=alert.severity.value,
            skill_group=alert.skill_group,
            value=alert.payload()["value"],
            threshold=alert.threshold,
            started_at=alert.started_at,
            cleared_at=alert.cleared_at,
        )


class SpyIn(BaseModel):
    """Listen (``q``), whisper (``qw``) or barge (``qB``) from the supervisor's own seat."""

    mode: Literal["listen", "whisper", "barge"]
    supervisor_agent_no: AgentNo = Field(description="工号 of the supervisor's signed-in seat")


class SpyOut(BaseModel):
    """The supervisor's phone is ringing; answering starts ChanSpy on the agent's call."""

    tenant_id: str
    agent_no: str
    supervisor_agent_no: str
    mode: Literal["listen", "whisper", "barge"]
    options: str = Field(description="The ChanSpy options sent: q, qw or qB")
    call_id: str
    supervisor_interface: str

    @classmethod
    def of(cls, started: SpyStarted) -> SpyOut:
        """Map the service's value."""
        return cls(
            tenant_id=started.tenant_id,
            agent_no=started.agent_no,
            supervisor_agent_no=started.supervisor_agent_no,
            mode=started.mode.value,
            options=started.options,
            call_id=started.call_id,
            supervisor_interface=started.supervisor_interface,
        )
