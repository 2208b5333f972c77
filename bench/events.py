"""Events: poll pages under ingest and SSE fan-out, beside the raw SQL query (same run).

Usage: .venv/bin/python bench/events.py [--events 1000000] [--tenants 20] [--seconds 10]
       [--poll-rate 300] [--ingest-rate 10000] [--subscribers 500] [--fanout-rate 3000]
       [--http-sse 50] [--pg URL]

On PostgreSQL (the production database). Steps:

1. Load ``--events`` journal rows for ``--tenants`` tenants with COPY (setup, not measured).
2. Poll under ingest: ``--ingest-rate`` events/s are written through the real outbox path
   (``SqlJournal.append`` + commit, batched every 100 ms like the call writer) while pages of
   100 are read at ``--poll-rate`` requests/s from random cursors (cold reads that the
   in-memory hub cannot answer), three ways in turn, each for ``--seconds``:
   a. ``GET /api/v1/events`` through the whole FastAPI app (API-key auth included),
   b. ``EventService.poll`` (the use case, no HTTP),
   c. the raw asyncpg query ``WHERE tenant=$1 AND seq>$2 ORDER BY seq LIMIT 100`` (the peer).
3. SSE fan-out: ``--subscribers`` in-process stream consumers (the code path of
   ``/events/stream`` minus HTTP framing) spread over the tenants, plus ``--http-sse`` real
   SSE connections over uvicorn, while ``--fanout-rate`` events/s are ingested; delivery
   latency = commit → consumer receipt.

Load generator and server share one process (and this 2-core machine), so the figures are
pessimistic for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog
from sqlalchemy import make_url

from ccbridge.api.app import EventApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlEventSettings, SqlJournal, event_id
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories import CallRepository
from ccbridge.db.webhooks import SqlWebhookStore
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.domain.time import SystemClock
from ccbridge.observability.health import Readiness
from ccbridge.services.event_hub import EventHub
from ccbridge.services.events import EventService
from ccbridge.services.tenants import AccessService
from ccbridge.services.webhooks import WebhookService
from ccbridge.webhook_http.sender import HttpWebhookSender

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ADMIN = Principal(actor="bench", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ALL_SCOPES)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _payload(i: int, tenant: str) -> dict[str, Any]:
    return {
        "call_id": f"{1795433000 + i // 5}.{i}",
        "state": "connected",
        "params": {
            "agent_no": f"{1000 + i % 500}",
            "skill_group": f"{tenant}-sales",
            "caller": f"+86138{i % 100_000_000:08d}",
            "callee": "+864008001234",
            "caller_original": f"138{i % 100_000_000:08d}",
            "callee_original": "4008001234",
        },
        "extras": {},
    }


FAILURES: list[float] = []
"""Requests that failed (pool timeout under overload); reported per phase."""


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def summary(name: str, lat: Sequence[float], offered: int, seconds: float) -> dict[str, Any]:
    """Print and return the latency figures of one phase."""
    out = {
        "phase": name,
        "requests": len(lat),
        "offered": offered,
        "achieved_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(pct(lat, 50), 2),
        "p95_ms": round(pct(lat, 95), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "max_ms": round(max(lat) * 1000, 2) if lat else None,
    }
    print(json.dumps(out, ensure_ascii=False))
    return out


async def load(dsn: str, total: int, tenants: list[str]) -> dict[str, int]:
    """COPY ``total`` events into the journal, round-robin over tenants."""
    conn = await asyncpg.connect(dsn)
    try:
        per = dict.fromkeys(tenants, 0)
        batch: list[tuple[Any, ...]] = []
        chunk = 50_000
        for i in range(total):
            tenant = tenants[i % len(tenants)]
            per[tenant] += 1
            seq = per[tenant]
            at = T0 + timedelta(seconds=i * 0.1)
            batch.append(
                (
                    tenant,
                    seq,
                    event_id(tenant, f"load:{i}"),
                    "call.answered",
                    f"{1795433000 + i // 5}.{i}",
                    at,
                    at,
                    json.dumps(_payload(i, tenant)),
                )
            )
            if len(batch) >= chunk:
                await _copy(conn, batch)
                batch = []
        if batch:
            await _copy(conn, batch)
        await conn.executemany(
            "INSERT INTO event_counters (tenant, last_seq) VALUES ($1, $2)", list(per.items())
        )
        await conn.execute("ANALYZE events")
        # Warm the cache (table and primary key) so no phase pays the first reads for another.
        await conn.execute("SELECT sum(length(data::text)) FROM events")
        await conn.execute("SELECT count(*) FROM events WHERE tenant > '' AND seq > 0")
        return per
    finally:
        await conn.close()


async def _copy(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "events",
        records=rows,
        columns=[
            "tenant",
            "seq",
            "id",
            "type",
            "call_id",
            "occurred_at",
            "recorded_at",
            "data",
        ],
    )


class Ingest:
    """Write ``rate`` events/s through the outbox path, one transaction per 100 ms batch."""

    def __init__(self, journal: SqlJournal, sessions: Any, tenants: list[str], rate: int) -> None:
        self.journal, self.sessions, self.tenants, self.rate = journal, sessions, tenants, rate
        self.written = 0
        self.batch_ms: list[float] = []
        self._n = 0

    async def run(self) -> None:
        """Until cancelled."""
        per_tick = max(1, self.rate // 10)
        start = time.perf_counter()
        tick = 0
        while True:
            events = []
            for _ in range(per_tick):
                self._n += 1
                tenant = self.tenants[self._n % len(self.tenants)]
                events.append(
                    NewEvent(
                        tenant=tenant,
                        type=EventType.CALL_ANSWERED,
                        occurred_at=datetime.now(UTC),
                        key=f"ingest:{uuid.uuid4()}",
                        call_id=f"i{self._n}",
                        data=_payload(self._n, tenant),
                    )
                )
            t = time.perf_counter()
            async with self.sessions() as db:
                stored = await self.journal.append(db, events)
                await self.journal.commit(db, stored)
            self.batch_ms.append((time.perf_counter() - t) * 1000)
            self.written += len(stored)
            tick += 1
            delay = start + tick * 0.1 - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))


async def open_loop(rate: int, seconds: float, one: Callable[[], Awaitable[None]]) -> list[float]:
    """Fire ``one`` at a fixed rate (open loop: slow answers do not slow the offered load)."""
    lat: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def timed() -> None:
        t = time.perf_counter()
        try:
            await one()
        except Exception:  # an overloaded request counts, as a failure
            FAILURES.append(time.perf_counter() - t)
            return
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed()))
    await asyncio.gather(*tasks)
    return lat


async def ingest_process(url: str, tenants: int, rate: int) -> None:
    """Child process: the ingest load, so it does not share the poller's event loop."""
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    ingest = Ingest(SqlJournal(sessions), sessions, [f"t{i:02d}" for i in range(tenants)], rate)
    task = asyncio.create_task(ingest.run())
    last = 0
    while True:
        await asyncio.sleep(1.0)
        print(json.dumps({"ingest_per_s": ingest.written - last}), flush=True)
        last = ingest.written
        if task.done():
            task.result()


