"""B8: call-record persistence through CallRepository vs the raw driver on the same rows.

Usage: .venv/bin/python bench/db_upsert.py [--rows 20000] [--batch 1000] [--pg URL]

Peers measured in the same run: sqlite3 ``executemany`` of the same upsert statement for
SQLite, and asyncpg ``executemany`` for PostgreSQL (when reachable). The ratio shows what the
repository's version guard, mapping and SQLAlchemy cost over the bare driver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.calls import CallRepository, record_to_row
from ccbridge.domain.calls.model import CallRecord, CallState

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
COLUMNS = (
    "call_id, tenant, state, caller, caller_name, callee, skill_group, agent_no, "
    "agent_interface, started_at, queued_at, answered_at, ended_at, end_reason, legs, "
    "version, updated_at"
)


def records(n: int, version: int) -> list[CallRecord]:
    """``n`` realistic answered calls with the four variables filled in."""
    return [
        CallRecord(
            call_id=f"1795433{i:06d}.{i}",
            started_at=T0 + timedelta(seconds=i),
            state=CallState.ENDED,
            tenant=f"t{i % 20}",
            caller=f"138{i:08d}",
            caller_name="张三",
            callee="4008001234",
            skill_group="t1-sales",
            agent_no=f"{1000 + i % 500}",
            agent_interface=f"Local/{2000 + i % 500}@agents",
            queued_at=T0 + timedelta(seconds=i + 2),
            answered_at=T0 + timedelta(seconds=i + 9),
            ended_at=T0 + timedelta(seconds=i + 120),
            end_reason="Normal Clearing",
            legs=(f"1795433{i:06d}.{i}", f"1795433{i:06d}.{i + 1}"),
            version=version,
        )
        for i in range(n)
    ]


def batches(items: list[CallRecord], size: int) -> list[list[CallRecord]]:
    """Split into write batches like the batch writer does."""
    return [items[i : i + size] for i in range(0, len(items), size)]


async def repo_rate(url: str, rows: list[CallRecord], batch: int) -> float:
    """Rows/s through CallRepository.upsert_many on an already migrated database."""
    engine = create_engine(url)
    try:
        repo = CallRepository(create_session_factory(engine))
        start = time.perf_counter()
        for chunk in batches(rows, batch):
            await repo.upsert_many(chunk)
        return len(rows) / (time.perf_counter() - start)
    finally:
        await engine.dispose()


def _sqlite_values(rec: CallRecord) -> tuple[object, ...]:
    row = record_to_row(rec, datetime.now(UTC))
    row["legs"] = json.dumps(row["legs"])
    for key in ("started_at", "queued_at", "answered_at", "ended_at", "updated_at"):
        if row[key] is not None:
            row[key] = row[key].isoformat()
    return tuple(row.values())


def sqlite_raw_rate(path: Path, rows: list[CallRecord], batch: int) -> float:
    """Rows/s of the same version-guarded upsert with plain sqlite3 (the peer)."""
    updates = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(",")[1:])
    sql = (
        f"INSERT INTO calls ({COLUMNS}) VALUES ({', '.join('?' * 17)}) "
        f"ON CONFLICT (call_id) DO UPDATE SET {updates} WHERE calls.version <= excluded.version"
    )
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        values = [_sqlite_values(r) for r in rows]
        start = time.perf_counter()
        for i in range(0, len(values), batch):
            with conn:
                conn.executemany(sql, values[i : i + batch])
        return len(rows) / (time.perf_counter() - start)
    finally:
        conn.close()


async def pg_raw_rate(dsn: str, rows: list[CallRecord], batch: int) -> float:
    """Rows/s of the same upsert with plain asyncpg executemany (the peer)."""
    cols = [c.strip() for c in COLUMNS.split(",")]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    sql = (
        f"INSERT INTO calls ({COLUMNS}) VALUES ({', '.join(f'${i + 1}' for i in range(17))}) "
        f"ON CONFLICT (call_id) DO UPDATE SET {updates} WHERE calls.version <= excluded.version"
    )
    conn = await asyncpg.connect(dsn)
    try:
        values = []
        for rec in rows:
            row = record_to_row(rec, datetime.now(UTC))
            row["legs"] = json.dumps(row["legs"])
            values.append(tuple(row.values()))
        start = time.perf_counter()
        for i in range(0, len(values), batch):
            async with conn.transaction():
                await conn.executemany(sql, values[i : i + batch])
        return len(rows) / (time.perf_counter() - start)
    finally:
        await conn.close()


async def run_pg(server_dsn: str, n: int, batch: int) -> tuple[float, float] | None:
    """Both PostgreSQL figures on two throw-away databases, or None if PG is unreachable."""
    names = [f"ccb_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        admin = await asyncpg.connect(server_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        base = server_dsn.rsplit("/", 1)[0]
        urls = [
            f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://") for name in names
        ]
        for url in urls:
            await run_migrations_async(url)
        repo = await repo_rate(urls[0], records(n, 1), batch)
        raw = await pg_raw_rate(f"{base}/{names[1]}", records(n, 1), batch)
        return repo, raw
    finally:
        for name in names:
            with contextlib.suppress(asyncpg.PostgresError):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    """Run both backends and print absolute rates and the repository/driver ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})
    print(f"{args.rows:,} call records, batches of {args.batch:,}, version-guarded upsert")
    with tempfile.TemporaryDirectory() as tmp:
        repo_db, raw_db = Path(tmp) / "repo.db", Path(tmp) / "raw.db"
        for db in (repo_db, raw_db):
            await run_migrations_async(f"sqlite+aiosqlite:///{db}")
        url = f"sqlite+aiosqlite:///{repo_db}"
        insert = await repo_rate(url, records(args.rows, 1), args.batch)
        update = await repo_rate(url, records(args.rows, 2), args.batch)
        raw = sqlite_raw_rate(raw_db, records(args.rows, 1), args.batch)
    print(f"SQLite  repository insert {insert:>9,.0f} rows/s   update {update:>9,.0f} rows/s")
    print(
        f"SQLite  raw sqlite3       {raw:>9,.0f} rows/s   ratio repository/raw {insert / raw:.2f}"
    )
    pg = await run_pg(args.pg, args.rows, args.batch)
    if pg is None:
        print("PostgreSQL not reachable: skipped")
        return
    repo_pg, raw_pg = pg
    print(f"Postgres repository       {repo_pg:>9,.0f} rows/s")
    print(
        f"Postgres raw asyncpg      {raw_pg:>9,.0f} rows/s   "
        f"ratio repository/raw {repo_pg / raw_pg:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
