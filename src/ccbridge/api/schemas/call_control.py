"""Call-control requests and answers (hold, transfer, 3-way, IVR hand-back, click-to-call)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ccbridge.api.schemas.seats import AgentNo, GroupName
from ccbridge.domain.calls.control import FLOW_NODE_RE, ControlKind, Target, TargetKind

Number = str
_NUMBER = r"^\+?[0-9 ()\-.]{1,40}$"


class TargetIn(BaseModel):
    """Exactly one of an agent (工号), a skill group or an external number."""

    agent_no: AgentNo | None = Field(None, description="Another signed-in agent of the tenant")
    skill_group: GroupName | None = Field(
        None, description="A skill group: the call is re-queued there, four variables kept"
    )
    number: Number | None = Field(
        None,
        pattern=_NUMBER,
        description="An external number (inbound+outbound seats only; the dial policy applies)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetIn:
        given = [v for v in (self.agent_no, self.skill_group, self.number) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of agent_no, skill_group or number")
        return self

    def to_target(self) -> Target:
        """The domain target."""
        if self.agent_no is not None:
            return Target(TargetKind.AGENT, self.agent_no)
        if self.skill_group is not None:
            return Target(TargetKind.GROUP, self.skill_group)
        return Target(TargetKind.NUMBER, self.number or "")


class TransferIn(TargetIn):
    """A transfer of the agent's current call."""

    mode: Literal["blind", "attended"] = Field(
        "blind",
        description="`blind`: the call goes at once; `attended`: the agent consults first "
        "(then `transfer/complete` or `transfer/cancel`)",
    )


class ConferenceIn(TargetIn):
    """The third party of a 3-way call (an agent or a number; not a group)."""


class ReturnToIvrIn(BaseModel):
    """Hand the caller back to the tenant's IVR at a flow node."""

    flow_node: str = Field(
        pattern=FLOW_NODE_RE.pattern,
        description="Id of the node of the tenant's active flow to start at (e.g. a survey)",
    )
    back_to_agent: bool = Field(
        False, description="After the flow ends, ring this agent again (same call)"
    )


class DialIn(BaseModel):
    """Click-to-call: the number to ring after the agent's phone answers, or another agent."""

    number: Number | None = Field(None, pattern=_NUMBER, description="External number")
    agent_no: AgentNo | None = Field(None, description="Another agent: an internal call")

    @model_validator(mode="after")
    def _exactly_one(self) -> DialIn:
        if (self.number is None) == (self.agent_no is None):
            raise ValueError("give exactly one of number or agent_no")
        return self


class CallControlOut(BaseModel):
    """The call acted on (a new call's id for a dial) and whether it is on hold now."""

    call_id: str = Field(description="Linkedid of the call (for a dial: the new call's)")
    action: ControlKind
    held: bool
