"""Events: poll pages under ingest and SSE fan-out over real HTTP, beside the raw SQL query.

One command, at the targets of issue 7 (PostgreSQL on 127.0.0.1, trust auth)::

    .venv/bin/python bench/events.py

creates a scratch database, loads 1,000,000 events for 20 tenants with COPY (setup, not
measured), runs every phase in both topologies and prints one JSON line per phase and a
``verdict`` line with PASS/FAIL per target and topology. Options: ``--events --tenants
--seconds 20 --poll-rate 300 --ingest-rate 10000 --subscribers 500 --fanout-rate 3000
--phases poll,sse --topology split|single --pg URL --db NAME`` (``--db`` keeps the loaded
database and reuses it, trimmed back to the loaded rows, on the next run).

Topologies: ``split``: the PBX owner's journal writes run in their own process and the real
``ccbridge api`` (API-only process, its hub fed by LISTEN/NOTIFY) serves; ``single``: one
process writes and serves, as ``ccbridge serve`` alone does.

Every role is its own process, so the load generator never shares the server's interpreter:

* **server**: ``ccbridge api`` (split) or the app wired by the composition root's helpers
  (single), under uvicorn;
* **ingest**: ``--ingest-rate`` events/s through the real outbox path (``SqlJournal.append``
  + commit, one transaction per 100 ms, all tenants);
* **poll**: open-loop HTTP client: ``GET /api/v1/events?after=<random cursor>&limit=100`` with
  each tenant's CRM key, fired on a fixed schedule; latency is measured from the *scheduled*
  send time (no coordinated omission); 3 s of warm-up first, not measured;
* **sql**: the same schedule against the raw asyncpg keyset query (the peer, same run);
* **sse**: ``--subscribers`` raw SSE connections (spread over tenants); latency = receipt
  minus the event's ``recorded_at`` (stamped before its INSERT, so it includes the commit).

CPU per role (from ``/proc``) and the load average are printed with every phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import re
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy import make_url

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PAGE_SQL = (
    "SELECT seq, type, envelope, has_extras FROM events "
    "WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT 100"
)
TARGETS = {"poll_p99_ms": 25.0, "sse_p99_ms": 100.0}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _payload(i: int, tenant: str) -> dict[str, Any]:
    return {
        "call_id": f"{1795433000 + i // 5}.{i}",
        "state": "connected",
        "leg": 1,
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


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank), in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def figures(lat: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in ms."""
    return {
        "p50_ms": round(pct(lat, 50), 2),
        "p95_ms": round(pct(lat, 95), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "max_ms": round(max(lat) * 1000, 2) if lat else float("nan"),
    }


async def measure_stream(
    reader: asyncio.StreamReader, measuring: list[bool], frames: list[int], lat: list[float]
) -> None:
    """Read one SSE stream to its end; while ``measuring[0]``, count its frames and their age.

    Every frame of a read counts as received when the read returned, and as old as the chunk's
    first (oldest) frame: conservative, and one timestamp parse per read keeps the generator's
    CPU off the server's.
    """
    buf = b""
    while chunk := await reader.read(262_144):
        now = time.time()
        buf += chunk
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            continue
        done, buf = buf[: cut + 2], buf[cut + 2 :]
        if not measuring[0]:
            continue
        count = done.count(b'"recorded_at":"')
        first = SSE_STAMP.search(done)
        if first is None:
            continue
        age = now - datetime.fromisoformat(first.group(1).decode()).timestamp()
        frames[0] += count
        lat.extend([age] * count)


def emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout (children report to the orchestrator this way)."""
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every ``postgres`` process (a shared server: other users count too)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            total += cpu_seconds(int(entry))
    return total


class CpuMeter:
    """CPU cores used by the server, the ingest and PostgreSQL over a phase."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.start = time.perf_counter()
        self.before = {k: cpu_seconds(p) for k, p in pids.items()}
        self.pg = postgres_cpu()

    def cores(self) -> dict[str, float]:
        """Mean cores per role since construction."""
        took = time.perf_counter() - self.start
        out = {
            f"{k}_cpu_cores": round((cpu_seconds(p) - self.before[k]) / took, 2)
            for k, p in self.pids.items()
        }
        out["postgres_cpu_cores"] = round((postgres_cpu() - self.pg) / took, 2)
        return out


def loadavg() -> str:
    """The 1/5/15-minute load average, to judge how noisy a figure is."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- setup -----------------------------------------------------------------------------------


async def load(dsn: str, total: int, tenants: list[str]) -> dict[str, int]:
    """COPY ``total`` events (envelopes encoded as the journal does) round-robin over tenants."""
    from ccbridge.db.journal import event_id
    from ccbridge.domain.journal.types import StoredEvent
    from ccbridge.services.event_codec import envelope_bytes

    conn = await asyncpg.connect(dsn)
    try:
        per = dict.fromkeys(tenants, 0)
        batch: list[tuple[Any, ...]] = []
        for i in range(total):
            tenant = tenants[i % len(tenants)]
            per[tenant] += 1
            at = T0 + timedelta(seconds=i * 0.1)
            data = _payload(i, tenant)
            ev = StoredEvent(
                tenant=tenant,
                seq=per[tenant],
                id=event_id(tenant, f"load:{i}"),
                type="call.answered",
                occurred_at=at,
                recorded_at=at,
                data=data,
                call_id=data["call_id"],
            )
            batch.append(
                (
                    tenant,
                    ev.seq,
                    ev.id,
                    ev.type,
                    ev.call_id,
                    at,
                    at,
                    orjson.dumps(data).decode(),
                    envelope_bytes(ev),
                    False,
                )
            )
            if len(batch) >= 50_000:
                await _copy(conn, batch)
                batch = []
        if batch:
            await _copy(conn, batch)
        await conn.executemany(
            "INSERT INTO event_counters (tenant, last_seq) VALUES ($1, $2)", list(per.items())
        )
        await conn.execute("VACUUM ANALYZE events")
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
            "envelope",
            "has_extras",
        ],
    )


async def prepare(args: argparse.Namespace) -> tuple[str, dict[str, int], bool]:
    """The database to run on: reused when ``--db`` names a loaded one, else created."""
    from ccbridge.db.migrate import run_migrations_async

    scratch = args.db is None
    name = args.db or f"ccbridge_bench_events_{secrets.token_hex(3)}"
    url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(_dsn(args.pg))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await run_migrations_async(url)
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    conn = await asyncpg.connect(_dsn(url))
    try:
        loaded = {
            t: args.events // len(tenants) + (i < args.events % len(tenants))
            for i, t in enumerate(tenants)
        }
        have = await conn.fetchval(
            "SELECT count(*) FROM events WHERE call_id NOT LIKE 'i%' AND tenant = ANY($1)", tenants
        )
        if have == args.events:
            emit({"setup": "reused", "db": name, "events": have})
            await trim(url, loaded)
            return url, loaded, scratch
        await conn.execute("TRUNCATE events, event_counters")
    finally:
        await conn.close()
    t = time.perf_counter()
    per = await load(_dsn(url), args.events, tenants)
    emit({"setup": "copy", "db": name, "events": args.events, "s": round(time.perf_counter() - t)})
    return url, per, scratch


async def trim(url: str, loaded: dict[str, int]) -> None:
    """Drop what earlier phases ingested, so every run starts from the same loaded rows."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        for tenant, last in loaded.items():
            await conn.execute("DELETE FROM events WHERE tenant = $1 AND seq > $2", tenant, last)
            await conn.execute(
                "UPDATE event_counters SET last_seq = $2 WHERE tenant = $1", tenant, last
            )
        await conn.execute("VACUUM ANALYZE events")
    finally:
        await conn.close()


async def make_keys(url: str, tenants: list[str]) -> dict[str, str]:
    """A CRM key per tenant (tenants created when missing)."""
    from ccbridge.bootstrap import build_access_service
    from ccbridge.db.engine import create_engine
    from ccbridge.domain.access import ALL_SCOPES, Principal, Role
    from ccbridge.errors import CcbridgeError
    from ccbridge.settings import Settings

    engine = create_engine(url)
    access = build_access_service(Settings(), engine)
    admin = Principal(actor="bench", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ALL_SCOPES)
    keys = {}
    for tenant in tenants:
        with contextlib.suppress(CcbridgeError):
            await access.create_tenant(admin, tenant_id=tenant, name=tenant)
        _, keys[tenant] = await access.create_system_key(
            role=Role.CRM, tenant_id=tenant, name="bench", actor="bench"
        )
    await engine.dispose()
    return keys


# --- ingest ----------------------------------------------------------------------------------


class Ingest:
    """Write ``rate`` events/s through the outbox path, one transaction per 100 ms batch."""

    def __init__(self, journal: Any, sessions: Any, tenants: list[str], rate: int) -> None:
        self.journal, self.sessions, self.tenants, self.rate = journal, sessions, tenants, rate
        self.written = 0
        self._n = 0
        self._stopping = asyncio.Event()

    async def stop(self, task: asyncio.Task[None]) -> BaseException | None:
        """End *task* (this writer's :meth:`run`) between transactions; its error, if any.

        Never by cancelling it mid-transaction: SQLAlchemy then invalidates the aiosqlite
        connection and stops its thread without closing the sqlite3 connection, whose open
        write transaction keeps SQLite's write lock until the garbage collector frees it; the
        next phase's writer then waits out the 30 s busy timeout (B7's peer saw 0 events).
        """
        self._stopping.set()
        done, _ = await asyncio.wait({task}, timeout=30)
        if not done:  # a commit stuck for 30 s: the lock is someone else's; give up on it
            task.cancel()
        ended = await asyncio.gather(task, return_exceptions=True)
        return ended[0] if isinstance(ended[0], BaseException) else None

    async def run(self) -> None:
        """Until :meth:`stop`; a late tick is not made up by a larger batch (fixed rate)."""
        from ccbridge.domain.journal.types import EventType, NewEvent

        per_tick = max(1, self.rate // 10)
        start = time.perf_counter()
        tick = 0
        while not self._stopping.is_set():
            events = []
            now = datetime.now(UTC)
            for k in range(per_tick):
                if k and k % 200 == 0:
                    await asyncio.sleep(0)  # a PBX's events arrive spread out, not in one go
                self._n += 1
                tenant = self.tenants[self._n % len(self.tenants)]
                events.append(
                    NewEvent(
                        tenant=tenant,
                        type=EventType.CALL_ANSWERED,
                        occurred_at=now,
                        key=f"ingest:{uuid.uuid4()}",
                        call_id=f"i{self._n}",
                        data=_payload(self._n, tenant),
                    )
                )
            async with self.sessions() as db:
                stored = await self.journal.append(db, events)
                await self.journal.commit(db, stored)
            self.written += len(stored)
            tick += 1
            delay = start + tick * 0.1 - time.perf_counter()
            if delay < -1.0:  # more than a second behind: drop the backlog, keep the rate
                start, tick = time.perf_counter(), 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, delay))


