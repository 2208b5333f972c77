"""Request and response bodies of the IVR API (the flow document itself is ivr_format's)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from ccbridge.domain.ivr.diff import FlowDiff
from ccbridge.domain.ivr.engine import Action
from ccbridge.domain.ivr.simulator import Simulation
from ccbridge.domain.ivr.validation import FlowError
from ccbridge.services.ivr_ports import FlowRecord, IvrCallRecord, PromptRecord, RevisionRecord

FlowId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Message = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class FlowErrorOut(BaseModel):
    """One fault of a flow, by JSON path."""

    path: str
    code: str
    message: str

    @classmethod
    def of(cls, e: FlowError) -> FlowErrorOut:
        """Build from the domain error."""
        return cls(path=e.path, code=e.code, message=e.message)


class ValidationOut(BaseModel):
    """Validation result: ``valid`` and every fault."""

    valid: bool
    node_count: int
    errors: list[FlowErrorOut]


class FlowOut(BaseModel):
    """A flow with its current draft."""

    flow_id: str
    name: str
    draft_version: int
    updated_at: datetime
    updated_by: str
    draft: dict[str, Any]

    @classmethod
    def of(cls, r: FlowRecord) -> FlowOut:
        """Build from the record."""
        return cls(
            flow_id=r.flow_id,
            name=r.name,
            draft_version=r.draft_version,
            updated_at=r.updated_at,
            updated_by=r.updated_by,
            draft=r.draft,
        )


class PublishIn(BaseModel):
    """Publish the draft (or roll back) with a message, now or at ``effective_at``."""

    model_config = ConfigDict(extra="forbid")

    message: Message
    effective_at: AwareDatetime | None = None
    """Default: now for platform admins; the next working day, same time, for tenant roles."""


class RevisionOut(BaseModel):
    """One immutable revision."""

    revision: int
    author: str
    message: str
    created_at: datetime
    effective_at: datetime
    activated_at: datetime | None
    rollback_of: int | None
    document: dict[str, Any] | None = None

    @classmethod
    def of(cls, r: RevisionRecord, *, with_document: bool = False) -> RevisionOut:
        """Build from the record."""
        return cls(
            revision=r.revision,
            author=r.author,
            message=r.message,
            created_at=r.created_at,
            effective_at=r.effective_at,
            activated_at=r.activated_at,
            rollback_of=r.rollback_of,
            document=r.document if with_document else None,
        )


class NodeChangeOut(BaseModel):
    """A node added, removed or changed (with the fields that differ)."""

    node: str
    change: str
    fields: list[str]


class DiffOut(BaseModel):
    """Structural diff of two revisions."""

    nodes: list[NodeChangeOut]
    settings: list[str]
    layout_changed: bool

    @classmethod
    def of(cls, d: FlowDiff) -> DiffOut:
        """Build from the domain diff."""
        return cls(
            nodes=[NodeChangeOut(node=c.node, change=c.change, fields=c.fields) for c in d.nodes],
            settings=d.settings,
            layout_changed=d.layout_changed,
        )


class SimulateIn(BaseModel):
    """Inputs of an offline run: keys per prompt, the time, the caller, CRM answers by node."""

    model_config = ConfigDict(extra="forbid")

    digits: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[0-9*#]{0,32}$")]], Field(max_length=100)
    ] = []
    at: AwareDatetime | None = None
    caller: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{0,32}$")] = ""
    did: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{0,32}$")] = ""
    tier: Annotated[str, StringConstraints(max_length=32)] = ""
    revision: Annotated[int, Field(ge=1)] | None = None
    """Run this revision; default: the draft."""
    lookups: dict[str, dict[str, str]] = {}


class SimulateOut(BaseModel):
    """The path taken, each action and step, and how the call ended."""

    path: list[str]
    actions: list[dict[str, Any]]
    steps: list[dict[str, str | None]]
    route: str
    target: str
    reason: str
    variables: dict[str, str]

    @classmethod
    def of(cls, s: Simulation) -> SimulateOut:
        """Build from the simulation."""
        return cls(
            path=s.path,
            actions=[action_dict(a) for a in s.actions],
            steps=[st.as_dict() for st in s.steps],
            route=s.result.route.value,
            target=s.result.target,
            reason=s.result.reason,
            variables=s.variables,
        )


def action_dict(action: Action) -> dict[str, Any]:
    """Render one engine action as ``{"action": "ask", …fields}``."""
    out: dict[str, Any] = {"action": type(action).__name__.lower()}
    for key, value in asdict(action).items():
        out[key] = value.value if hasattr(value, "value") else value
    return out


class PromptOut(BaseModel):
    """An uploaded prompt."""

    prompt_id: str
    bytes: int
    duration_ms: int
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, p: PromptRecord) -> PromptOut:
        """Build from the record."""
        return cls(
            prompt_id=p.prompt_id,
            bytes=p.bytes,
            duration_ms=p.duration_ms,
            created_at=p.created_at,
            created_by=p.created_by,
        )


class IvrCallOut(BaseModel):
    """One call's walk through a flow, for reports."""

    uniqueid: str
    flow_id: str
    revision: int
    caller: str
    started_at: datetime
    ended_at: datetime
    path: list[str]
    steps: list[dict[str, str | None]]
    route: str
    target: str
    reason: str
    drop_off_node: str | None

    @classmethod
    def of(cls, r: IvrCallRecord) -> IvrCallOut:
        """Build from the record."""
        return cls(
            uniqueid=r.uniqueid,
            flow_id=r.flow_id,
            revision=r.revision,
            caller=r.caller,
            started_at=r.started_at,
            ended_at=r.ended_at,
            path=r.path,
            steps=r.steps,
            route=r.route,
            target=r.target,
            reason=r.reason,
            drop_off_node=r.drop_off_node,
        )
