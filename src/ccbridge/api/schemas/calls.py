"""Call resources: the four call variables (工号, 技能组, 主叫, 被叫) plus lifecycle times."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from pydantic import BaseModel, Field

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.errors import CcbridgeError, ErrorCode


class CallOut(BaseModel):
    """One call as the API shows it."""

    call_id: str = Field(description="Asterisk Linkedid: stable across every leg")
    tenant: str | None
    state: CallState
    agent_no: str | None = Field(description="工号: the agent who answered")
    skill_group: str | None = Field(description="技能组: the queue the call entered first")
    caller: str | None = Field(description="主叫: the calling number")
    callee: str | None = Field(description="被叫: the number that was dialled (DID)")
    caller_name: str | None
    started_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None

    @classmethod
    def from_record(cls, rec: CallRecord) -> CallOut:
        """Map a domain record to the public shape."""
        return cls(
            call_id=rec.call_id,
            tenant=rec.tenant,
            state=rec.state,
            agent_no=rec.agent_no,
            skill_group=rec.skill_group,
            caller=rec.caller,
            callee=rec.callee,
            caller_name=rec.caller_name,
            started_at=rec.started_at,
            queued_at=rec.queued_at,
            answered_at=rec.answered_at,
            ended_at=rec.ended_at,
            end_reason=rec.end_reason,
        )


class CallPage(BaseModel):
    """A page of calls, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[CallOut]
    next_cursor: str | None


class InvalidCursorError(CcbridgeError):
    """Raised when a pagination cursor was not produced by this API."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid cursor"


def encode_cursor(rec: CallRecord) -> str:
    """Encode the keyset position after ``rec``."""
    raw = f"{rec.started_at.isoformat()}|{rec.call_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Decode a cursor; raise :class:`InvalidCursorError` naming the field."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, sep, call_id = raw.partition("|")
        started = datetime.fromisoformat(when)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursorError("cursor is not valid", field="query.cursor") from None
    if not sep or not call_id or started.tzinfo is None:
        raise InvalidCursorError("cursor is not valid", field="query.cursor")
    return started, call_id
