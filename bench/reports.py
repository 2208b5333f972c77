"""B-RPT: the four contract reports for 1 month × 500 agents × 8,000 calls/day (240k calls).

Usage: .venv/bin/python bench/reports.py [--db sqlite|postgresql|both] [--days 30]
       [--agents 500] [--calls-per-day 8000] [--runs 3] [--budget 10]

One tenant, 4 skill groups, Asia/Shanghai. Each day every agent signs in at 08:00 local, takes
its share of the day's calls (queue wait 0-60 s, talk 10-400 s, 8 % abandoned of which a
third within 5 s, 5 % transferred to another agent), does 20 s of after-call work after each,
takes a 15-minute break and a 10-minute 示忙, and signs out at the end of its day. Rows are
written straight into ``calls``, ``call_params`` and ``state_intervals`` (the same rows the
call tracker and seat service write) in a migrated temp SQLite file or a throw-away
PostgreSQL database (``CCBRIDGE_BENCH_PG``, default postgresql+asyncpg://postgres@127.0.0.1/).

Timed, per run: (a) ``ReportService.run_all`` for the month at 30-minute intervals by skill
group: read the window once, then the four reports (service level, seat time-slot, seat
detail, call attributes), from the database to finished tables; (b) beside it, in the same
run, the raw SQL aggregation a hand-written report would start from: per day and skill
group, offered / answered / answered within 30 s / abandoned / Σwait / Σtalk over ``calls``,
and Σ seconds per agent and state over ``state_intervals``. min/median/max of ``--runs``;
exit 1 when the median of (a) misses ``--budget`` seconds.

The process runs with the garbage-collector policy of a serving process (``gc_policy``,
ADR 0022: the larger young generation), and the generated rows, which a server would not hold,
are frozen out of the collector's reach once generated (as a server freezes its start-up
heap); ``--no-gc-policy`` measures with CPython's defaults and the rows in reach instead.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge import gc_policy
from ccbridge.db.access_tables import TenantRow
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.event_tables import CallParamsRow
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.report_tallies import SqlReportTallies
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.db.seat_tables import StateIntervalRow
from ccbridge.db.tables import CallRow
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension, ReportKind
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.reports import ReportService

TENANT = "bench"
ZONE = ZoneInfo("Asia/Shanghai")
GROUPS = ("sales", "support", "billing", "vip")
FIRST = date(2026, 3, 1)
CHUNK = 5000


def _iso(t: datetime) -> str:
    return t.isoformat()


def generate(
    days: int, agents: int, per_day: int, seed: int = 17
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for calls, call_params and state_intervals (see the module docstring)."""
    rnd = random.Random(seed)
    calls: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for d in range(days):
        day = FIRST + timedelta(days=d)
        start = datetime(day.year, day.month, day.day, 8, tzinfo=ZONE).astimezone(UTC)
        free = [start] * agents  # when each agent is next ready
        for a in range(agents):
            spans.append(_span(a, "ready", "", start))
        per_agent = per_day // agents
        for i in range(per_day):
            a = i % agents
            at = free[a] + timedelta(seconds=rnd.randint(5, 120))
            queued = at + timedelta(seconds=rnd.randint(2, 12))
            wait = rnd.randint(0, 60)
            cid = f"{d}-{i}"
            caller = f"1{rnd.choice('35789')}{rnd.randint(0, 999999999):09d}"
            group = GROUPS[i % len(GROUPS)]
            row = {
                "call_id": cid,
                "tenant": TENANT,
                "caller": caller,
                "caller_name": None,
                "callee": "4001234567",
                "skill_group": group,
                "agent_interface": None,
                "started_at": at,
                "queued_at": queued,
                "legs": [],
                "version": 1,
                "updated_at": now,
            }
            detail: dict[str, Any] = {
                "format": 1,
                "offers": [],
                "segments": [],
                "transfers": [],
                "pending_target": None,
                "merged_into": None,
                "extras": [],
            }
            if rnd.random() < 0.08:
                gone = queued + timedelta(
                    seconds=rnd.randint(1, 4) if rnd.random() < 0.33 else wait + 5
                )
                row.update(
                    state="abandoned",
                    agent_no=None,
                    answered_at=None,
                    ended_at=gone,
                    end_reason="abandoned",
                )
            else:
                answered = queued + timedelta(seconds=wait)
                talk = rnd.randint(10, 400)
                ended = answered + timedelta(seconds=talk)
                agent = f"{a:04d}"
                segs = [(agent, answered, ended)]
                if rnd.random() < 0.05:
                    b = (a + 1) % agents
                    mid = answered + timedelta(seconds=talk // 2)
                    segs = [(agent, answered, mid), (f"{b:04d}", mid, ended)]
                    detail["transfers"] = [
                        {
                            "kind": "blind",
                            "at": _iso(mid),
                            "from_agent_no": agent,
                            "target": f"{b:04d}",
                        }
                    ]
                detail["segments"] = [
                    {
                        "seq": n + 1,
                        "agent_no": ag,
                        "agent_interface": f"PJSIP/{ag}",
                        "skill_group": group,
                        "caller": caller,
                        "callee": "4001234567",
                        "via": "queue" if n == 0 else "blind_transfer",
                        "started_at": _iso(s),
                        "ended_at": _iso(e),
                    }
                    for n, (ag, s, e) in enumerate(segs)
                ]
                row.update(
                    state="ended",
                    agent_no=segs[-1][0],
                    answered_at=answered,
                    ended_at=ended,
                    end_reason="hangup",
                )
                spans.append(_span(a, "on_call", "", answered))
                spans.append(_span(a, "after_call_work", "", ended))
                spans.append(_span(a, "ready", "", ended + timedelta(seconds=20)))
                free[a] = ended + timedelta(seconds=20)
            calls.append(row)
            params.append(
                {
                    "call_id": cid,
                    "tenant": TENANT,
                    "detail": detail,
                    "version": 1,
                    "updated_at": now,
                }
            )
            if i // agents == per_agent // 2:  # mid-shift: a break and a 示忙
                t = free[a] + timedelta(seconds=1)
                spans.append(_span(a, "break", "", t))
                spans.append(_span(a, "not_ready", "meeting", t + timedelta(minutes=15)))
                spans.append(_span(a, "ready", "", t + timedelta(minutes=25)))
                free[a] = t + timedelta(minutes=25)
        for a in range(agents):
            spans.append(_span(a, "signed_out", "", free[a] + timedelta(minutes=5)))
    spans.sort(key=lambda s: (s["agent_no"], s["started_at"]))
    for cur, nxt in itertools.pairwise(spans):
        if cur["agent_no"] == nxt["agent_no"]:
            cur["ended_at"] = max(cur["started_at"], nxt["started_at"])
    return calls, params, spans


def _span(a: int, state: str, reason: str, at: datetime) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "agent_no": f"{a:04d}",
        "state": state,
        "reason": reason,
        "started_at": at,
        "ended_at": None,
    }


