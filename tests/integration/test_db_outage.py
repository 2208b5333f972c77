"""Issue 13 item 1: a PostgreSQL outage during PBX traffic is survived and nothing is lost.

ccbridge reaches the real PostgreSQL through a TCP proxy that cuts the database off (every
connection reset, new ones refused) for 10 s, and for 60 s in the slow run, while the fake PBX
keeps placing calls through FastAGI and AMI. Checked:

- no background loop ends (the webhook dispatcher, whose failing query used to end the
  process, keeps running) and FastAGI keeps routing calls from memory during the cut;
- /readyz answers 503 with the reason while the database is away and 200 after;
- the held call snapshots and their journal events are written once it returns, and the
  journal and call records equal those of a run without the cut: every snapshot the PBX
  produced is written, one at a time, to a second database that is never cut (same calls,
  same events in the same per-call order, no duplicates).

Event data carries the call's ``state`` when its batch was written, which depends on how
snapshots were coalesced (they are, with or without an outage), so ``state`` is left out of
the comparison; every other field, the event ids and the order per call are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import make_url

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT
from ccbridge.bootstrap import (
    build_calendar_service,
    build_ivr_fastagi,
    database_availability,
    database_check,
)
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.time import SystemClock
from ccbridge.observability.health import Readiness
from ccbridge.observability.metrics import Metrics
from ccbridge.resilience.supervise import supervise
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.tenants import AccessService
from ccbridge.settings import AgiSettings, RouteSettings, Settings
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.demo import seed_numbers
from ccbridge.testing.fake_pbx import FakeAsterisk, demo_dids
from tests.integration.conftest import asyncpg_dsn, pg_execute
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.call_writes import JournalledCalls
from tests.support.db_cut_proxy import DbCutProxy
from tests.support.event_rig import build_world

pytestmark = pytest.mark.pg

TIME_SCALE = 0.1
"""PBX seconds per real second: talk 10-30 s becomes 1-3 s."""
CALLS_PER_PBX_MINUTE = 24.0
"""About four calls a real second (fewer on a busy machine)."""
HANG_GUARD = 120.0


class TeeSink:
    """The call sink ccbridge writes to, plus a copy of every snapshot in submission order."""

    def __init__(self, writer: CallBatchWriter) -> None:
        self.writer = writer
        self.snapshots: list[CallRecord] = []

    def submit(self, record: CallRecord) -> None:
        self.snapshots.append(record)
        self.writer.submit(record)


@dataclass
class Seen:
    """What the run observed while the database was away."""

    readyz_down: dict[str, Any] = field(default_factory=dict)
    held_calls: float = 0.0
    db_up: float | None = None
    calls_placed_during_cut: int = 0


async def until(cond: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll *cond* until it holds; the guard only stops a hang (no timing is asserted)."""
    try:
        async with asyncio.timeout(HANG_GUARD):
            # Polling is the point: the state lives in the database and in other tasks.
            while not await cond():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    """A migrated throw-away database, dropped afterwards."""
    name = f"ccbridge_outage_{secrets.token_hex(4)}"
    await pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await run_migrations_async(url)
        yield url
    finally:
        await pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def journal_and_calls(url: str) -> tuple[dict[str, list[tuple[Any, ...]]], list[Any]]:
    """Per call, its events in cursor order; and every call row (read straight from the DB)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        events = await conn.fetch(
            "SELECT tenant, seq, id, type, call_id, occurred_at, "
            # The JSON is stored once, in the envelope (migration 0023).
            "COALESCE(data, convert_from(envelope, 'UTF8')::json -> 'data')::text AS data "
            "FROM events ORDER BY tenant, seq"
        )
        calls = await conn.fetch(
            "SELECT c.call_id, c.tenant, c.state, c.caller, c.caller_name, c.callee, "
            "c.skill_group, c.agent_no, c.agent_interface, c.started_at, c.queued_at, "
            "c.answered_at, c.ended_at, c.end_reason, c.legs::text, c.version, "
            "p.detail::text FROM calls c LEFT JOIN call_params p USING (call_id) "
            "ORDER BY c.call_id"
        )
    finally:
        await conn.close()
    by_call: dict[str, list[tuple[Any, ...]]] = {}
    for e in events:
        data = json.loads(e["data"])
        data.pop("state", None)  # as of the write: depends on coalescing (see module doc)
        by_call.setdefault(e["call_id"], []).append(
            (e["tenant"], e["id"], e["type"], e["occurred_at"], json.dumps(data, sort_keys=True))
        )
    return by_call, [tuple(r) for r in calls]


async def reference_run(admin_url: str, snapshots: list[CallRecord]) -> tuple[Any, Any]:
    """The same calls written without any cut: each snapshot on its own, in order."""
    async with fresh_database(admin_url) as url:
        engine = create_engine(url)
        try:
            sessions = create_session_factory(engine)
            repo = JournalledCalls(engine, SqlJournal(sessions))
            for snapshot in snapshots:
                await repo.upsert_many([snapshot])
        finally:
            await engine.dispose()
        return await journal_and_calls(url)


async def run_with_cut(admin_url: str, cut_seconds: float) -> None:
    async with fresh_database(admin_url) as real_url:
        real = make_url(real_url)
        proxy = await DbCutProxy(real.host or "127.0.0.1", real.port or 5432).start()
        url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = create_engine(url)
        try:
            seen, snapshots = await _traffic_through_a_cut(engine, proxy, cut_seconds)
        finally:
            await engine.dispose()
            await proxy.close()
        cut_run = await journal_and_calls(real_url)
    reference = await reference_run(admin_url, snapshots)

    # While the database was away: readiness said so and why, the calls were held.
    database = seen.readyz_down["checks"]["database"]
    assert database["ok"] is False
    assert database["reason"]
    assert database["since"]
    assert seen.db_up == 0
    assert seen.held_calls > 0
    assert seen.calls_placed_during_cut > 0

    events, calls = cut_run
    ref_events, ref_calls = reference
    assert calls, "the PBX produced no calls"
    assert calls == ref_calls  # same calls, same final records
    assert events == ref_events, _first_difference(events, ref_events)  # same order per call
    ids = [e[1] for evs in events.values() for e in evs]
    assert len(ids) == len(set(ids))  # no duplicates


async def _traffic_through_a_cut(
    engine: Any, proxy: DbCutProxy, cut_seconds: float
) -> tuple[Seen, list[CallRecord]]:
    """Run ccbridge's call path against the fake PBX and cut the database off mid-traffic."""
    seen = Seen()
    clock = SystemClock()
    metrics = Metrics()
    availability = database_availability(engine, metrics, clock)
    world = await build_world(engine)
    writer = CallBatchWriter(
        world.calls,
        flush_interval=0.05,
        retry_max=1.0,
        metrics=metrics.held,
        on_error=availability.report,
    )
    tee = TeeSink(writer)
    readiness = Readiness()
    readiness.add("database", database_check(availability))
    app = create_app(
        call_store=world.calls,
        readiness=readiness,
        access=cast(AccessService, None),
        jwt=JwtCodec("outage-test-secret-outage-test-secret"),
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        agi=AgiSettings(port=0),
        routes={
            did: RouteSettings(tenant=r.tenant, queue=r.queue) for did, r in demo_dids().items()
        },
    )
    ivr, agi = build_ivr_fastagi(settings, engine, build_calendar_service(engine))
    # Inbound numbers live in the database (assigned over the API); seed the demo ones as
    # `ccbridge serve --simulate-pbx` does, before the cut.
    demo = {did: (r.tenant, r.queue) for did, r in demo_dids().items()}
    await seed_numbers(ivr.routing.number_repo, demo, clock.now())
    ivr.routing.directory.invalidate()
    dispatcher = world.dispatcher(refresh=0.2, on_error=availability.report)
    await agi.start()
    loops = [
        asyncio.create_task(supervise(name, loop, on_error=availability.report))
        for name, loop in (
            ("db-writer", writer.run),
            ("webhooks", dispatcher.run),
            ("db-availability", availability.run),
        )
    ]

    async def readyz() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/readyz")

    try:
        config = SimulatorConfig(
            agi_url=f"agi://127.0.0.1:{agi.port}/{SCRIPT}",
            talk_seconds=(10.0, 30.0),
            patience_seconds=(5.0, 20.0),
            abandon_probability=0.2,
        )
        async with FakeAsterisk(seed=13, time_scale=TIME_SCALE, config=config) as pbx:
            client = fake_pbx_client(pbx.ami_port)
            PbxCoordinator(client, calls=AmiCallFeed(CallTrackingService(tee), clock.now)).attach()
            async with running(client):
                assert (await readyz()).status_code == 200
                pbx.simulator.start_traffic(CALLS_PER_PBX_MINUTE)

                async def some_written() -> bool:
                    return writer.flushed_total >= 10

                await until(some_written, "calls written before the cut")

                sim = pbx.simulator
                placed_before = len(sim.outcomes) + len(sim.calls)
                proxy.cut()

                async def not_ready() -> bool:
                    resp = await readyz()
                    if resp.status_code == 503:
                        seen.readyz_down = resp.json()
                        return True
                    return False

                await until(not_ready, "/readyz 503 during the cut")
                await asyncio.sleep(cut_seconds)  # the outage itself (traffic goes on)
                seen.held_calls = (
                    metrics.registry.get_sample_value("ccbridge_held_writes", {"kind": "calls"})
                    or 0.0
                )
                seen.db_up = metrics.registry.get_sample_value("ccbridge_db_up")
                seen.calls_placed_during_cut = len(sim.outcomes) + len(sim.calls) - placed_before
                assert all(not t.done() for t in loops), "a background loop ended"
                assert dispatcher.storage_errors > 0  # it met the outage and lived
                proxy.restore()

                async def ready() -> bool:
                    return (await readyz()).status_code == 200

                await until(ready, "/readyz 200 after the cut")
                await sim.stop_traffic()
                async with asyncio.timeout(HANG_GUARD):
                    await asyncio.gather(*(h.task for h in list(sim.calls.values())))
                # FastAGI routed every call, those during the cut too (flows from memory).
                assert sim.outcomes
                for outcome in sim.outcomes:
                    assert outcome.agi is not None
                    assert outcome.agi.variables_set.get("CCB_TENANT") == outcome.tenant

                async def drained() -> bool:
                    return writer.pending == 0 and client.status.synced

                await until(drained, "held calls written after the cut")
    finally:
        await writer.stop()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await agi.stop()
    return seen, list(tee.snapshots)


async def test_a_10_second_database_cut_loses_and_duplicates_nothing(
    pg_database_url: str,
) -> None:
    await run_with_cut(_admin(pg_database_url), 10.0)


@pytest.mark.slow
async def test_a_60_second_database_cut_loses_and_duplicates_nothing(
    pg_database_url: str,
) -> None:
    await run_with_cut(_admin(pg_database_url), 60.0)


def _first_difference(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> str:
    """The first call whose events differ, event by event, for the failure message."""
    for call_id in sorted(set(got) | set(want)):
        a, b = got.get(call_id, []), want.get(call_id, [])
        if a != b:
            pairs = [f"  cut: {x}\n  ref: {y}" for x, y in zip(a, b, strict=False) if x != y]
            return f"call {call_id}: {len(a)} vs {len(b)} events\n" + "\n".join(pairs[:3])
    return "no difference"


def _admin(pg_database_url: str) -> str:
    """The server's admin URL (the session database's server, database ``postgres``)."""
    return make_url(pg_database_url).set(database="postgres").render_as_string(hide_password=False)
