"""In-memory fakes of the call ports, for service and API tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ccbridge.domain.calls.model import CallRecord, CallState


class MemoryCallStore:
    """Implements CallSink and CallStore with a dict; keeps the newest version of each call."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}
        self.submitted: list[CallRecord] = []

    def submit(self, record: CallRecord) -> None:
        self.submitted.append(record)
        old = self.records.get(record.call_id)
        if old is None or old.version <= record.version:
            self.records[record.call_id] = record

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        rec = self.records.get(call_id)
        if rec is None or (tenant is not None and rec.tenant != tenant):
            return None
        return rec

    async def list(
        self,
        *,
        tenant: str | None = None,
        state: CallState | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[CallRecord]:
        rows = sorted(self.records.values(), key=lambda r: (r.started_at, r.call_id), reverse=True)
        rows = [
            r
            for r in rows
            if (tenant is None or r.tenant == tenant)
            and (state is None or r.state is state)
            and (before is None or (r.started_at, r.call_id) < before)
        ]
        return rows[:limit]
