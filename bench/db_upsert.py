"""B8: call persistence on the production write path, journal included, vs the raw driver.

Usage: .venv/bin/python bench/db_upsert.py [--calls 5000] [--batch 1000] [--runs 3] [--pg URL]

Production path (what ``ccbridge serve`` runs): snapshots submitted to the ``CallBatchWriter``,
flushed through ``ThreadedCallWrites`` (the database writer thread): ``CallPersistence``
derives the journal events against what it last wrote, and the batch store writes calls,
call parameters and events in one transaction; the hub hears each commit on this loop.

Data: calls reduced by the real ``CallTracker`` from telephony events (trunk channel, tenant
variable, queue join, agent ringing, answer, completion, hang-up) and persisted in four
steps (queued, ringing, answered, ended), each step of a block of calls one batch, as the
batch writer sees them during traffic: one insert and three updates per call, each adding
one journal event. A "row" is one call snapshot written (with its parameters and events).

Peer in the same run, on the same rows: the bare driver with every tuple and envelope
prepared beforehand (sqlite3 ``executemany`` of the production statements; asyncpg ``COPY``
into a temp table merged with the same version guard, events copied straight in). Prints
min/median/max of the runs and the ratio to the peer; exits 1 when the production median
misses its goal (≥ 50,000 rows/s on SQLite, ≥ 100,000 on PostgreSQL, journal included).

A second bare-driver pass, "raw, schema 0021", writes the same rows into a database migrated
only to 0021 with the statements of before migration 0023 (every column set on update, the
event JSON stored twice): the schema change's own effect, measured in the same run (ADR 0029).
Each figure is also given per CPU-second of this process (all its threads), which load from
other processes skews far less than the wall clock; on PostgreSQL that leaves out the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.call_batches import (
    CALL_COLUMNS,
    EVENT_COLUMNS,
    PARAM_COLUMNS,
    PG_BUMP,
    SQLITE_BUMP,
    SQLITE_CALLS,
    SQLITE_CALLS_SAME,
    SQLITE_EVENTS,
    SQLITE_PARAMS,
    call_row,
    params_row,
    pg_time,
    upsert_set,
)
from ccbridge.db.engine import SQLITE_PRAGMAS, create_engine, create_session_factory
from ccbridge.db.journal import SqlJournal, stored_event
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.sqlite_rows import sqlite_time
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.calls.events import (
    AgentAnswered,
    AgentCompleted,
    AgentRinging,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelVariableSet,
    TelephonyEvent,
)
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.domain.journal.derive import call_events
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.services.event_hub import EventHub

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OLD_SCHEMA = "0021"
"""The last revision before the event JSON was stored once (migration 0023)."""
OLD_EVENT_COLUMNS = (*EVENT_COLUMNS[:7], "data", *EVENT_COLUMNS[7:])
OLD_SQLITE_EVENTS = (
    f"INSERT INTO events ({', '.join(OLD_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(OLD_EVENT_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)
GOALS = {"SQLite": 50_000.0, "PostgreSQL": 100_000.0}
"""Rows/s the production path must reach, journal included (issue 16, B8)."""


def call_steps(n: int) -> list[list[CallRecord]]:
    """Per step (queued, ringing, answered, ended) the snapshot of each of *n* calls."""
    tracker = CallTracker(keep_ended=n)
    steps: list[list[CallRecord]] = [[], [], [], []]
    for i in range(n):
        at = T0 + timedelta(seconds=i)
        lid = f"1795433{i:06d}.{2 * i}"
        agent_uid = f"1795433{i:06d}.{2 * i + 1}"
        trunk = f"PJSIP/trunk-{i:08x}"
        agent = f"Local/{1100 + i % 400}@agents"
        member = f"{1100 + i % 400} 坐席"
        tenant = f"t{i % 20}"
        queue = f"{tenant}-sales"
        caller = f"138{i:08d}"
        phases: list[list[TelephonyEvent]] = [
            [
                ChannelCreated(at, lid, lid, trunk, caller, "张三", "4008001234", "from-trunk"),
                ChannelVariableSet(at, lid, lid, trunk, "CCB_TENANT", tenant),
                CallerJoinedQueue(at + timedelta(seconds=2), lid, lid, trunk, queue, caller, None),
            ],
            [AgentRinging(at + timedelta(seconds=3), lid, lid, trunk, queue, agent, member)],
            [
                ChannelCreated(
                    at + timedelta(seconds=3),
                    lid,
                    agent_uid,
                    f"{agent}-{i:08x};1",
                    None,
                    None,
                    "1100",
                    "agents",
                ),
                AgentAnswered(at + timedelta(seconds=9), lid, lid, trunk, queue, agent, member),
            ],
            [
                AgentCompleted(at + timedelta(seconds=120), lid, lid, trunk, queue, "agent"),
                ChannelHungUp(at + timedelta(seconds=120), lid, agent_uid, agent, "16"),
                ChannelHungUp(at + timedelta(seconds=120), lid, lid, trunk, "16"),
            ],
        ]
        for step, events in enumerate(phases):
            for event in events:
                tracker.apply_event(event)
            rec = tracker.get(lid)
            assert rec is not None
            steps[step].append(rec)
    return steps


def waves(steps: list[list[CallRecord]], batch: int) -> list[list[CallRecord]]:
    """The batches the writer flushes: each step of each block of *batch* calls."""
    return [step[start : start + batch] for step in steps for start in range(0, len(step), batch)]


@dataclass(frozen=True, slots=True)
class Run:
    """One timed pass: rows (call snapshots) and journal events written in *seconds*, which
    took *cpu* seconds of this process (every thread; not the PostgreSQL server's)."""

    rows: int
    events: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds

    @property
    def cpu_rate(self) -> float:
        """Rows per CPU-second of this process: what load on other processes does not skew."""
        return self.rows / self.cpu


class Clock:
    """Wall clock and this process's CPU time since construction."""

    def __init__(self) -> None:
        """Start both clocks."""
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def run(self, rows: int, events: int) -> Run:
        """The pass so far as a :class:`Run`."""
        wall = time.perf_counter() - self._wall
        return Run(rows, events, wall, time.process_time() - self._cpu)


async def production_run(url: str, batches: list[list[CallRecord]], batch: int) -> Run:
    """The production path on a migrated database: batch writer → writer thread → store."""
    engine = create_engine(url)
    try:
        hub = EventHub()
        journal = SqlJournal(create_session_factory(engine), on_commit=hub.publish)
        writes = ThreadedCallWrites.for_engine(engine, journal)
        writer = CallBatchWriter(writes, batch_size=batch)
        rows = 0
        clock = Clock()
        for wave in batches:
            for record in wave:
                writer.submit(record)
            rows += await writer.flush()
        run = clock.run(rows, hub.published)
        writes.close()
        return run
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Prepared:
    """One batch as the bare driver gets it: every tuple and envelope already built."""

    calls: list[tuple[Any, ...]]
    params: list[tuple[Any, ...]]
    counts: list[tuple[str, int]]
    events: list[tuple[Any, ...]]
    old_events: list[tuple[Any, ...]]
    """As written before migration 0023: the ``data`` JSON beside the envelope."""


def prepare(batches: list[list[CallRecord]], *, sqlite: bool) -> tuple[list[Prepared], int]:
    """The peer's input: the same rows and events, serialised outside the timing."""
    stamp = sqlite_time if sqlite else pg_time
    now = datetime.now(UTC)
    updated = stamp(now)
    last: dict[str, CallRecord] = {}
    seqs: dict[str, int] = {}
    out: list[Prepared] = []
    total = 0
    for wave in batches:
        stored: list[StoredEvent] = []
        for rec in wave:
            for e in call_events(last.get(rec.call_id), rec):
                seqs[e.tenant] = seqs.get(e.tenant, 0) + 1
                stored.append(stored_event(e.tenant, seqs[e.tenant], e, now))
            last[rec.call_id] = rec
        counts: dict[str, int] = {}
        for e in stored:
            counts[e.tenant] = counts.get(e.tenant, 0) + 1
        events = [
            (
                e.tenant,
                e.seq,
                e.id,
                e.type,
                e.call_id,
                stamp(e.occurred_at),
                updated,
                e.encoded,
                e.has_extras,
            )
            for e in stored
        ]
        old = [
            (*row[:7], orjson.dumps(e.data).decode(), *row[7:])
            for row, e in zip(events, stored, strict=True)
        ]
        total += len(events)
        out.append(
            Prepared(
                [call_row(r, updated, stamp) for r in wave],
                [params_row(r, updated) for r in wave],
                sorted(counts.items()),
                events,
                old,
            )
        )
    return out, total


def sqlite_raw_run(path: Path, prepared: list[Prepared], events: int, *, old: bool = False) -> Run:
    """The same statements with plain sqlite3 ``executemany``, tuples ready; with *old*, the
    statements of before migration 0023 (on a database at :data:`OLD_SCHEMA`)."""
    calls_sql = SQLITE_CALLS if old else SQLITE_CALLS_SAME
    events_sql = OLD_SQLITE_EVENTS if old else SQLITE_EVENTS
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    try:
        rows = 0
        clock = Clock()
        for p in prepared:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(calls_sql, p.calls)
            conn.executemany(SQLITE_PARAMS, p.params)
            for tenant, n in p.counts:
                conn.execute(SQLITE_BUMP, (tenant, n)).fetchone()
            conn.executemany(events_sql, p.old_events if old else p.events)
            conn.execute("COMMIT")
            rows += len(p.calls)
        return clock.run(rows, events)
    finally:
        conn.close()


def _merge(table: str, columns: Sequence[str]) -> str:
    cols = ", ".join(columns)
    return f"INSERT INTO {table} ({cols}) SELECT {cols} FROM tmp_{table} " + upsert_set(
        columns, table
    )


async def pg_raw_run(dsn: str, prepared: list[Prepared], events: int, *, old: bool = False) -> Run:
    """COPY into temp tables merged with the version guard; events copied straight in (with
    *old*, with their ``data`` JSON too, into a database at :data:`OLD_SCHEMA`)."""
    event_columns = list(OLD_EVENT_COLUMNS if old else EVENT_COLUMNS)
    conn = await asyncpg.connect(dsn)
    try:
        for table in ("calls", "call_params"):
            await conn.execute(
                f"CREATE TEMP TABLE tmp_{table} (LIKE {table}) ON COMMIT DELETE ROWS"
            )
        merge_calls = _merge("calls", CALL_COLUMNS)
        merge_params = _merge("call_params", PARAM_COLUMNS)
        rows = 0
        clock = Clock()
        for p in prepared:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "tmp_calls", records=p.calls, columns=list(CALL_COLUMNS)
                )
                await conn.execute(merge_calls)
                await conn.copy_records_to_table(
                    "tmp_call_params", records=p.params, columns=list(PARAM_COLUMNS)
                )
                await conn.execute(merge_params)
                await conn.fetch(PG_BUMP, [t for t, _ in p.counts], [n for _, n in p.counts])
                await conn.copy_records_to_table(
                    "events", records=p.old_events if old else p.events, columns=event_columns
                )
            rows += len(p.calls)
        return clock.run(rows, events)
    finally:
        await conn.close()


