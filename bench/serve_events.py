"""B6/B7: event poll and SSE delivery in ONE ``ccbridge serve`` process that ingests from a
fake PBX over AMI, beside a naive FastAPI+SQLAlchemy+aiosqlite poll service (B6's peer).

One command (SQLite, the default database; a scratch file under /tmp)::

    PYTHONPATH=src .venv/bin/python bench/serve_events.py [--runs 3] [--bench b6,b7]

Every role is its own process, so no load generator shares the server's interpreter:

* **pbx**: ``ccbridge.testing.FakeAmiServer`` (login, resync actions) plus a blaster that
  sends the recorded Asterisk 22 call mix (both captures, event frames only) at
  ``--ami-rate`` events/s, each repetition rewritten to distinct Uniqueid/Linkedid and to one
  of the bench tenants' queues, so the tracker sees new calls of real tenants. It drops a
  reader that blocks a write for longer than ``--ami-write-timeout`` (Asterisk's
  ``writetimeout``) and reports how many it dropped.
* **server**: ``ccbridge.bootstrap.run_service``, the very function ``ccbridge serve`` runs
  (composition root, AMI client, FastAGI, jobs, uvicorn, GC policy), pointed at the fake
  PBX. For B7 it also appends ``--fanout-rate`` journal events/s in-process through the
  journal (the API-side write path), as the AMI path cannot make 3k journal events/s.
* **naive**: ``bench/naive_poll_app.py`` on the same database file (B6's peer).
* **poll**: open-loop HTTP client (``bench/events.py``), latency from each request's
  scheduled send time; cursors drawn at random over each tenant's loaded history, so every
  page is a database read (the hub cannot answer it).
* **sse**: raw SSE subscribers; latency = receipt minus the event's ``recorded_at``.

B6 (per run): poll at ``--poll-rate`` for ``--seconds`` while the PBX sends ``--ami-rate``;
then a capacity ladder for ccbridge and for the peer under the same ingest: the highest
offered rate each serves with p99 ≤ a bar and ≥ 97 % achieved, at bars of 25, 50, 100
and 250 ms; the ratio ("throughput at equal p99") is taken at the tightest bar the peer
meets at all. Goal: p99 ≤ 25 ms at 300/s with ingest ≥ 95 % of 10k ev/s and no AMI
drop, and that capacity ratio ≥ 3.

B7 (per run): ``--subscribers`` SSE streams while the server appends ``--fanout-rate``
events/s; delivery p99 ≤ 100 ms with ≥ 95 % of the expected deliveries. Peer: one
subscriber on the same ingest, same run (the fan-out's cost as a ratio).

Prints one JSON line per phase, then ``summary`` lines with min/median/max of the runs, and
exits 1 when a goal is missed.

Diagnostics (``--bench ab``, ``--bench prof``): the 300/s poll phase under each AMI rate of
``--ab-ingest`` and GIL switch interval of ``--ab-switch``, interleaved in the same server
process, with the CPU of each server thread, a database-read page's time split (hand-off to
the read thread, SQL, back to the loop), loop lag and engine check-outs; or cProfile of the
server's loop thread (docs/benchmarks.md, B6, "Cause"; ADR 0027).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from events import (
    Child,
    CpuMeter,
    Http,
    Ingest,
    _payload,
    emit,
    figures,
    loadavg,
    measure_stream,
    report_ingest,
    role_poll,
)

HERE = Path(__file__).resolve().parent
CAPTURES = HERE.parent / "tests" / "fixtures" / "asterisk-captures"
CAPTURE_NAMES = ("queue-call-and-sip", "call-centre-scenarios")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
AMI_SECRET = "bench-ami-secret"
GOALS = {"poll_p99_ms": 25.0, "capacity_ratio": 3.0, "sse_p99_ms": 100.0}
LADDER = (50, 100, 200, 300, 500, 800, 1200, 1800, 2500, 3500)
"""Offered poll rates of the capacity ladder (each held ``--step-seconds``)."""
BARS = (25.0, 50.0, 100.0, 250.0)
"""p99 bars (ms) of "throughput at equal p99": the capacity ratio is taken at the tightest
bar the peer meets at all (the naive peer misses 25 ms even at 5 polls/s under ingest)."""


# --- data ------------------------------------------------------------------------------------


async def prepare(url: str, total: int, tenants: list[str]) -> dict[str, int]:
    """Migrate a fresh database and load *total* events round-robin (setup, not measured)."""
    from sqlalchemy import insert

    from ccbridge.db.engine import create_engine
    from ccbridge.db.event_tables import EventCounterRow, EventRow
    from ccbridge.db.journal import event_id
    from ccbridge.db.migrate import run_migrations_async
    from ccbridge.domain.journal.types import StoredEvent
    from ccbridge.services.event_codec import envelope_bytes

    await run_migrations_async(url)
    engine = create_engine(url)
    t0 = datetime.now(UTC) - timedelta(days=2)  # inside the 30-day retention
    per = dict.fromkeys(tenants, 0)
    rows: list[dict[str, Any]] = []
    async with engine.begin() as conn:
        for i in range(total):
            tenant = tenants[i % len(tenants)]
            per[tenant] += 1
            at = t0 + timedelta(milliseconds=i)
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
            rows.append(
                {
                    "tenant": tenant,
                    "seq": ev.seq,
                    "id": ev.id,
                    "type": ev.type,
                    "call_id": ev.call_id,
                    "occurred_at": at,
                    "recorded_at": at,
                    "data": data,
                    "envelope": envelope_bytes(ev),
                    "has_extras": False,
                }
            )
            if len(rows) >= 20_000:
                await conn.execute(insert(EventRow.__table__), rows)
                rows = []
        if rows:
            await conn.execute(insert(EventRow.__table__), rows)
        await conn.execute(
            insert(EventCounterRow.__table__),
            [{"tenant": t, "last_seq": n} for t, n in per.items()],
        )
    await engine.dispose()
    return per


async def scratch_pg(admin_url: str, drop: str | None = None) -> str:
    """Create a scratch PostgreSQL database (or drop *drop*); return its URL."""
    import asyncpg
    from sqlalchemy import make_url

    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        if drop is not None:
            await conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            return admin_url
        name = f"ccbridge_bench_serve_{secrets.token_hex(3)}"
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def make_keys(url: str, tenants: list[str]) -> dict[str, str]:
    """A CRM key per tenant (tenants created)."""
    from ccbridge.bootstrap import build_access_service
    from ccbridge.db.engine import create_engine
    from ccbridge.domain.access import ALL_SCOPES, Principal, Role
    from ccbridge.settings import Settings

    engine = create_engine(url)
    access = build_access_service(Settings(), engine)
    admin = Principal(actor="bench", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ALL_SCOPES)
    keys = {}
    for tenant in tenants:
        await access.create_tenant(admin, tenant_id=tenant, name=tenant)
        _, keys[tenant] = await access.create_system_key(
            role=Role.CRM, tenant_id=tenant, name="bench", actor="bench"
        )
    await engine.dispose()
    return keys


# --- pbx -------------------------------------------------------------------------------------


def capture_frames() -> list[bytes]:
    """The recorded call mix's event frames (responses and list items left out)."""
    frames: list[bytes] = []
    for name in CAPTURE_NAMES:
        data = (CAPTURES / name / "ami-from-asterisk.txt").read_bytes()
        assert data.startswith(BANNER)
        for frame in data[len(BANNER) :].split(b"\r\n\r\n"):
            if frame.startswith(b"Event: ") and b"\r\nActionID: " not in frame:
                frames.append(frame + b"\r\n\r\n")
    return frames


