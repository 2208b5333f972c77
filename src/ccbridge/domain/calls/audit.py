"""Compare ccbridge's calls with the PBX's own records (the check before a bill is issued)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.pbx_records import PbxCall
from ccbridge.domain.calls.tracker import agent_no_from_member

MISSING = "missing"
"""The ``field`` of a difference where ccbridge has no record of the call at all."""


@dataclass(frozen=True, slots=True)
class CallDifference:
    """One way ccbridge's record of a call differs from the PBX's."""

    call_id: str
    tenant: str | None
    field: str
    pbx: str | None
    ccbridge: str | None


def _outcome(rec: CallRecord) -> str:
    if rec.answered_at is not None:
        return "answered"
    if rec.state is CallState.ABANDONED:
        return "abandoned"
    return "unanswered" if rec.state.is_final else "in_progress"


def _expected(call: PbxCall) -> dict[str, str | None]:
    agent = agent_no_from_member(call.agent_member, "") if call.agent_member else None
    return {
        "tenant": call.tenant,
        "skill_group": call.queue,
        "agent_no": agent or None,
        "caller": call.caller,
        "callee": call.callee,
        "outcome": call.outcome,
    }


def _actual(rec: CallRecord) -> dict[str, str | None]:
    first_agent = rec.segments[0].agent_no if rec.segments else rec.agent_no
    return {
        "tenant": rec.tenant,
        "skill_group": rec.skill_group,
        "agent_no": first_agent,
        "caller": rec.caller,
        "callee": rec.callee,
        "outcome": _outcome(rec),
    }


def audit_calls(
    pbx_calls: Iterable[PbxCall], records: Mapping[str, CallRecord]
) -> list[CallDifference]:
    """Every difference, call by call in the PBX's order; an empty list means they agree."""
    out: list[CallDifference] = []
    for call in pbx_calls:
        rec = records.get(call.linkedid)
        if rec is None:
            out.append(CallDifference(call.linkedid, call.tenant, MISSING, call.outcome, None))
            continue
        actual = _actual(rec)
        for name, want in _expected(call).items():
            if want is not None and actual[name] != want:
                out.append(CallDifference(call.linkedid, call.tenant, name, want, actual[name]))
    return out