def spread(runs: list[Run]) -> str:
    """min / median / max rows/s, then rows per CPU-second of this process."""
    rates = sorted(r.rate for r in runs)
    cpu = sorted(r.cpu_rate for r in runs)
    return (
        f"{rates[0]:>9,.0f} / {statistics.median(rates):>9,.0f} / {rates[-1]:>9,.0f}"
        f"   per CPU-s {cpu[0]:>9,.0f} / {statistics.median(cpu):>9,.0f} / {cpu[-1]:>9,.0f}"
    )


def report(name: str, prod: list[Run], raw: list[Run], old: list[Run]) -> bool:
    """Print one backend's figures; say whether the production median met the goal."""
    goal = GOALS[name]
    median = statistics.median(r.rate for r in prod)
    raw_median = statistics.median(r.rate for r in raw)
    old_median = statistics.median(r.rate for r in old)
    events = prod[0].events / prod[0].rows
    print(f"{name:<10} production rows/s min/median/max {spread(prod)}  ({events:.2f} events/row)")
    print(f"{name:<10} raw driver rows/s min/median/max {spread(raw)}")
    print(f"{name:<10} raw, schema {OLD_SCHEMA}  min/median/max {spread(old)}")
    verdict = "met" if median >= goal else "MISSED"
    print(
        f"{name:<10} production/raw {median / raw_median:.2f}; production/raw-{OLD_SCHEMA} "
        f"{median / old_median:.2f}; raw/raw-{OLD_SCHEMA} {raw_median / old_median:.2f}; "
        f"goal ≥ {goal:,.0f} rows/s: {verdict}"
    )
    cpu = {
        k: statistics.median(r.cpu_rate for r in v)
        for k, v in (("p", prod), ("r", raw), ("o", old))
    }
    print(
        f"{name:<10} per CPU-second: production/raw {cpu['p'] / cpu['r']:.2f}; "
        f"raw/raw-{OLD_SCHEMA} {cpu['r'] / cpu['o']:.2f}"
        + ("  (this process only: not the server's)" if name == "PostgreSQL" else "")
    )
    return median >= goal