@contextlib.asynccontextmanager
async def ingest_child(url: str, tenants: int, rate: int) -> Any:
    """Run :func:`ingest_process` in a child; yield a list filled with its per-second counts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--ingest-child",
        url,
        str(tenants),
        str(rate),
        stdout=asyncio.subprocess.PIPE,
    )
    counts: list[int] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            with contextlib.suppress(ValueError):
                counts.append(int(json.loads(line)["ingest_per_s"]))

    reader = asyncio.create_task(read())
    try:
        yield counts
    finally:
        proc.terminate()
        await proc.wait()
        reader.cancel()


async def main() -> None:
    """Run every phase and print JSON lines."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    if len(sys.argv) == 5 and sys.argv[1] == "--ingest-child":
        await ingest_process(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--poll-rate", type=int, default=300)
    ap.add_argument("--ingest-rate", type=int, default=10_000)
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--fanout-rate", type=int, default=3000)
    ap.add_argument("--http-sse", type=int, default=50)
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--http-rate", type=int, default=300, help="poll rate of phase 2a")
    args = ap.parse_args()

    name = f"ccbridge_bench_events_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(_dsn(args.pg))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    try:
        await run(args, url)
    finally:
        admin = await asyncpg.connect(_dsn(args.pg))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(args: argparse.Namespace, url: str) -> None:
    """The phases, on a migrated scratch database."""
    await run_migrations_async(url)
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    t = time.perf_counter()
    per = await load(_dsn(url), args.events, tenants)
    print(
        json.dumps(
            {"setup": "copy", "events": args.events, "seconds": round(time.perf_counter() - t, 1)}
        )
    )

    engine = create_engine(url)
    sessions = create_session_factory(engine)
    commit_at: dict[str, float] = {}
    hub = EventHub()

    def on_commit(events: Sequence[StoredEvent]) -> None:
        now = time.perf_counter()
        for e in events:
            commit_at[e.id] = now
        hub.publish(events)

    journal = SqlJournal(sessions, on_commit=on_commit)
    calls = CallRepository(sessions, journal)
    clock = SystemClock()
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec("x" * 40),
        now=clock.now,
        token_ttl_seconds=600,
    )
    events = EventService(journal, hub, SqlEventSettings(sessions), calls, None, clock.now)
    sender = HttpWebhookSender()
    webhooks = WebhookService(SqlWebhookStore(sessions), events, sender, journal, None, clock)
    app = create_app(
        call_store=calls,
        readiness=Readiness(),
        access=access,
        jwt=JwtCodec("x" * 40),
        event_api=EventApi(events=events, webhooks=webhooks, clock=clock),
    )
    keys: dict[str, str] = {}
    for tenant in tenants:
        await access.create_tenant(ADMIN, tenant_id=tenant, name=tenant)
        _, keys[tenant] = await access.create_system_key(
            role=Role.CRM, tenant_id=tenant, name="crm", actor="bench"
        )
    rng = random.Random(1)
    pool = await asyncpg.create_pool(_dsn(url), min_size=4, max_size=10)

    def cursor_of() -> tuple[str, int]:
        tenant = rng.choice(tenants)
        return tenant, rng.randrange(0, per[tenant] - 100)

    results: list[dict[str, Any]] = []
    async with (
        ingest_child(url, args.tenants, args.ingest_rate) as ingested,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http,
    ):
        await asyncio.sleep(2.0)  # warm up the ingest

        async def via_http() -> None:
            tenant, after = cursor_of()
            resp = await http.get(
                "/api/v1/events",
                params={"after": after, "limit": 100},
                headers={"Authorization": f"Bearer {keys[tenant]}"},
            )
            assert resp.status_code == 200
            assert len(resp.json()["items"]) == 100

        async def via_service() -> None:
            tenant, after = cursor_of()
            page = await events.poll(tenant, after, 100)
            assert len(page) == 100

        async def via_sql() -> None:
            tenant, after = cursor_of()
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT tenant, seq, id, type, call_id, occurred_at, recorded_at, data "
                    "FROM events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT 100",
                    tenant,
                    after,
                )
            assert len(rows) == 100

        phases = (
            ("poll_http_app", via_http),
            ("poll_service", via_service),
            ("poll_raw_sql", via_sql),
        )
        for label, fn in phases:
            first = len(ingested)
            t = time.perf_counter()
            rate = args.http_rate if label == "poll_http_app" else args.poll_rate
            lat = await open_loop(rate, args.seconds, fn)
            took = time.perf_counter() - t
            res = summary(label, lat, int(rate * args.seconds), took)
            res["failed"] = len(FAILURES)
            print(json.dumps({"failed_requests": label, "count": len(FAILURES)}))
            FAILURES.clear()
            during = ingested[first:] or [0]
            res["ingested_per_s_during"] = round(sum(during) / len(during))
            print(
                json.dumps({"ingest_during": label, "events_per_s": res["ingested_per_s_during"]})
            )
            results.append(res)

    # SSE fan-out.
    latencies: list[float] = []
    http_latencies: list[float] = []
    received = 0
    stop = asyncio.Event()

    async def subscriber(tenant: str) -> None:
        nonlocal received
        after = await journal.last_seq(tenant)
        async for ev in events.stream(tenant, after, ping_every=15.0):
            if ev is None:
                continue
            sent = commit_at.get(ev.id)
            if sent is not None:
                latencies.append(time.perf_counter() - sent)
            received += 1
            await events.sse_frame(ev)  # the per-event work the endpoint does
            if stop.is_set():
                return

    async def http_subscriber(base: str, tenant: str) -> None:
        async with (
            httpx.AsyncClient(base_url=base, timeout=None) as client,
            client.stream(
                "GET",
                "/api/v1/events/stream",
                params={"after": await journal.last_seq(tenant)},
                headers={"Authorization": f"Bearer {keys[tenant]}"},
            ) as resp,
        ):
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    env = json.loads(line[6:])
                    sent = commit_at.get(env["id"])
                    if sent is not None:
                        http_latencies.append(time.perf_counter() - sent)

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
    )
    server_task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    subs = [
        asyncio.create_task(subscriber(tenants[i % len(tenants)])) for i in range(args.subscribers)
    ]
    http_subs = [
        asyncio.create_task(http_subscriber(base, tenants[i % len(tenants)]))
        for i in range(args.http_sse)
    ]
    await asyncio.sleep(1.0)
    fan = Ingest(journal, sessions, tenants, args.fanout_rate)
    fan_task = asyncio.create_task(fan.run())
    t = time.perf_counter()
    await asyncio.sleep(args.seconds)
    took = time.perf_counter() - t
    fan_task.cancel()
    stop.set()
    await asyncio.sleep(0.5)
    for task in [*subs, *http_subs]:
        task.cancel()
    await asyncio.gather(*subs, *http_subs, fan_task, return_exceptions=True)
    server.should_exit = True
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(server_task, 5)
    fan_res = summary(
        "sse_fanout_in_process", latencies, fan.written * args.subscribers // len(tenants), took
    )
    fan_res["ingested_per_s"] = round(fan.written / took)
    fan_res["subscribers"] = args.subscribers
    http_res = summary("sse_fanout_http", http_latencies, 0, took)
    http_res["subscribers"] = args.http_sse
    # The SQL peer for the fan-out: the same page query a polling subscriber would run.
    async with pool.acquire() as conn:
        sql_lat = []
        for _ in range(200):
            tenant = rng.choice(tenants)
            t = time.perf_counter()
            await conn.fetch(
                "SELECT * FROM events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT 100",
                tenant,
                rng.randrange(0, per[tenant] - 100),
            )
            sql_lat.append(time.perf_counter() - t)
    summary("raw_sql_page_idle", sql_lat, 200, 1.0)
    print(
        json.dumps(
            {
                "ratio_poll_http_vs_sql_p99": round(results[0]["p99_ms"] / results[2]["p99_ms"], 2),
                "ratio_poll_service_vs_sql_p99": round(
                    results[1]["p99_ms"] / results[2]["p99_ms"], 2
                ),
            }
        )
    )
    await pool.close()
    await sender.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