async def report_ingest(ingest: Ingest) -> None:
    """Print events written per second."""
    last = 0
    while True:
        await asyncio.sleep(1.0)
        emit({"ingest_per_s": ingest.written - last})
        last = ingest.written


async def role_ingest(url: str, tenants: int, rate: int) -> None:
    """Child process: the PBX owner's journal writes."""
    from ccbridge.db.engine import create_engine, create_session_factory
    from ccbridge.db.journal import SqlJournal

    engine = create_engine(url)
    sessions = create_session_factory(engine)
    ingest = Ingest(SqlJournal(sessions), sessions, [f"t{i:02d}" for i in range(tenants)], rate)
    reporter = asyncio.create_task(report_ingest(ingest))
    try:
        await ingest.run()
    finally:
        reporter.cancel()


# --- server ----------------------------------------------------------------------------------


class GcPauses:
    """Stop-the-world time of the cyclic garbage collector, per generation (a tail suspect)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t)

    def report(self) -> dict[str, Any]:
        """Count and max pause (ms) per generation since the last report."""
        out = {
            f"gen{g}": {"n": len(p), "max_ms": round(max(p, default=0) * 1000, 1)}
            for g, p in self.pauses.items()
        }
        for p in self.pauses.values():
            p.clear()
        return out


async def role_server(url: str, port: int, tenants: int) -> None:
    """Child process: the app as the composition root wires it, under uvicorn. Reads
    ``ingest <rate>`` / ``stop`` on stdin (the in-process writer of the fan-out phase)."""
    import uvicorn

    from ccbridge.api.app import create_app
    from ccbridge.api.security import JwtCodec
    from ccbridge.bootstrap import _events, build_access_service
    from ccbridge.db.engine import PgReadPool, create_engine, create_session_factory
    from ccbridge.db.journal import SqlJournal
    from ccbridge.db.repositories import CallRepository
    from ccbridge.domain.time import SystemClock
    from ccbridge.observability.health import Readiness
    from ccbridge.services.event_hub import EventHub
    from ccbridge.settings import Settings

    gc_pauses = GcPauses()
    settings = Settings()
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, on_commit=hub.publish, read_pool=PgReadPool.for_engine(engine))
    calls = CallRepository(sessions)
    event_api, _dispatcher, _jobs = _events(settings, sessions, journal, hub, calls, SystemClock())
    app = create_app(
        call_store=calls,
        readiness=Readiness(),
        access=build_access_service(settings, engine),
        jwt=JwtCodec(settings.auth.jwt_secret.get_secret_value()),
        event_api=event_api,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    gc.freeze()  # as ccbridge.bootstrap.run_service does once wired
    emit({"ready": server.servers[0].sockets[0].getsockname()[1]})
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    writer: asyncio.Task[None] | None = None
    reporter: asyncio.Task[None] | None = None
    names = [f"t{i:02d}" for i in range(tenants)]
    while line := (await stdin.readline()).decode().split():
        if line[0] == "quit":
            break
        if line[0] == "ingest":
            ingest = Ingest(journal, sessions, names, int(line[1]))
            writer = asyncio.create_task(ingest.run())
            reporter = asyncio.create_task(report_ingest(ingest))
        elif line[0] == "stop" and writer and reporter:
            await ingest.stop(writer)
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            emit(
                {
                    "stopped": True,
                    "server_gc": {**gc_pauses.report(), "tracked": len(gc.get_objects())},
                }
            )
    server.should_exit = True
    await serving


# --- load generators -------------------------------------------------------------------------


class Http:
    """A minimal keep-alive HTTP/1.1 client pool (httpx would cost the generator more CPU
    than the server spends on a page)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.reopened = 0

    async def get(self, path: str, key: str) -> bytes:
        """GET *path*; return the body (raises on a non-200). A kept-alive connection the
        server closed meanwhile (uvicorn's 5 s idle timeout) is replaced once, as any
        HTTP client does."""
        request = f"GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {key}\r\n\r\n"
        while self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, request.encode())
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                self.reopened += 1
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return await self._exchange(reader, writer, request.encode())

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> bytes:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"(?i)content-length: *(\d+)", head)
        body = await reader.readexactly(int(match.group(1))) if match else b""
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head[:40] + body[:200])
        self.idle.append((reader, writer))
        return body


