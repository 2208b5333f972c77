"""Event envelope and payloads (the JSON Schemas in docs/events/schemas are generated here).

Schema rule: additive only. A field is never removed, renamed or retyped; new fields are
optional. ``tests/contract/test_event_schemas.py`` compares with the committed schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ccbridge.domain.journal.types import EventType


class CallParams(BaseModel):
    """The four contract variables (工号, 技能组, 主叫, 被叫)."""

    model_config = ConfigDict(extra="allow")

    agent_no: str | None = Field(description="工号: the agent of this leg (null before answer)")
    skill_group: str | None = Field(description="技能组: the queue of this leg")
    caller: str | None = Field(description="主叫: E.164 when parseable, else as the PBX gave it")
    callee: str | None = Field(description="被叫: E.164 when parseable, else as the PBX gave it")
    caller_original: str | None = Field(description="主叫 exactly as the PBX reported it")
    callee_original: str | None = Field(description="被叫 exactly as the PBX reported it")


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")

    extras: dict[str, Any] = Field(
        default_factory=dict, description="Extra variables the tenant switched on (CPI-02)"
    )
    sandbox: bool | None = Field(default=None, description="True on sample events (CPI-03)")


class CallData(_Data):
    """Fields every call event carries."""

    call_id: str = Field(description="Asterisk Linkedid: stable across legs and transfers")
    state: str
    params: CallParams
    reconstructed: bool | None = Field(
        default=None,
        description="True when ccbridge learned this step after the fact (an AMI gap closed "
        "from the PBX's own records or a resync); absent on events from the live stream",
    )
    learned_at: str | None = Field(
        default=None,
        description="When a reconstructed step was learned (ISO 8601); occurred_at stays the "
        "time it happened on the PBX",
    )


class CallQueuedData(CallData):
    """``call.queued``: the caller entered a skill group's queue."""

    queued_at: str | None = None


class CallRingingData(CallData):
    """``call.ringing``: an agent is being rung (screen-pop)."""

    agent_interface: str | None = None


class CallAnsweredData(CallData):
    """``call.answered``: an agent answered from the queue."""

    leg: int | None = Field(default=None, description="1-based agent leg number")


class Transfer(BaseModel):
    """How the call was handed on."""

    kind: Literal["blind", "attended", "threeway"]
    from_agent_no: str | None
    target: str
    from_group: str | None = Field(default=None, description="技能组 of the leg handing on")
    to_agent_no: str | None = Field(
        default=None, description="工号 the call was handed to (transfers started over the API)"
    )
    to_group: str | None = Field(default=None, description="Skill group the call was re-queued to")
    to_number: str | None = Field(default=None, description="E.164 number it was transferred to")


class CallTransferredData(CallData):
    """``call.transferred``: params are the new leg's (the agent who has the call now)."""

    transfer: Transfer


class Control(BaseModel):
    """The call-control step behind the event."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["held", "resumed", "conferenced", "returned_to_ivr"]
    agent_no: str | None = Field(description="工号 of the agent who asked for it")


class CallControlData(CallData):
    """``call.held`` / ``call.resumed`` / ``call.conferenced`` / ``call.returned_to_ivr``:
    params are the call's four variables as they stand (unchanged by the step)."""

    control: Control


class Leg(CallParams):
    """One agent leg in the final summary."""

    leg: int
    via: str


class CallEndedData(CallData):
    """``call.ended`` / ``call.abandoned``: the summary with every leg's four variables."""

    end_reason: str | None = None
    legs: list[Leg] = Field(default_factory=list)
    answered: bool | None = None


class RecordingReadyData(_Data):
    """``recording.ready``: a recording of the call is stored."""

    call_id: str
    params: CallParams
    recording_id: str
    url: str | None = None
    duration_s: float | None = None


class RecordingMissingData(_Data):
    """``recording.missing``: the tenant's policy records this call, but no file exists (it
    was answered while ccbridge's AMI link was down, and the PBX recorded nothing either)."""

    call_id: str
    params: CallParams
    recording_id: str = Field(description="The flagged row (status ``missing``)")
    reason: str


class AgentStateChangedData(_Data):
    """``agent.state_changed``: a seat changed state (sign-in, ready, not-ready, break…)."""

    agent_no: str
    session_id: str
    state: str
    previous_state: str | None
    reason: str


class WrapupSubmittedData(_Data):
    """``wrapup.submitted``: the agent's disposition after a call (CPI-08)."""

    call_id: str
    params: CallParams
    disposition: str
    notes: str
    fields: dict[str, str]
    submitted_by: str