async def load(engine: AsyncEngine, rows: tuple[list[dict[str, Any]], ...]) -> None:
    """Write the tenant and the generated rows in chunks."""
    calls, params, spans = rows
    sessions = create_session_factory(engine)
    async with sessions() as db, db.begin():
        await db.execute(
            insert(TenantRow),
            [
                {
                    "id": TENANT,
                    "name": "Bench",
                    "business_contact": None,
                    "technical_contact": None,
                    "status": "active",
                    "timezone": "Asia/Shanghai",
                    "created_at": datetime.now(UTC),
                }
            ],
        )
    for table, data in ((CallRow, calls), (CallParamsRow, params), (StateIntervalRow, spans)):
        for i in range(0, len(data), CHUNK):
            async with sessions() as db, db.begin():
                await db.execute(insert(table), data[i : i + CHUNK])
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))


def _raw_sql(dialect: str) -> tuple[str, str]:
    day = (
        "to_char(started_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
        if dialect == "postgresql"
        else "strftime('%Y-%m-%d', started_at, '+8 hours')"
    )
    secs = (
        "EXTRACT(EPOCH FROM ({b} - {a}))"
        if dialect == "postgresql"
        else "(julianday({b}) - julianday({a})) * 86400"
    )
    wait = secs.format(a="queued_at", b="answered_at")
    talk = secs.format(a="answered_at", b="ended_at")
    calls = (
        f"SELECT {day} AS d, skill_group, COUNT(*) AS offered, COUNT(answered_at) AS answered, "
        f"SUM(CASE WHEN answered_at IS NOT NULL AND {wait} <= 30 THEN 1 ELSE 0 END) AS in_t, "
        "SUM(CASE WHEN state = 'abandoned' THEN 1 ELSE 0 END) AS abandoned, "
        f"SUM({wait}) AS wait_s, SUM({talk}) AS talk_s "
        "FROM calls WHERE tenant = :t AND started_at >= :s AND started_at < :e "
        "AND queued_at IS NOT NULL GROUP BY 1, 2"
    )
    span = secs.format(a="started_at", b="ended_at")
    states = (
        f"SELECT agent_no, state, SUM({span}) FROM state_intervals WHERE tenant_id = :t "
        "AND started_at < :e AND (ended_at IS NULL OR ended_at > :s) GROUP BY 1, 2"
    )
    return calls, states


