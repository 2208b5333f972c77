"""Call-parameter detail (legs, offers, transfers, extras) as JSON beside the calls row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ccbridge.domain.calls.model import (
    CallControl,
    CallOffer,
    CallRecord,
    CallSegment,
    CallTransfer,
)

DETAIL_FORMAT = 1


_UTC_TEXT: dict[datetime, str] = {}
"""ISO text of UTC datetimes already spelt: every snapshot of a call repeats its offers' and
legs' times, and a lookup costs a twentieth of ``isoformat``."""


def _t(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:  # another offset keeps its own spelling: not cached
        return value.isoformat()
    text = _UTC_TEXT.get(value)
    if text is None:
        text = value.isoformat()
        if len(_UTC_TEXT) >= 65_536:
            _UTC_TEXT.clear()
        _UTC_TEXT[value] = text
    return text


def _p(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def detail_to_json(rec: CallRecord) -> dict[str, Any]:
    """Write the per-leg history of a record field by field."""
    return {
        "format": DETAIL_FORMAT,
        "offers": [
            {
                "agent_no": o.agent_no,
                "agent_interface": o.agent_interface,
                "skill_group": o.skill_group,
                "at": _t(o.at),
            }
            for o in rec.offers
        ],
        "segments": [
            {
                "seq": s.seq,
                "agent_no": s.agent_no,
                "agent_interface": s.agent_interface,
                "skill_group": s.skill_group,
                "caller": s.caller,
                "callee": s.callee,
                "via": s.via,
                "started_at": _t(s.started_at),
                "ended_at": _t(s.ended_at),
            }
            for s in rec.segments
        ],
        "transfers": [_transfer_json(t) for t in rec.transfers],
        "transfer_intent": None
        if rec.transfer_intent is None
        else _transfer_json(rec.transfer_intent),
        "direction": rec.direction,
        "controls": [
            {"kind": c.kind, "at": _t(c.at), "agent_no": c.agent_no, "detail": list(c.detail)}
            for c in rec.controls
        ],
        "pending_target": rec.pending_target,
        "merged_into": rec.merged_into,
        "extras": [[k, v] for k, v in rec.extras],
        "learned_at": _t(rec.learned_at),
    }


def with_detail(rec: CallRecord, detail: dict[str, Any] | None) -> CallRecord:
    """Attach stored detail to a record rebuilt from the calls row."""
    if not detail or detail.get("format") != DETAIL_FORMAT:
        return rec
    return replace(
        rec,
        offers=tuple(
            CallOffer(o["agent_no"], o["agent_interface"], o["skill_group"], _p(o["at"]))  # type: ignore[arg-type]
            for o in detail["offers"]
        ),
        segments=tuple(
            CallSegment(
                seq=s["seq"],
                agent_no=s["agent_no"],
                agent_interface=s["agent_interface"],
                skill_group=s["skill_group"],
                caller=s["caller"],
                callee=s["callee"],
                via=s["via"],
                started_at=_p(s["started_at"]),  # type: ignore[arg-type]
                ended_at=_p(s["ended_at"]),
            )
            for s in detail["segments"]
        ),
        transfers=tuple(_transfer(t) for t in detail["transfers"]),
        transfer_intent=_transfer(detail["transfer_intent"])
        if detail.get("transfer_intent")
        else None,
        direction=detail.get("direction", "inbound"),
        controls=tuple(
            CallControl(
                c["kind"],
                _p(c["at"]),  # type: ignore[arg-type]
                c["agent_no"],
                tuple((str(k), str(v)) for k, v in c.get("detail", [])),
            )
            for c in detail.get("controls", [])
        ),
        pending_target=detail.get("pending_target"),
        merged_into=detail.get("merged_into"),
        extras=tuple((str(k), str(v)) for k, v in detail.get("extras", [])),
        learned_at=_p(detail.get("learned_at")),
    )


def _transfer_json(t: CallTransfer) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "at": _t(t.at),
        "from_agent_no": t.from_agent_no,
        "target": t.target,
        "to_agent_no": t.to_agent_no,
        "to_group": t.to_group,
        "to_number": t.to_number,
        "from_group": t.from_group,
    }


def _transfer(t: dict[str, Any]) -> CallTransfer:
    return CallTransfer(
        t["kind"],
        _p(t["at"]),  # type: ignore[arg-type]
        t["from_agent_no"],
        t["target"],
        to_agent_no=t.get("to_agent_no"),
        to_group=t.get("to_group"),
        to_number=t.get("to_number"),
        from_group=t.get("from_group"),
    )