_IDS = re.compile(rb"(?im)^(\w*(?:uniqueid|linkedid): )17954")
_QUEUE = re.compile(rb"(?m)^(Queue: )sales\r")
_TENANT_VAR = re.compile(rb"(?m)^(Variable: CCB_TENANT\r\nValue: )[^\r]*\r")


def repetition(frames: list[bytes], rep: int, tenant: str) -> list[bytes]:
    """One copy of the mix as new calls: distinct ids, the calls in *tenant*'s queue."""
    prefix = b"%05d" % (20000 + rep % 70000)
    out = []
    for f in frames:
        f = _IDS.sub(rb"\g<1>" + prefix, f)
        f = _QUEUE.sub(rb"\g<1>" + tenant.encode() + b"-sales\r", f)
        out.append(_TENANT_VAR.sub(rb"\g<1>" + tenant.encode() + b"\r", f))
    return out


async def role_pbx(args: argparse.Namespace) -> None:
    """Child process: the fake PBX; ``rate N`` on stdin sets the event rate."""
    from ccbridge.testing.fake_ami import FakeAmiServer

    server = FakeAmiServer(
        users={"ccbridge": AMI_SECRET}, write_timeout=args.ami_write_timeout, seed=1
    )
    await server.start()
    emit({"ami_port": server.port})
    frames = capture_frames()
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    rate = [0]
    sent = [0]

    async def blast() -> None:
        rep, pending = 0, list[bytes]()
        start, done = time.perf_counter(), 0
        last_rate = 0
        while True:
            await asyncio.sleep(0.005)
            if rate[0] != last_rate:
                start, done, last_rate = time.perf_counter(), 0, rate[0]
            due = int((time.perf_counter() - start) * rate[0]) - done
            if due <= 0:
                continue
            if due > rate[0]:  # more than a second behind: we, not the reader, are slow
                start, done = time.perf_counter(), 0
                continue
            batch: list[bytes] = []
            while len(batch) < due:
                if not pending:
                    pending = repetition(frames, rep, tenants[rep % len(tenants)])
                    rep += 1
                take = due - len(batch)
                batch.extend(pending[:take])
                pending = pending[take:]
            chunk = b"".join(batch)
            for s in server.sessions:
                if s.authenticated and s.events_on:
                    s.send(chunk)
            done += due
            sent[0] += due

    async def report() -> None:
        last = 0
        while True:
            await asyncio.sleep(1.0)
            emit({"ami_sent_per_s": sent[0] - last, "ami_dropped": server.dropped_slow})
            last = sent[0]

    tasks = [asyncio.create_task(blast()), asyncio.create_task(report())]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := (await stdin.readline()).decode().split():
        if line[0] == "rate":
            rate[0] = int(line[1])
        elif line[0] == "quit":
            break
    for t in tasks:
        t.cancel()
    await server.stop()


# --- server ----------------------------------------------------------------------------------


class GcPauses:
    """Stop-the-world time of the cyclic garbage collector per generation, wall and CPU (on a
    loaded machine a wall pause can be mostly time the process was not scheduled)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        self._t = (0.0, 0.0)
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = (time.perf_counter(), time.thread_time())
        else:
            wall, cpu = time.perf_counter() - self._t[0], time.thread_time() - self._t[1]
            self.pauses[info["generation"]].append((wall, cpu))

    def report(self) -> dict[str, Any]:
        """Count, max wall and max CPU pause (ms) per generation since the last report."""
        out: dict[str, Any] = {
            f"gen{g}": {
                "n": len(p),
                "max_ms": round(max((w for w, _ in p), default=0) * 1000, 1),
                "max_cpu_ms": round(max((c for _, c in p), default=0) * 1000, 1),
            }
            for g, p in self.pauses.items()
        }
        for p in self.pauses.values():
            p.clear()
        out["tracked"] = len(gc.get_objects())
        out["frozen"] = gc.get_freeze_count()
        out["threshold"] = gc.get_threshold()
        return out


class LoopLag:
    """How late the event loop wakes a 10 ms timer: what every request waits behind."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - t - 0.01)

    def report(self) -> dict[str, float]:
        """p99/max lag (ms) since the last report."""
        out = {k: v for k, v in figures(self.lags).items() if k in ("p99_ms", "max_ms")}
        self.lags.clear()
        return out


