"""The database availability tracker: down on an outage with its reason, up after a probe."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

from sqlalchemy import exc as sa_exc

from ccbridge.observability.metrics import Metrics
from ccbridge.resilience.availability import DatabaseAvailability
from ccbridge.resilience.backoff import Backoff
from ccbridge.resilience.db_errors import is_database_busy, is_database_unavailable

AT = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


class Db:
    """A database that answers pings unless ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")


def tracker(db: Db, metrics: Metrics) -> DatabaseAvailability:
    return DatabaseAvailability(
        db.ping,
        is_database_unavailable,
        lambda: AT,
        metrics=metrics.db,
        backoff=Backoff(initial=0.001, maximum=0.002),
        is_busy=is_database_busy,
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_an_outage_reported_by_a_component_marks_it_down_with_the_reason() -> None:
    db, metrics = Db(), Metrics()
    availability = tracker(db, metrics)
    assert await availability.check() == (True, {})
    assert availability.report(ConnectionResetError(104, "reset by peer"), "call-writer")
    ok, detail = await availability.check()
    assert not ok
    assert detail == {
        "reason": "ConnectionResetError: [Errno 104] reset by peer",
        "since": AT.isoformat(),
    }
    assert sample(metrics, "ccbridge_db_up") == 0
    assert sample(metrics, "ccbridge_db_errors_total", component="call-writer") == 1


async def test_a_programming_error_is_counted_but_leaves_it_up() -> None:
    db, metrics = Db(), Metrics()
    availability = tracker(db, metrics)
    assert not availability.report(KeyError("bug"), "jobs")
    assert availability.is_up
    assert sample(metrics, "ccbridge_db_errors_total", component="jobs") == 1


async def test_readiness_itself_notices_an_outage() -> None:
    db, metrics = Db(), Metrics()
    availability = tracker(db, metrics)
    db.down = True
    ok, detail = await availability.check()
    assert not ok
    assert str(detail["reason"]).startswith("ConnectionRefusedError")


async def test_the_probe_marks_it_up_once_the_database_answers() -> None:
    db, metrics = Db(), Metrics()
    availability = tracker(db, metrics)
    probe = asyncio.create_task(availability.run())
    try:
        db.down = True
        availability.report(ConnectionRefusedError(111, "refused"), "engine")
        async with asyncio.timeout(5):
            while availability.probes < 3:  # noqa: ASYNC110 (counting the probe's attempts)
                await asyncio.sleep(0.001)
        assert not availability.is_up
        db.down = False
        async with asyncio.timeout(5):
            await availability.wait_up()
        assert await availability.check() == (True, {})
        assert sample(metrics, "ccbridge_db_up") == 1
        assert availability.outages == 1
    finally:
        probe.cancel()


async def test_a_locked_sqlite_file_is_retried_but_is_not_an_outage() -> None:
    db, metrics = Db(), Metrics()
    availability = tracker(db, metrics)
    locked = sa_exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    assert availability.report(locked, "call-writer")  # hold and retry
    assert availability.is_up  # but /readyz stays ready: the database is there