class CallbackRequestedData(_Data):
    """``callback.requested``: a caller waited the routing policy's maximum time and asked to
    be called back (``call_id`` is the caller's channel, the conversation's Linkedid)."""

    request_id: str
    caller: str
    did: str
    skill_group: str
    waited_seconds: int


class CallbackStatusData(_Data):
    """``callback.dialing`` / ``.connected`` / ``.failed`` / ``.cancelled``: a call-back
    request changed status (``call_id`` is the caller's original call). ``callback.failed``
    with ``final: false`` is one unanswered attempt; the request is ``requested`` again."""

    request_id: str
    status: Literal["requested", "dialing", "connected", "failed", "cancelled"]
    attempts: int
    agent_no: str | None = Field(description="工号 of the agent of this attempt")
    attempt_call_id: str | None = Field(description="The call of this attempt")
    reason: str | None = Field(description="`no_answer`, or who cancelled")
    final: bool


class FloorAlertData(_Data):
    """``floor.alert``: a floor rule is broken (raised once per episode; docs/wallboard.md)."""

    id: str = Field(description="The alert; its floor.alert_cleared carries the same id")
    rule: Literal[
        "not_ready_too_long",
        "break_too_long",
        "too_many_on_break",
        "break_count_exceeded",
        "calls_waiting_over",
        "service_level_under",
    ]
    severity: Literal["warning", "critical"]
    agent_no: str | None = Field(description="工号 for the agent rules, else null")
    skill_group: str | None = Field(description="技能组 for the queue rules, else null")
    value: int | float = Field(description="What was measured when the alert was raised")
    threshold: int = Field(description="The tenant's threshold, in the rule's unit")
    started_at: datetime = Field(description="When the rule was first found broken")
    message: str


class FloorAlertClearedData(FloorAlertData):
    """``floor.alert_cleared``: the episode of an earlier ``floor.alert`` (same ``id``) ended."""

    cleared_at: datetime


DATA_MODELS: dict[EventType, type[BaseModel]] = {
    EventType.CALL_QUEUED: CallQueuedData,
    EventType.CALL_RINGING: CallRingingData,
    EventType.CALL_ANSWERED: CallAnsweredData,
    EventType.CALL_TRANSFERRED: CallTransferredData,
    EventType.CALL_HELD: CallControlData,
    EventType.CALL_RESUMED: CallControlData,
    EventType.CALL_CONFERENCED: CallControlData,
    EventType.CALL_RETURNED_TO_IVR: CallControlData,
    EventType.CALL_ENDED: CallEndedData,
    EventType.CALL_ABANDONED: CallEndedData,
    EventType.RECORDING_READY: RecordingReadyData,
    EventType.RECORDING_MISSING: RecordingMissingData,
    EventType.AGENT_STATE_CHANGED: AgentStateChangedData,
    EventType.WRAPUP_SUBMITTED: WrapupSubmittedData,
    EventType.CALLBACK_REQUESTED: CallbackRequestedData,
    EventType.CALLBACK_DIALING: CallbackStatusData,
    EventType.CALLBACK_CONNECTED: CallbackStatusData,
    EventType.CALLBACK_FAILED: CallbackStatusData,
    EventType.CALLBACK_CANCELLED: CallbackStatusData,
    EventType.FLOOR_ALERT: FloorAlertData,
    EventType.FLOOR_ALERT_CLEARED: FloorAlertClearedData,
}


class EventOut(BaseModel):
    """The envelope: identical on poll, SSE and webhooks."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Idempotency id (UUID); also the webhook-id and SSE id source")
    cursor: str = Field(description="Per-tenant monotonic position; pass as ?after=")
    type: EventType
    schema_version: int
    tenant: str
    call_id: str | None
    occurred_at: datetime = Field(description="When it happened at the PBX")
    recorded_at: datetime = Field(description="When the journal committed it")
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of events after ``after``; resume with ``next_after``."""

    items: list[EventOut]
    next_after: str = Field(description="Cursor to pass as ?after= next time")


def envelope_schema(event_type: EventType) -> dict[str, Any]:
    """JSON Schema of one event type: the envelope with its typed ``data``."""
    data_model = DATA_MODELS[event_type]
    data_schema = data_model.model_json_schema()
    defs = data_schema.pop("$defs", {})
    env = EventOut.model_json_schema()
    env.pop("$defs", None)
    env["title"] = event_type.value
    env["properties"]["type"] = {"const": event_type.value, "type": "string"}
    env["properties"]["data"] = data_schema
    if defs:
        env["$defs"] = defs
    env["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return env


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every event type's schema by type name."""
    return {t.value: envelope_schema(t) for t in EventType}