async def open_loop(rate: int, seconds: float, one: Any) -> tuple[list[float], int]:
    """Fire ``one()`` at a fixed rate; latency from each request's scheduled time."""
    lat: list[float] = []
    failed = 0

    async def timed(scheduled: float) -> None:
        nonlocal failed
        try:
            await one()
        except Exception as exc:
            failed += 1
            if failed <= 3:
                print(repr(exc)[:300], file=sys.stderr)
            return
        lat.append(time.perf_counter() - scheduled)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(at)))
    await asyncio.gather(*tasks)
    return lat, failed


async def role_poll(args: argparse.Namespace) -> None:
    """Child process: pages of 100 from random cursors, over HTTP or raw SQL."""
    spec = json.loads(open(args.spec).read())  # noqa: ASYNC230, SIM115 (setup, not measured)
    per: dict[str, int] = spec["per"]
    keys: dict[str, str] = spec["keys"]
    tenants = sorted(per)
    rng = random.Random(args.seed)
    checked = [0, 0]

    def cursor() -> tuple[str, int]:
        tenant = rng.choice(tenants)
        return tenant, rng.randrange(0, per[tenant] - 100)

    if args.mode == "http":
        http = Http(args.port)

        async def one() -> None:
            tenant, after = cursor()
            body = await http.get(f"/api/v1/events?after={after}&limit=100", keys[tenant])
            checked[0] += 1
            if checked[0] % 50 == 1:  # a sample is parsed in full; every page is counted
                page = orjson.loads(body)
                assert len(page["items"]) == 100
                assert page["items"][0]["cursor"] == str(after + 1)
            if body.count(b'"schema_version"') != 100:
                checked[1] += 1

    else:
        pool = await asyncpg.create_pool(_dsn(args.url), min_size=8, max_size=32)

        async def one() -> None:
            tenant, after = cursor()
            async with pool.acquire() as conn:
                rows = await conn.fetch(PAGE_SQL, tenant, after)
            body = b'{"items":[%s]}' % b",".join(r[2] for r in rows)
            if len(rows) != 100 or not body:
                checked[1] += 1

    cpu = time.process_time()
    lat, failed = await open_loop(args.rate, args.seconds, one)
    emit(
        {
            "generator_cpu_cores": round((time.process_time() - cpu) / args.seconds, 2),
            "achieved_per_s": round(len(lat) / args.seconds, 1),
            "failed": failed,
            "short_pages": checked[1],
            **figures(lat),
        }
    )


