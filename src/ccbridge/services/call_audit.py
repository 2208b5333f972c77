"""``ccbridge calls audit``: ccbridge's calls against the PBX's records for a period."""

from __future__ import annotations

from datetime import datetime

from ccbridge.domain.calls.audit import CallDifference, audit_calls
from ccbridge.domain.calls.pbx_records import PbxCall, assemble_calls
from ccbridge.services.call_backfill import PbxRecordSource, StoredCalls


async def audit_period(
    source: PbxRecordSource, stored: StoredCalls, start: datetime, end: datetime
) -> tuple[list[PbxCall], list[CallDifference]]:
    """The PBX's tenant calls that started in ``[start, end)`` and every difference found."""
    entries = await source.read_since(start)
    calls = [c for c in assemble_calls(entries) if c.tenant and start <= c.started_at < end]
    records = await stored.stored([c.linkedid for c in calls])
    return calls, audit_calls(calls, records)
