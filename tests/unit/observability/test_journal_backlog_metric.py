"""The journal backlog metric reads the call writer: it grows while writes fail, and drains."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.domain.calls.model import CallRecord
from ccbridge.observability.metrics import Metrics

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class _FlakyStore:
    """Refuses writes until told the database is back."""

    def __init__(self) -> None:
        self.up = False
        self.written: list[str] = []

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        if not self.up:
            raise ConnectionResetError("database away")
        self.written += [r.call_id for r in records]
        return len(records)


def _backlog(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("ccbridge_journal_backlog")


async def test_backlog_grows_while_the_store_refuses_and_drains_after() -> None:
    store = _FlakyStore()
    writer = CallBatchWriter(store, retry_initial=0.001, retry_max=0.001)
    metrics = Metrics()
    metrics.events.watch_journal(lambda: writer.pending)
    assert _backlog(metrics) == 0

    for n in range(3):
        writer.submit(CallRecord(call_id=f"c{n}", started_at=T0))
    with pytest.raises(ConnectionResetError):
        await writer.flush()  # refused: the snapshots stay held

    assert _backlog(metrics) == 3
    store.up = True
    await writer.flush()
    assert _backlog(metrics) == 0
    assert sorted(store.written) == ["c0", "c1", "c2"]