SSE_STAMP = re.compile(rb'"recorded_at":"([^"]+)"')


async def role_sse(args: argparse.Namespace) -> None:
    """Child process: SSE subscribers; report latency from ``recorded_at`` to receipt."""
    spec = json.loads(open(args.spec).read())  # noqa: ASYNC230, SIM115 (setup, not measured)
    keys: dict[str, str] = spec["keys"]
    tenants = sorted(keys)
    conn = await asyncpg.connect(_dsn(args.url))
    tail = {r[0]: r[1] for r in await conn.fetch("SELECT tenant, last_seq FROM event_counters")}
    await conn.close()
    lat: list[float] = []
    frames = [0]
    connected = [0]
    measuring = [False]

    async def subscriber(tenant: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        writer.write(
            f"GET /api/v1/events/stream?after={tail[tenant]} HTTP/1.1\r\nhost: bench\r\n"
            f"authorization: Bearer {keys[tenant]}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        connected[0] += 1
        await measure_stream(reader, measuring, frames, lat)

    subs = [
        asyncio.create_task(subscriber(tenants[i % len(tenants)])) for i in range(args.subscribers)
    ]
    while connected[0] < args.subscribers:
        await asyncio.sleep(0.05)
        if any(t.done() for t in subs):
            for t in subs:
                if t.done():
                    t.result()
    emit({"connected": connected[0]})
    await asyncio.sleep(args.warmup)
    measuring[0] = True
    cpu = time.process_time()
    await asyncio.sleep(args.seconds)
    measuring[0] = False
    own_cpu = round((time.process_time() - cpu) / args.seconds, 2)
    for t in subs:
        t.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    emit(
        {
            "generator_cpu_cores": own_cpu,
            "deliveries": frames[0],
            "deliveries_per_s": round(frames[0] / args.seconds),
            **figures(lat),
        }
    )


# --- orchestration ---------------------------------------------------------------------------


class Child:
    """A role in its own process; its JSON lines are collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, *argv: str, stdin: bool = False, env: dict[str, str] | None = None
    ) -> Child:
        """Run ``bench/events.py <argv>`` (or ``python <argv>`` when argv starts with -m)."""
        script = [] if argv and argv[0] == "-m" else [__file__]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *script,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.PIPE if stdin else None,
            env=env,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    async def wait_for(self, key: str, limit_s: float = 120.0, since: int = 0) -> dict[str, Any]:
        """The first line carrying *key* (from line *since* on)."""
        async with asyncio.timeout(limit_s):
            while True:
                for line in self.lines[since:]:
                    if key in line:
                        return line
                if self.proc.returncode is not None:
                    raise RuntimeError(f"child exited {self.proc.returncode} before {key!r}")
                await asyncio.sleep(0.05)

    def send(self, text: str) -> None:
        """A command line on its stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    def counts(self, key: str) -> list[int]:
        """Every value of *key* reported so far."""
        return [int(line[key]) for line in self.lines if key in line]

    async def stop(self) -> None:
        """Terminate and wait."""
        if self.proc.returncode is None:
            self.proc.terminate()
        await self.proc.wait()
        self._reader.cancel()


@contextlib.asynccontextmanager
async def child(
    *argv: str, stdin: bool = False, env: dict[str, str] | None = None
) -> AsyncIterator[Child]:
    """Start a role; always stop it."""
    c = await Child.start(*argv, stdin=stdin, env=env)
    try:
        yield c
    finally:
        await c.stop()


def during(counts: list[int], first: int) -> int:
    """Mean of the per-second counts after index *first* (the phase's window)."""
    window = counts[first:] or [0]
    return round(sum(window) / len(window))


async def orchestrate(args: argparse.Namespace) -> None:
    """Run every phase and print the verdict."""
    url, per, scratch = await prepare(args)
    try:
        await phases(args, url, per)
    finally:
        if scratch:
            admin = await asyncpg.connect(_dsn(args.pg))
            name = make_url(url).database
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


async def phases(args: argparse.Namespace, url: str, per: dict[str, int]) -> None:
    """Poll over HTTP and its SQL peer, then the SSE fan-out; one JSON line each, a verdict."""
    tenants = sorted(per)
    keys = await make_keys(url, tenants)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"per": per, "keys": keys}, f)
        spec = f.name
    verdicts: dict[str, Any] = {}
    try:
        for topology in args.topology.split(","):
            run = argparse.Namespace(**{**vars(args), "topology": topology})
            verdict: dict[str, Any] = {}
            async with serving(run, url) as (server, port):
                if "poll" in args.phases:
                    verdict.update(await poll_phases(run, url, port, spec, server))
                if "sse" in args.phases:
                    verdict.update(await sse_phase(run, url, port, spec, server, len(tenants)))
            verdicts[topology] = {**verdict, "load": loadavg()}
            if topology != args.topology.split(",")[-1]:
                await trim(url, per)  # the next topology starts from the same rows
    finally:
        os.unlink(spec)
    emit({"verdict": verdicts})