class ReadSplit:
    """Where a database-read poll page's time goes (diagnostics, patched into the read pool):
    ``queue`` from the loop's hand-off to the read thread starting it, ``run`` the SQL call on
    that thread (wall; ``run_cpu`` its CPU; the rest is waiting for the GIL after SQLite
    released it, or for a core), ``back`` from the thread's end to the loop resuming the
    page (the loop's wake-up and the GIL)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {"queue": [], "run": [], "run_cpu": [], "back": []}

    def install(self) -> None:
        """Wrap ``SqliteReadPool.fetch`` for every pool the service builds."""
        from ccbridge.db.sqlite_reads import SqliteReadPool

        parts = self.parts

        def timed(pool: Any, query: str, args: tuple[Any, ...]) -> tuple[Any, float, float, float]:
            started, cpu = time.perf_counter(), time.thread_time()
            rows = SqliteReadPool._run(pool, query, args)
            return rows, started, time.perf_counter(), time.thread_time() - cpu

        inline_fetch = SqliteReadPool.fetch

        async def fetch(pool: Any, query: str, *args: Any) -> list[Any]:
            if pool.inline:  # on the loop: no hand-off either way
                started, cpu = time.perf_counter(), time.thread_time()
                rows = await inline_fetch(pool, query, *args)
                parts["queue"].append(0.0)
                parts["run"].append(time.perf_counter() - started)
                parts["run_cpu"].append(time.thread_time() - cpu)
                parts["back"].append(0.0)
                return rows
            handed = time.perf_counter()
            loop = asyncio.get_running_loop()
            rows, started, ended, cpu = await loop.run_in_executor(
                pool._executor, timed, pool, query, args
            )
            parts["queue"].append(started - handed)
            parts["run"].append(ended - started)
            parts["run_cpu"].append(cpu)
            parts["back"].append(time.perf_counter() - ended)
            return list(rows)

        SqliteReadPool.fetch = fetch  # type: ignore[method-assign]

    def report(self) -> dict[str, Any]:
        """p50/p99 (ms) of each part since the last report, and the page count."""
        out: dict[str, Any] = {"pages": len(self.parts["queue"])}
        for name, values in self.parts.items():
            out[name] = {k: v for k, v in figures(values).items() if k in ("p50_ms", "p99_ms")}
            values.clear()
        return out


class ThreadCpu:
    """CPU seconds per thread of this process since the last report (/proc/self/task): how
    the event loop, the database writer and the read threads share the process's time."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}
        self._wall = time.perf_counter()

    @staticmethod
    def _now() -> dict[int, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        out = {}
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                out[int(tid)] = (int(stat[11]) + int(stat[12])) / ticks
        return out

    def report(self) -> dict[str, float]:
        """Cores used per thread name (summed over same-named threads) since the last call."""
        import threading

        names = {t.native_id: t.name for t in threading.enumerate()}
        now, wall = self._now(), time.perf_counter()
        span = max(wall - self._wall, 1e-9)
        cores: dict[str, float] = {}
        for tid, cpu in now.items():
            name = re.sub(r"_\d+$", "", names.get(tid, "other"))
            cores[name] = cores.get(name, 0.0) + (cpu - self._last.get(tid, 0.0)) / span
        self._last, self._wall = now, wall
        return {k: round(v, 3) for k, v in sorted(cores.items(), key=lambda kv: -kv[1])}


class ThreadJournal:
    """The journal as a writer on another thread uses it (as ``ThreadedCallWrites`` does, ADR
    0021): append in its own transaction, take a commit ticket while holding the write lock,
    and hand the committed events to the hub's loop in ticket order."""

    def __init__(self, journal: Any, hub_loop: asyncio.AbstractEventLoop) -> None:
        self._journal, self._hub_loop = journal, hub_loop

    async def append(self, db: Any, events: Any) -> Any:
        """The journal's own append (no loop-bound state)."""
        return await self._journal.append(db, events)

    async def commit(self, db: Any, stored: Any) -> None:
        """Commit, then publish on the hub's loop in commit order."""
        ticket = self._journal.order.ticket()
        committed: Any = ()
        try:
            await db.commit()
            committed = stored
        finally:
            self._journal.order.finish_from_thread(self._hub_loop, ticket, committed)


class ThreadIngest:
    """``Ingest`` on a thread with its own event loop and engine (``--fanout-writer thread``):
    the fan-out's events written off the serving loop, as production writes the call journal."""

    def __init__(self, journal: Any, url: str, tenants: list[str], rate: int) -> None:
        import threading

        hub_loop = asyncio.get_running_loop()
        self._args = (ThreadJournal(journal, hub_loop), url, tenants, rate)
        self.ingest: Ingest | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bench-ingest", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    @property
    def written(self) -> int:
        """Events committed so far."""
        return 0 if self.ingest is None else self.ingest.written

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from ccbridge.db.engine import create_engine, create_session_factory

        journal, url, tenants, rate = self._args
        engine = create_engine(url)
        self.ingest = Ingest(journal, create_session_factory(engine), tenants, rate)
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self.ingest.run()
        except Exception as exc:  # reported at stop
            self.error = exc
        finally:
            await engine.dispose()

    async def stop(self) -> BaseException | None:
        """End the writer between transactions and join its thread."""
        if self._loop is not None and self.ingest is not None:
            self._loop.call_soon_threadsafe(self.ingest._stopping.set)
        await asyncio.to_thread(self._thread.join, 30)
        return self.error


async def role_server(args: argparse.Namespace) -> None:
    """Child process: ``run_service`` (what ``ccbridge serve`` runs) against the fake PBX.

    Commands on stdin: ``ingest N`` (journal appends/s in-process), ``stop`` (end them),
    ``report`` (GC pauses and loop lag since the last report), ``quit``.
    """
    import ccbridge.bootstrap as boot
    from ccbridge.settings import Settings

    built: list[Any] = []
    real_build = boot.build_service

    def build(*a: Any, **kw: Any) -> Any:
        service = real_build(*a, **kw)
        built.append(service)
        return service

    boot.build_service = build  # the bench keeps a handle; the wiring is the real one
    gc_pauses = GcPauses()
    lag = LoopLag()
    split = ReadSplit()
    split.install()
    threads = ThreadCpu()
    checkouts = [0]  # ORM/engine connection check-outs: each is several aiosqlite hand-offs

    def checked_out(*_: Any) -> None:
        checkouts[0] += 1

    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    event.listen(Pool, "checkout", checked_out)
    serving = asyncio.create_task(boot.run_service(Settings()))
    while not built or not built[0].http.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    service = built[0]
    lagging = asyncio.create_task(lag.run())

    async def counters() -> None:
        last = (service.ami.status.events_received, service.http._hub.published)
        while True:
            await asyncio.sleep(1.0)
            now = (service.ami.status.events_received, service.http._hub.published)
            emit({"ami_per_s": now[0] - last[0], "journal_per_s": now[1] - last[1]})
            last = now

    counting = asyncio.create_task(counters())
    emit({"ready": service.http.servers[0].sockets[0].getsockname()[1]})
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    writer: list[asyncio.Task[None]] = []
    ingest: Any = None
    threaded: ThreadIngest | None = None
    names = [f"t{i:02d}" for i in range(args.tenants)]
    journal, sessions = service.journal, service.repo._sessions
    profiler: Any = None
    while line := await next_command(stdin, serving):
        if line[0] == "quit":
            break
        if line[0] == "ingest" and line[2:] == ["thread"]:
            threaded = ThreadIngest(journal, os.environ["CCBRIDGE_DATABASE_URL"], names,
                                    int(line[1]))  # fmt: skip
            writer = [asyncio.create_task(report_ingest(threaded))]  # type: ignore[arg-type]
        elif line[0] == "ingest":
            ingest = Ingest(journal, sessions, names, int(line[1]))
            writer = [asyncio.create_task(ingest.run()), asyncio.create_task(report_ingest(ingest))]
        elif line[0] == "stop" and threaded is not None:
            error = await threaded.stop()
            threaded = None
            for t in writer:
                t.cancel()
            await asyncio.gather(*writer, return_exceptions=True)
            writer = []
            emit({"stopped": True, "ingest_errors": [] if error is None else [repr(error)]})
        elif line[0] == "stop":  # between transactions, never mid-commit (Ingest.stop)
            error = await ingest.stop(writer[0]) if writer else None
            for t in writer[1:]:
                t.cancel()
            await asyncio.gather(*writer[1:], return_exceptions=True)
            writer = []
            errors = [] if error is None else [repr(error)]
            emit({"stopped": True, "ingest_errors": errors})
        elif line[0] == "profile":  # diagnostics: cProfile of the loop thread to a file
            import cProfile

            if profiler is None:
                profiler = cProfile.Profile()
                profiler.enable()
            else:
                profiler.disable()
                profiler.dump_stats(line[1])
                profiler = None
                emit({"profiled": line[1]})
        elif line[0] == "report":
            emit({"server_gc": gc_pauses.report(), "loop_lag": lag.report(),
                  "read_split": split.report(), "thread_cores": threads.report(),
                  "pool_checkouts": checkouts[0],
                  "switch_interval_ms": sys.getswitchinterval() * 1000})  # fmt: skip
        elif line[0] == "switch":  # A/B of the GIL switch interval in the same process
            sys.setswitchinterval(float(line[1]))
            emit({"switched": sys.getswitchinterval()})
        elif line[0] == "tails":  # each tenant's newest cursor, for streams that start there
            emit({"tails": {t: await journal.last_seq(t) for t in names}})
        elif line[0] == "garbage":  # diagnostics: what a full collection frees, by type
            emit({"garbage": cyclic_garbage()})
    for t in (lagging, counting):
        t.cancel()
    service.http.should_exit = True
    await serving


def cyclic_garbage(top: int = 15) -> dict[str, int]:
    """Collect everything, keeping what cycles freed; count it by type (most first)."""
    from collections import Counter

    refs: Counter[str] = Counter()
    for o in gc.get_objects():
        refs[type(o).__qualname__] += len(gc.get_referents(o))
    gc.set_debug(gc.DEBUG_SAVEALL)
    started = (time.perf_counter(), time.thread_time())
    try:
        gc.collect()
        took = (time.perf_counter() - started[0], time.thread_time() - started[1])
        counts = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return {
        "full_collection_ms": round(took[0] * 1000, 1),
        "full_collection_cpu_ms": round(took[1] * 1000, 1),
        "tracked": len(gc.get_objects()),
        "references_by_type": dict(refs.most_common(8)),
        "freed": sum(counts.values()),
        **dict(counts.most_common(top)),
    }


async def next_command(stdin: asyncio.StreamReader, serving: asyncio.Task[None]) -> list[str]:
    """The next command line, or none once the service ended by itself (SIGTERM)."""
    read = asyncio.ensure_future(stdin.readline())
    await asyncio.wait({read, serving}, return_when=asyncio.FIRST_COMPLETED)
    if not read.done():
        read.cancel()
        return []
    return read.result().decode().split()


def server_env(url: str, ami_port: int, http_port: int, work: str) -> dict[str, str]:
    """``ccbridge serve``'s settings for the bench (dev mode, the fake PBX, quiet logs)."""
    return {
        **os.environ,
        "CCBRIDGE_DATABASE_URL": url,
        "CCBRIDGE_LOG_LEVEL": "WARNING",
        "CCBRIDGE_SIMULATE_PBX": "false",
        "CCBRIDGE_AMI__HOST": "127.0.0.1",
        "CCBRIDGE_AMI__PORT": str(ami_port),
        "CCBRIDGE_AMI__SECRET": AMI_SECRET,
        "CCBRIDGE_AMI__AUTH": "plain",
        "CCBRIDGE_API__PORT": str(http_port),
        "CCBRIDGE_AGI__PORT": "0",
        "CCBRIDGE_AUTH__DEV_KEY_FILE": f"{work}/dev-key",
        "CCBRIDGE_RECORDINGS__DIR": f"{work}/recordings",
        "CCBRIDGE_IVR__PROMPTS_DIR": f"{work}/prompts",
        "CCBRIDGE_ASTERISK_GENERATED_DIR": f"{work}/generated",
        "CCBRIDGE_PBX_RECORDS__BACKFILL": "false",
    }


# --- cost ------------------------------------------------------------------------------------


async def role_closed(args: argparse.Namespace) -> None:
    """Child process: ``--rate`` pages back to back on 4 connections (closed loop)."""
    import random

    spec = json.loads(Path(args.spec).read_text())  # noqa: ASYNC240 (setup)
    per: dict[str, int] = spec["per"]
    keys: dict[str, str] = spec["keys"]
    tenants = sorted(per)
    rng = random.Random(args.seed)

    refused = [0]

    async def worker(n: int) -> None:
        http = Http(args.port)
        for _ in range(n):
            tenant = rng.choice(tenants)
            after = rng.randrange(0, per[tenant] - 100)
            try:
                body = await http.get(f"/api/v1/events?after={after}&limit=100", keys[tenant])
            except RuntimeError as exc:  # a 503 (database busy) counts, and the loop goes on
                if b" 503 " not in str(exc).encode():
                    raise
                refused[0] += 1
                continue
            assert body.count(b'"schema_version"') == 100

    started = time.perf_counter()
    await asyncio.gather(*(worker(args.rate // 4) for _ in range(4)))
    emit({"closed_pages": args.rate // 4 * 4, "wall_s": time.perf_counter() - started,
          "refused_503": refused[0]})  # fmt: skip


async def page_cost(port: int, pid: int, spec: str, pages: int) -> dict[str, float]:
    """Server CPU per page over *pages* closed-loop pages (after 200 unmeasured)."""
    from events import cpu_seconds

    async with role("--role", "closed", "--port", str(port), "--spec", spec,
                    "--rate", "200") as warm:  # fmt: skip
        await warm.wait_for("closed_pages", limit_s=600)
    before = cpu_seconds(pid)
    async with role("--role", "closed", "--port", str(port), "--spec", spec,
                    "--rate", str(pages)) as gen:  # fmt: skip
        res = await gen.wait_for("closed_pages", limit_s=600)
    used = cpu_seconds(pid) - before
    return {
        "cpu_ms_per_page": round(used / res["closed_pages"] * 1000, 3),
        "pages_per_s": round(res["closed_pages"] / res["wall_s"]),
        "refused_503": res["refused_503"],
    }


# --- sse -------------------------------------------------------------------------------------


async def role_sse(args: argparse.Namespace) -> None:
    """Child process: SSE subscribers from each tenant's tail; delivery latency."""
    spec = json.loads(Path(args.spec).read_text())  # noqa: ASYNC240 (setup)
    keys: dict[str, str] = spec["keys"]
    tail: dict[str, int] = spec["tail"]
    tenants = sorted(keys)
    lat: list[float] = []
    frames = [0]
    connected = [0]
    measuring = [False]

    refused = [0]

    async def subscriber(tenant: str) -> None:
        while True:  # a 503 (database busy) is retried, as its Retry-After asks
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            writer.write(
                f"GET /api/v1/events/stream?after={tail[tenant]} HTTP/1.1\r\nhost: bench\r\n"
                f"authorization: Bearer {keys[tenant]}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 503"):
                break
            writer.close()
            refused[0] += 1
            await asyncio.sleep(1.0)
        assert head.startswith(b"HTTP/1.1 200"), head
        connected[0] += 1
        await measure_stream(reader, measuring, frames, lat)

    subs = [
        asyncio.create_task(subscriber(tenants[i % len(tenants)])) for i in range(args.subscribers)
    ]
    while connected[0] < args.subscribers:
        await asyncio.sleep(0.05)
        for t in subs:
            if t.done():
                t.result()
    emit({"connected": connected[0], "refused_503": refused[0]})
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


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def role(*argv: str, stdin: bool = False, env: dict[str, str] | None = None,
               script: str = __file__) -> AsyncIterator[Child]:  # fmt: skip
    """A role of this bench (or another script) in its own process; always stopped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.PIPE if stdin else None,
        env=env,
    )
    c = Child(proc)
    try:
        yield c
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
        await c.stop()


def mean_after(values: list[int], first: int) -> int:
    """Mean of per-second counts from index *first* on, the first second left out."""
    window = values[first + 1 :] or values[first:] or [0]
    return round(sum(window) / len(window))


async def wait_http(port: int, key: str) -> None:
    """Until the server answers a poll."""
    async with asyncio.timeout(120):
        while True:
            with contextlib.suppress(OSError, RuntimeError, asyncio.IncompleteReadError):
                await Http(port).get("/api/v1/events?limit=1", key)
                return
            await asyncio.sleep(0.2)


async def poll_once(port: int, spec: str, rate: int, seconds: float, seed: int) -> dict[str, Any]:
    """One open-loop poll phase against *port*."""
    argv = ["--role", "poll", "--mode", "http", "--port", str(port), "--spec", spec,
            "--rate", str(rate), "--seconds", str(seconds), "--seed", str(seed)]  # fmt: skip
    async with role(*argv) as gen:
        return await gen.wait_for("achieved_per_s", limit_s=seconds * 4 + 60)


def fits(res: dict[str, Any], rate: int, bar_ms: float = GOALS["poll_p99_ms"]) -> bool:
    """Served at *rate* with p99 ≤ *bar_ms*, ≥ 97 % achieved and no failure."""
    return res["p99_ms"] <= bar_ms and res["achieved_per_s"] >= 0.97 * rate and res["failed"] == 0


async def capacity(port: int, spec: str, seconds: float, label: str) -> list[dict[str, Any]]:
    """The ladder's steps, up until a step misses the loosest of :data:`BARS`."""
    steps: list[dict[str, Any]] = []
    for rate in LADDER:
        res = await poll_once(port, spec, rate, seconds, seed=rate)
        emit({"phase": f"capacity_{label}", "offered_per_s": rate, **res})
        steps.append({"rate": rate, "p99_ms": res["p99_ms"], "achieved": res["achieved_per_s"],
                      "failed": res["failed"]})  # fmt: skip
        if not fits(res, rate, BARS[-1]):
            break
    return steps


def capacity_at(steps: list[dict[str, Any]], bar_ms: float) -> int:
    """The highest rate served within *bar_ms* with every lower step too (0: not the first)."""
    best = 0
    for step in steps:
        if not fits({"achieved_per_s": step["achieved"], **step}, step["rate"], bar_ms):
            break
        best = step["rate"]
    return best


def equal_p99(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    """Capacity of both at every bar, and the ratio at the tightest bar the peer meets at all
    ("throughput at equal p99": at 25 ms when the peer manages it, else where it does)."""
    table = {bar: (capacity_at(ours, bar), capacity_at(theirs, bar)) for bar in BARS}
    for bar, (mine, peer) in table.items():
        if peer:
            return {"bar_ms": bar, "ratio": round(mine / peer, 2), "capacities": table}
    return {"bar_ms": None, "ratio": None, "capacities": table}


class Rig:
    """The fake PBX and the ccbridge server, started once for every run."""

    def __init__(self, pbx: Child, server: Child, port: int) -> None:
        self.pbx, self.server, self.port = pbx, server, port

    async def report(self) -> dict[str, Any]:
        """Server GC pauses and loop lag since the last report."""
        mark = len(self.server.lines)
        self.server.send("report")
        line = await self.server.wait_for("server_gc", since=mark)
        keys = ("server_gc", "loop_lag", "read_split", "thread_cores", "switch_interval_ms",
                "pool_checkouts")  # fmt: skip
        return {k: line[k] for k in keys}

    async def switch(self, seconds: float) -> None:
        """Set the server's GIL switch interval (``sys.setswitchinterval``)."""
        mark = len(self.server.lines)
        self.server.send(f"switch {seconds}")
        await self.server.wait_for("switched", since=mark)


async def b6(
    args: argparse.Namespace, rig: Rig, spec: str, naive_port: int, naive_pid: int
) -> dict[str, Any]:
    """One B6 run: CPU per page of both servers (no ingest), poll at 300/s under 10k AMI
    ev/s, then capacity of both servers under that ingest."""
    ours_cost = await page_cost(rig.port, rig.server.proc.pid, spec, args.cost_pages)
    their_cost = await page_cost(naive_port, naive_pid, spec, args.cost_pages)
    cost_ratio = round(their_cost["cpu_ms_per_page"] / ours_cost["cpu_ms_per_page"], 2)
    emit({"phase": "b6_page_cost", "ccbridge": ours_cost, "naive": their_cost,
          "naive_vs_ccbridge_cpu": cost_ratio, "load": loadavg()})  # fmt: skip
    rig.pbx.send(f"rate {args.ami_rate}")
    await asyncio.sleep(3)
    await poll_once(rig.port, spec, args.poll_rate, 3, seed=99)  # warm-up, not measured
    await rig.report()
    first_pbx = len(rig.pbx.counts("ami_sent_per_s"))
    first_srv = len(rig.server.counts("ami_per_s"))
    meter = CpuMeter(server=rig.server.proc.pid, pbx=rig.pbx.proc.pid)
    load = loadavg()
    res = await poll_once(rig.port, spec, args.poll_rate, args.seconds, seed=1)
    cores = meter.cores()
    ami_in = mean_after(rig.server.counts("ami_per_s"), first_srv)
    journal_in = mean_after(rig.server.counts("journal_per_s"), first_srv)
    sent = mean_after(rig.pbx.counts("ami_sent_per_s"), first_pbx)
    dropped = max(rig.pbx.counts("ami_dropped") or [0])
    poll = {
        "phase": "b6_poll",
        "offered_per_s": args.poll_rate,
        **res,
        "ami_sent_per_s": sent,
        "ami_ingested_per_s": ami_in,
        "journal_events_per_s": journal_in,
        "ami_dropped": dropped,
        **cores,
        **(await rig.report()),
        "load": f"{load} -> {loadavg()}",
    }
    emit(poll)
    our_steps = await capacity(rig.port, spec, args.step_seconds, "ccbridge")
    their_steps = await capacity(naive_port, spec, args.step_seconds, "naive")
    rig.pbx.send("rate 0")
    compared = equal_p99(our_steps, their_steps)
    ratio = compared["ratio"]
    ok = (
        fits(res, args.poll_rate)
        and ami_in >= 0.95 * args.ami_rate
        and dropped == 0
        and ratio is not None
        and ratio >= GOALS["capacity_ratio"]
    )
    out = {
        "bench": "B6",
        "poll_p99_ms": res["p99_ms"],
        "poll_achieved_per_s": res["achieved_per_s"],
        "ami_ingested_per_s": ami_in,
        "journal_events_per_s": journal_in,
        "ami_dropped": dropped,
        "capacity_ccbridge_per_s": capacity_at(our_steps, GOALS["poll_p99_ms"]),
        "capacity_naive_per_s": capacity_at(their_steps, GOALS["poll_p99_ms"]),
        "capacity_ratio": ratio,
        "capacity_ratio_at_p99_ms": compared["bar_ms"],
        "capacities_by_p99_bar": compared["capacities"],
        "cpu_ms_per_page_ccbridge": ours_cost["cpu_ms_per_page"],
        "cpu_ms_per_page_naive": their_cost["cpu_ms_per_page"],
        "page_cpu_ratio": cost_ratio,
        "ladder_ccbridge": our_steps,
        "ladder_naive": their_steps,
        "pass": ok,
    }
    emit(out)
    return out


async def b6_ab(args: argparse.Namespace, rig: Rig, spec: str) -> list[dict[str, Any]]:
    """Diagnostics: the 300/s poll phase under each AMI rate and GIL switch interval of
    ``--ab-ingest`` x ``--ab-switch``, interleaved for ``--ab-rounds`` rounds in the same
    server process, so a loaded machine's drift hits every condition alike."""
    rates = [int(x) for x in args.ab_ingest.split(",")]
    intervals = [float(x) for x in args.ab_switch.split(",")]
    default = 0.005
    out = []
    for round_ in range(args.ab_rounds):
        for rate in rates:
            rig.pbx.send(f"rate {rate}")
            await asyncio.sleep(2)
            before = await rig.report()
            first_srv = len(rig.server.counts("ami_per_s"))
            await asyncio.sleep(args.seconds / 2)  # no polls: what the ingest alone costs
            alone = await rig.report()
            ingested = mean_after(rig.server.counts("ami_per_s"), first_srv)
            checkouts = alone["pool_checkouts"] - before["pool_checkouts"]
            emit({"phase": "b6_ab_ingest_only", "round": round_ + 1, "ami_rate": rate,
                  "ami_per_s": ingested, "thread_cores": alone["thread_cores"],
                  "pool_checkouts_per_s": round(checkouts / (args.seconds / 2), 1),
                  "loop_lag": alone["loop_lag"], "load": loadavg()})  # fmt: skip
            for interval in intervals:
                await rig.switch(interval)
                await poll_once(rig.port, spec, args.poll_rate, 2, seed=98)  # settle
                await rig.report()
                first_srv = len(rig.server.counts("ami_per_s"))
                meter = CpuMeter(server=rig.server.proc.pid)
                load = loadavg()
                res = await poll_once(rig.port, spec, args.poll_rate, args.seconds, seed=round_)
                row = {
                    "phase": "b6_ab",
                    "round": round_ + 1,
                    "ami_rate": rate,
                    "switch_ms": interval * 1000,
                    "p50_ms": res["p50_ms"],
                    "p95_ms": res["p95_ms"],
                    "p99_ms": res["p99_ms"],
                    "achieved_per_s": res["achieved_per_s"],
                    "ami_ingested_per_s": mean_after(rig.server.counts("ami_per_s"), first_srv),
                    **meter.cores(),
                    **(await rig.report()),
                    "load": load,
                }
                emit(row)
                out.append(row)
    await rig.switch(default)
    rig.pbx.send("rate 0")
    return out


async def b6_profile(args: argparse.Namespace, rig: Rig, spec: str, work: str) -> None:
    """Diagnostics: cProfile of the server's event-loop thread during the 300/s poll phase at
    each rate of ``--ab-ingest``; prints the top functions by own time."""
    import pstats

    for rate in [int(x) for x in args.ab_ingest.split(",")]:
        rig.pbx.send(f"rate {rate}")
        await asyncio.sleep(2)
        path = f"{work}/loop-{rate}.prof"
        rig.server.send("profile")
        await rig.report()
        res = await poll_once(rig.port, spec, args.poll_rate, args.seconds, seed=7)
        mark = len(rig.server.lines)
        rig.server.send(f"profile {path}")
        await rig.server.wait_for("profiled", since=mark)
        emit({"phase": "b6_profile", "ami_rate": rate, "p99_ms": res["p99_ms"],
              **(await rig.report()), "profile": path})  # fmt: skip
        stats = pstats.Stats(path)
        total = stats.total_tt  # type: ignore[attr-defined]
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:30]  # type: ignore[attr-defined]
        for (file, line, name), (_cc, calls, tt, ct, _callers) in rows:
            emit({"own_pct": round(tt / total * 100, 1), "cum_pct": round(ct / total * 100, 1),
                  "calls": calls, "fn": f"{Path(file).name}:{line}:{name}"})  # fmt: skip
    rig.pbx.send("rate 0")


async def sse_once(args: argparse.Namespace, rig: Rig, spec: str, subscribers: int,
                   seconds: float) -> dict[str, Any]:  # fmt: skip
    """One SSE phase: *subscribers* streams while the server appends ``--fanout-rate``/s."""
    mark = len(rig.server.lines)
    rig.server.send("tails")  # streams start at the newest cursor, not behind earlier runs
    tails = (await rig.server.wait_for("tails", since=mark))["tails"]
    here = json.loads(Path(spec).read_text())  # noqa: ASYNC240 (setup)
    spec = f"{spec}.sse.json"
    Path(spec).write_text(json.dumps({**here, "tail": tails}))  # noqa: ASYNC240 (setup)
    argv = ["--role", "sse", "--port", str(rig.port), "--spec", spec, "--subscribers",
            str(subscribers), "--seconds", str(seconds), "--warmup", "2"]  # fmt: skip
    async with role(*argv) as sse:
        await sse.wait_for("connected", limit_s=120)
        mark = len(rig.server.lines)
        writer = " thread" if args.fanout_writer == "thread" else ""
        rig.server.send(f"ingest {args.fanout_rate}{writer}")
        await rig.report()
        meter = CpuMeter(server=rig.server.proc.pid)
        try:
            res = await sse.wait_for("deliveries", limit_s=seconds * 4 + 60)
        finally:
            rig.server.send("stop")
            stopped = await rig.server.wait_for("stopped", since=mark)
        cores = meter.cores()
    if stopped["ingest_errors"]:
        emit({"ingest_errors": stopped["ingest_errors"]})
    rates = [int(x["ingest_per_s"]) for x in rig.server.lines[mark:] if "ingest_per_s" in x]
    return {**res, "ingest_per_s": mean_after(rates, 0), **cores, **(await rig.report())}


async def b7(args: argparse.Namespace, rig: Rig, spec: str) -> dict[str, Any]:
    """One B7 run: 500 subscribers, then the single-subscriber peer, same ingest."""
    load = loadavg()
    profile = os.environ.get("B7_PROFILE")  # diagnostics: cProfile of the loop, 500 streams
    if profile:
        rig.server.send("profile")
    many = await sse_once(args, rig, spec, args.subscribers, args.seconds)
    if profile:
        mark = len(rig.server.lines)
        rig.server.send(f"profile {profile}")
        await rig.server.wait_for("profiled", since=mark)
    expected = many["ingest_per_s"] * args.subscribers // args.tenants
    emit({"phase": "b7_sse", "subscribers": args.subscribers, "expected_deliveries_per_s":
          expected, **many, "load": f"{load} -> {loadavg()}"})  # fmt: skip
    one = await sse_once(args, rig, spec, 1, max(5.0, args.seconds / 2))
    emit({"phase": "b7_sse_peer", "subscribers": 1, **one})
    ok = (
        many["p99_ms"] <= GOALS["sse_p99_ms"]
        and many["ingest_per_s"] >= 0.95 * args.fanout_rate
        and many["deliveries_per_s"] >= 0.95 * expected
    )
    out = {
        "bench": "B7",
        "sse_p99_ms": many["p99_ms"],
        "deliveries_per_s": many["deliveries_per_s"],
        "expected_deliveries_per_s": expected,
        "ingest_per_s": many["ingest_per_s"],
        "single_subscriber_p99_ms": one["p99_ms"],
        "p99_vs_single_subscriber": round(many["p99_ms"] / one["p99_ms"], 2)
        if one["p99_ms"] > 0  # NaN (no frame reached the single stream) compares False
        else None,
        "gen2_max_ms": many["server_gc"]["gen2"]["max_ms"],
        "pass": ok,
    }
    emit(out)
    return out


def spread(values: list[float]) -> dict[str, float] | None:
    """min/median/max (``None`` when no run had a value)."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


async def orchestrate(args: argparse.Namespace) -> int:
    """Set up, run every bench ``--runs`` times, summarise; 1 when a goal is missed."""
    from sqlalchemy import make_url

    work = tempfile.mkdtemp(prefix="ccb-bench-serve-")
    db = f"{work}/events.db"  # the peer's database (and ccbridge's on SQLite)
    tenants = [f"t{i:02d}" for i in range(args.tenants)]
    t = time.perf_counter()
    url = f"sqlite+aiosqlite:///{db}"
    per = await prepare(url, args.events, tenants)
    if args.database == "postgresql":  # the same rows in PostgreSQL for ccbridge
        url = await scratch_pg(args.pg)
        assert await prepare(url, args.events, tenants) == per
    keys = await make_keys(url, tenants)
    emit({"setup": args.database, "db": url, "events": args.events,
          "s": round(time.perf_counter() - t)})  # fmt: skip
    try:
        return await measure(args, work, db, url, tenants, per, keys)
    finally:
        if args.database == "postgresql":
            await scratch_pg(args.pg, drop=make_url(url).database)


async def measure(args: argparse.Namespace, work: str, db: str, url: str, tenants: list[str],
                  per: dict[str, int], keys: dict[str, str]) -> int:  # fmt: skip
    """Start the rig, run the benches, summarise; 1 when a goal is missed."""
    import subprocess

    rev = subprocess.run(  # noqa: ASYNC221 (setup, not measured)
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    spec = f"{work}/spec.json"
    Path(spec).write_text(json.dumps({"per": per, "keys": keys, "tail": per}))  # noqa: ASYNC240
    results: dict[str, list[dict[str, Any]]] = {"B6": [], "B7": []}
    http_port, naive_port = free_port(), free_port()
    async with role("--role", "pbx", "--tenants", str(args.tenants), "--ami-write-timeout",
                    str(args.ami_write_timeout), stdin=True) as pbx:  # fmt: skip
        ami_port = (await pbx.wait_for("ami_port"))["ami_port"]
        env = server_env(url, ami_port, http_port, work)
        async with role("--role", "server", "--tenants", str(args.tenants), stdin=True,
                        env=env) as server:  # fmt: skip
            await server.wait_for("ready", limit_s=120)
            await wait_http(http_port, keys[tenants[0]])
            rig = Rig(pbx, server, http_port)
            naive_argv = ["--db", db, "--spec", spec, "--port", str(naive_port)]
            async with role(*naive_argv, script=str(HERE / "naive_poll_app.py")) as naive:
                await wait_http(naive_port, keys[tenants[0]])
                for run in range(args.runs):
                    emit({"run": run + 1, "load": loadavg()})
                    if "b6" in args.bench:
                        results["B6"].append(await b6(args, rig, spec, naive_port, naive.proc.pid))
                    if "b7" in args.bench:
                        results["B7"].append(await b7(args, rig, spec))
                    if "ab" in args.bench.split(","):
                        await b6_ab(args, rig, spec)
                    if "prof" in args.bench.split(","):
                        await b6_profile(args, rig, spec, work)
            server.send("quit")
    failed = False
    for name, runs in results.items():
        if not runs:
            continue
        keys_of = {
            "B6": ("poll_p99_ms", "ami_ingested_per_s", "capacity_ccbridge_per_s",
                   "capacity_naive_per_s", "capacity_ratio", "capacity_ratio_at_p99_ms",
                   "cpu_ms_per_page_ccbridge",
                   "cpu_ms_per_page_naive", "page_cpu_ratio"),
            "B7": ("sse_p99_ms", "deliveries_per_s", "single_subscriber_p99_ms",
                   "p99_vs_single_subscriber", "gen2_max_ms"),
        }[name]  # fmt: skip
        summary = {k: spread([r[k] for r in runs if r[k] is not None]) for k in keys_of}
        ok = all(r["pass"] for r in runs)
        failed |= not ok
        emit({"summary": name, "commit": rev.stdout.strip(), "runs": len(runs),
              "pass": ok, **summary, "load": loadavg()})  # fmt: skip
    return 1 if failed else 0


def main() -> None:
    """Dispatch on ``--role`` (the orchestrator when absent)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--role", default="main", choices=["main", "pbx", "server", "poll", "closed", "sse"]
    )
    ap.add_argument("--bench", default="b6,b7")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--step-seconds", type=float, default=5.0)
    ap.add_argument("--poll-rate", type=int, default=300)
    ap.add_argument("--cost-pages", type=int, default=2000, help="closed-loop pages per server")
    ap.add_argument("--ami-rate", type=int, default=10_000)
    ap.add_argument(
        "--ami-write-timeout",
        type=float,
        default=1.0,
        help="seconds a blocked write may take before the PBX drops the reader "
        "(writetimeout in asterisk/manager.d/ccbridge.conf: 1000 ms)",
    )
    ap.add_argument("--ab-ingest", default="0,10000", help="AMI rates of --bench ab")
    ap.add_argument("--ab-switch", default="0.005,0.0005", help="GIL switch intervals (s), ab")
    ap.add_argument("--ab-rounds", type=int, default=2)
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument(
        "--fanout-writer",
        default="loop",
        choices=["loop", "thread"],
        help="B7's in-process journal writer: on the serving loop, or on a thread of its own "
        "(as production writes the call journal, ADR 0021)",
    )
    ap.add_argument("--fanout-rate", type=int, default=3000)
    ap.add_argument(
        "--database",
        default="sqlite",
        choices=["sqlite", "postgresql"],
        help="ccbridge's database (the peer always reads a SQLite copy of the same rows)",
    )
    ap.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    # Internal (children).
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="http", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=2.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "pbx":
        asyncio.run(role_pbx(args))
    elif args.role == "server":
        from ccbridge.event_loop import run
        from ccbridge.settings import Settings

        run(role_server(args), Settings().api.event_loop)
    elif args.role == "poll":
        asyncio.run(role_poll(args))
    elif args.role == "closed":
        asyncio.run(role_closed(args))
    elif args.role == "sse":
        asyncio.run(role_sse(args))
    else:
        sys.exit(asyncio.run(orchestrate(args)))


if __name__ == "__main__":
    main()
