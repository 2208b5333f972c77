"""Ports: what the application layer needs from adapters, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ccbridge.domain.calls.model import CallRecord, CallState


class CallSink(Protocol):
    """Takes changed call records off the event path (batched persistence)."""

    def submit(self, record: CallRecord) -> None:
        """Queue a record for writing; never blocks."""
        ...


class CallStore(Protocol):
    """Reads call records back for the API."""

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        """Return one call, or ``None`` (also when it belongs to another tenant)."""
        ...

    async def list(
        self,
        *,
        tenant: str | None = None,
        state: CallState | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> Sequence[CallRecord]:
        """Return calls newest first, after a keyset cursor."""
        ...