@contextlib.asynccontextmanager
async def serving(args: argparse.Namespace, url: str) -> AsyncIterator[tuple[Child, str]]:
    """The process under test: ``split``: the real ``ccbridge api`` (its hub fed by
    LISTEN/NOTIFY); ``single``: the app wired like ``ccbridge serve``, which also writes."""
    if args.topology == "single":
        argv = ["--role", "server", "--url", url, "--tenants", str(args.tenants)]
        async with child(*argv, stdin=True) as server:
            yield server, str((await server.wait_for("ready"))["ready"])
            server.send("quit")
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "CCBRIDGE_DATABASE_URL": url, "CCBRIDGE_LOG_LEVEL": "WARNING"}
    argv = ["-m", "ccbridge", "api", "--host", "127.0.0.1", "--port", port]
    async with child(*argv, env=env) as server:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(OSError, RuntimeError, asyncio.IncompleteReadError):
                    await Http(int(port)).get("/readyz", "")
                    break
                await asyncio.sleep(0.2)
        yield server, port


@contextlib.asynccontextmanager
async def writing(
    args: argparse.Namespace, url: str, server: Child, rate: int
) -> AsyncIterator[Child]:
    """The PBX owner's journal writes at *rate*: its own process (``split``) or the server's
    (``single``); yields the child whose ``ingest_per_s`` lines count them."""
    if args.topology == "single":
        mark = len(server.lines)
        server.send(f"ingest {rate}")
        try:
            yield server
        finally:
            server.send("stop")
            await server.wait_for("stopped", since=mark)
        return
    argv = ["--role", "ingest", "--url", url, "--tenants", str(args.tenants), "--rate", str(rate)]
    async with child(*argv) as ingest:
        yield ingest