async def bench_one(
    url: str, args: argparse.Namespace, rows: tuple[list[dict[str, Any]], ...]
) -> bool:
    await run_migrations_async(url)
    engine = create_engine(url)
    try:
        t0 = time.perf_counter()
        await load(engine, rows)
        print(
            f"  loaded {len(rows[0]):,} calls and {len(rows[2]):,} state intervals in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        sessions = create_session_factory(engine)
        end = FIRST + timedelta(days=args.days - 1)
        svc = ReportService(
            SqlReportSource(sessions),
            SqlReportSettingsStore(sessions),
            TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
            AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), lambda: datetime.now(UTC)),
            lambda: datetime.now(UTC),
            SqlReportTallies(sessions),
            tally_write_margin=timedelta(0),  # the load has committed; nothing is in flight
        )
        t0 = time.perf_counter()
        first_utc = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=ZONE)
        days = await svc.tallies.rebuild(TENANT, first_utc, first_utc + timedelta(days=args.days))
        print(
            f"  tallies rebuilt for {days} UTC days in {time.perf_counter() - t0:.1f} s "
            f"(the incremental job does this a day at a time as rows are written)"
        )
        if args.breakdown:
            for kind in ReportKind:
                if kind is ReportKind.OPERATIONS:
                    continue
                t0 = time.perf_counter()
                await svc.run(TENANT, kind, FIRST, end, Granularity.MIN30, Dimension.SKILL_GROUP)
                print(f"    {kind.value}: {time.perf_counter() - t0:.2f} s")
        calls_sql, states_sql = _raw_sql(engine.dialect.name)
        s = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=ZONE).astimezone(UTC)
        e = s + timedelta(days=args.days)
        bind = {"t": TENANT, "s": s, "e": e}
        if engine.dialect.name == "sqlite":
            bind = {
                "t": TENANT,
                "s": s.replace(tzinfo=None).isoformat(sep=" "),
                "e": e.replace(tzinfo=None).isoformat(sep=" "),
            }
        reports: list[float] = []
        raw: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            pack = await svc.run_all(TENANT, FIRST, end, Granularity.MIN30, Dimension.SKILL_GROUP)
            reports.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            async with engine.connect() as conn:
                n_calls = len((await conn.execute(text(calls_sql), bind)).all())
                n_states = len((await conn.execute(text(states_sql), bind)).all())
            raw.append(time.perf_counter() - t0)
        sizes = ", ".join(f"{k.value} {len(r.table.rows):,}" for k, r in pack.items())
        print(f"  rows: {sizes}; raw SQL groups: {n_calls:,} call, {n_states:,} state")
        ok = statistics.median(reports) <= args.budget
        print(
            f"  four reports: min {min(reports):.2f} s, median {statistics.median(reports):.2f}"
            f" s, max {max(reports):.2f} s (budget {args.budget:.0f} s: "
            f"{'OK' if ok else 'MISS'})"
        )
        print(
            f"  raw SQL aggregation: min {min(raw):.2f} s, median {statistics.median(raw):.2f}"
            f" s, max {max(raw):.2f} s"
        )
        print(
            f"  ratio four reports / raw SQL (medians): "
            f"{statistics.median(reports) / statistics.median(raw):.1f}x; "
            f"days read from tallies: {svc.tallies.days_from_store}"
        )
        return ok
    finally:
        await engine.dispose()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--calls-per-day", type=int, default=8000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=float, default=10.0)
    ap.add_argument("--breakdown", action="store_true", help="also time each report alone")
    ap.add_argument(
        "--no-gc-policy",
        action="store_true",
        help="CPython's collector defaults, generated rows in reach (not a server's heap)",
    )
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    t0 = time.perf_counter()
    rows = generate(args.days, args.agents, args.calls_per_day)
    print(
        f"generated {args.days} days × {args.calls_per_day:,} calls, {args.agents} agents in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    if not args.no_gc_policy:
        gc_policy.apply_serving_thresholds()
        frozen = gc_policy.freeze_startup_heap()
        print(f"serving GC policy; {frozen:,} objects (the generated rows) frozen")
    ok = True
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            print("SQLite")
            ok &= await bench_one(f"sqlite+aiosqlite:///{Path(tmp) / 'rpt.db'}", args, rows)
    if args.db in ("postgresql", "both"):
        base = os.environ.get("CCBRIDGE_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1/")
        name = f"bench_rpt_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base + "postgres", null_pool=True)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            print("PostgreSQL")
            ok &= await bench_one(base + name, args, rows)
        finally:
            async with admin.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            await admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