def freeze_input() -> None:
    """Keep the collector off the input built so far, as ``ccbridge serve`` does with its
    start-up heap (``bootstrap.freeze_startup_heap``): the peer's prepared tuples live through
    every run, and a full collection walking them on each batch would be charged to whichever
    pass is timed, the production path above all (it allocates the most)."""
    gc.collect()
    gc.freeze()


async def run_sqlite(batches: list[list[CallRecord]], batch: int, runs: int) -> bool:
    """Production and peer on fresh SQLite files, *runs* times each, interleaved."""
    prepared, events = prepare(batches, sqlite=True)
    freeze_input()
    prod: list[Run] = []
    raw: list[Run] = []
    old: list[Run] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            dbs = [Path(tmp) / f"{name}.db" for name in ("prod", "raw", "old")]
            for db, revision in zip(dbs, ("head", "head", OLD_SCHEMA), strict=True):
                await run_migrations_async(f"sqlite+aiosqlite:///{db}", revision)
            prod.append(await production_run(f"sqlite+aiosqlite:///{dbs[0]}", batches, batch))
            raw.append(sqlite_raw_run(dbs[1], prepared, events))
            old.append(sqlite_raw_run(dbs[2], prepared, events, old=True))
    assert all(r.events == events for r in prod), "the production path lost or added events"
    return report("SQLite", prod, raw, old)