def cpu_pids(server: Child, ingest: Child) -> dict[str, int]:
    """The processes whose CPU a phase reports."""
    if ingest is server:
        return {"server": server.proc.pid}
    return {"server": server.proc.pid, "ingest": ingest.proc.pid}


async def poll_phases(
    args: argparse.Namespace, url: str, port: str, spec: str, server: Child
) -> dict[str, Any]:
    """Pages over HTTP, then the raw SQL peer, both while the PBX owner writes."""
    results: dict[str, dict[str, Any]] = {}
    async with writing(args, url, server, args.ingest_rate) as ingest:
        # Warm-up, not measured: the ingest reaches its rate, the server opens its read pool
        # and every key lands in its cache (a cold start under open-loop load is not the
        # steady state this measures).
        async with child("--role", "poll", "--mode", "http", "--port", port, "--url", url,
                         "--spec", spec, "--rate", str(args.poll_rate), "--seconds", "3",
                         "--seed", "99") as warm:  # fmt: skip
            emit({"warmup": await warm.wait_for("achieved_per_s", limit_s=60)})
        for mode in ("http", "sql"):
            first = len(ingest.counts("ingest_per_s"))
            load = loadavg()
            meter = CpuMeter(**cpu_pids(server, ingest))
            async with child("--role", "poll", "--mode", mode, "--port", port, "--url", url,
                             "--spec", spec, "--rate", str(args.poll_rate),
                             "--seconds", str(args.seconds)) as gen:  # fmt: skip
                res = await gen.wait_for("achieved_per_s", limit_s=args.seconds * 4 + 60)
            res = {
                "phase": f"poll_{mode}",
                "topology": args.topology,
                "offered_per_s": args.poll_rate,
                **res,
                "ingest_per_s": during(ingest.counts("ingest_per_s"), first),
                "ingest_target": args.ingest_rate,
                **meter.cores(),
                "load_before": load,
                "load_after": loadavg(),
            }
            if mode == "http" and res["achieved_per_s"]:
                res["server_cpu_ms_per_request"] = round(
                    res["server_cpu_cores"] / res["achieved_per_s"] * 1000, 2
                )
            emit(res)
            results[mode] = res
    http, sql = results["http"], results["sql"]
    ok = (
        http["p99_ms"] <= TARGETS["poll_p99_ms"]
        and http["achieved_per_s"] >= 0.99 * args.poll_rate
        and http["failed"] == 0
        and http["ingest_per_s"] >= 0.95 * args.ingest_rate
    )
    return {
        "poll": "PASS" if ok else "FAIL",
        "poll_detail": f"p99 {http['p99_ms']} ms (target ≤ 25) at {http['achieved_per_s']}/s "
        f"of {args.poll_rate}/s, ingest {http['ingest_per_s']}/s of {args.ingest_rate}; raw "
        f"SQL p99 {sql['p99_ms']} ms",
        "poll_http_vs_raw_sql_p99": round(http["p99_ms"] / sql["p99_ms"], 2),
    }