async def run_pg(
    server_dsn: str, batches: list[list[CallRecord]], batch: int, runs: int
) -> bool | None:
    """Production and peer on throw-away PostgreSQL databases; None if PG is unreachable."""
    try:
        admin = await asyncpg.connect(server_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    prepared, events = prepare(batches, sqlite=False)
    freeze_input()
    prod: list[Run] = []
    raw: list[Run] = []
    old: list[Run] = []
    base = server_dsn.rsplit("/", 1)[0]
    try:
        for _ in range(runs):
            names = [f"ccb_bench_{uuid.uuid4().hex[:8]}" for _ in range(3)]
            try:
                for name in names:
                    await admin.execute(f'CREATE DATABASE "{name}"')
                urls = [
                    f"{base}/{n}".replace("postgresql://", "postgresql+asyncpg://") for n in names
                ]
                for url, revision in zip(urls, ("head", "head", OLD_SCHEMA), strict=True):
                    await run_migrations_async(url, revision)
                prod.append(await production_run(urls[0], batches, batch))
                raw.append(await pg_raw_run(f"{base}/{names[1]}", prepared, events))
                old.append(await pg_raw_run(f"{base}/{names[2]}", prepared, events, old=True))
            finally:
                for name in names:
                    with contextlib.suppress(asyncpg.PostgresError):
                        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    assert all(r.events == events for r in prod), "the production path lost or added events"
    return report("PostgreSQL", prod, raw, old)


async def main() -> int:
    """Run both backends; exit status 1 when a production median misses its goal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("sqlite", "pg"))
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})  # one core: the loop and the writer thread share it
    batches = waves(call_steps(args.calls), args.batch)
    rows = sum(len(b) for b in batches)
    freeze_input()
    print(
        f"{args.calls:,} calls in 4 steps = {rows:,} row writes, batches of {args.batch:,}, "
        f"{args.runs} runs; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    ok = True
    if args.only != "pg":
        ok &= await run_sqlite(batches, args.batch, args.runs)
    if args.only != "sqlite":
        pg = await run_pg(args.pg, batches, args.batch, args.runs)
        if pg is None:
            print("PostgreSQL not reachable: skipped")
        else:
            ok &= pg
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