async def sse_phase(
    args: argparse.Namespace, url: str, port: str, spec: str, server: Child, tenants: int
) -> dict[str, Any]:
    """SSE fan-out while the PBX owner writes ``--fanout-rate`` events/s."""
    load = loadavg()
    async with child("--role", "sse", "--port", port, "--spec", spec, "--url", url,
                     "--subscribers", str(args.subscribers), "--seconds", str(args.seconds),
                     "--warmup", "2") as sse:  # fmt: skip
        await sse.wait_for("connected", limit_s=120)
        async with writing(args, url, server, args.fanout_rate) as ingest:
            first = len(ingest.counts("ingest_per_s"))
            meter = CpuMeter(**cpu_pids(server, ingest))
            async with child("--role", "poll", "--mode", "sql", "--port", port, "--url", url,
                             "--spec", spec, "--rate", "20",
                             "--seconds", str(args.seconds + 2)) as peer:  # fmt: skip
                res = await sse.wait_for("deliveries", limit_s=args.seconds * 4 + 60)
                sql = await peer.wait_for("achieved_per_s", limit_s=args.seconds * 4 + 60)
            cores = meter.cores()
            rate = during(ingest.counts("ingest_per_s"), first)
    res = {
        "phase": "sse_fanout_http",
        "topology": args.topology,
        "subscribers": args.subscribers,
        "ingest_per_s": rate,
        "ingest_target": args.fanout_rate,
        "expected_deliveries_per_s": rate * args.subscribers // tenants,
        **res,
        "raw_sql_page_p99_ms_same_window": sql["p99_ms"],
        **cores,
        "load_before": load,
        "load_after": loadavg(),
    }
    stops = [line for line in server.lines if "stopped" in line]
    if args.topology == "single" and stops:
        res["server_gc"] = stops[-1]["server_gc"]
    emit(res)
    ok = (
        res["p99_ms"] <= TARGETS["sse_p99_ms"]
        and rate >= 0.95 * args.fanout_rate
        and res["deliveries_per_s"] >= 0.95 * res["expected_deliveries_per_s"]
    )
    return {
        "sse": "PASS" if ok else "FAIL",
        "sse_detail": f"p99 {res['p99_ms']} ms (target ≤ 100), {res['deliveries_per_s']} of "
        f"{res['expected_deliveries_per_s']} deliveries/s, ingest {rate}/s of "
        f"{args.fanout_rate}; raw SQL page p99 {sql['p99_ms']} ms",
    }


def main() -> None:
    """Dispatch on ``--role`` (the orchestrator when absent)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", default="main", choices=["main", "server", "ingest", "poll", "sse"])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--poll-rate", type=int, default=300)
    ap.add_argument("--ingest-rate", type=int, default=10_000)
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--fanout-rate", type=int, default=3000)
    ap.add_argument("--pg", default=DEFAULT_PG)
    ap.add_argument("--db", default=None, help="keep and reuse this database")
    ap.add_argument("--phases", default="poll,sse", help="poll, sse or both")
    ap.add_argument(
        "--topology",
        default="split,single",
        choices=["split", "single", "split,single"],
        help="split: the PBX owner writes in its own process and `ccbridge api` serves; "
        "single: one process writes and serves (ccbridge serve alone); default: both in turn",
    )
    # Internal (children).
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="http", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=2.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "server":
        asyncio.run(role_server(args.url, args.port, args.tenants))
    elif args.role == "ingest":
        asyncio.run(role_ingest(args.url, args.tenants, args.rate))
    elif args.role == "poll":
        asyncio.run(role_poll(args))
    elif args.role == "sse":
        asyncio.run(role_sse(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
