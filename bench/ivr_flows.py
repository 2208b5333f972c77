"""Benchmark B8: IVR flow execution on FastAGI, ccbridge's engine vs a bare panoramisk route.

200 (``--concurrency``) fake callers run the bilingual main menu at once: language choice,
menu, "9" (repeat) twice, then "1" (sales). ccbridge runs the production wiring
(``bootstrap.build_ivr_fastagi`` over a SQLite database with the flow published: the
active-flow cache with its stamp checks, the per-tenant facts cache, the buffered call log and
its 2 s flush job, then inbound route → IvrRunner → pure engine → one AGI command per step),
with the start-up heap frozen as ``ccbridge serve`` does. The peer is a panoramisk 1.4
FastAGI route sending the very same command lines in the same order, with no flow logic.

The step time is the server's turnaround as Asterisk sees it: from Asterisk writing a reply to
receiving the next command (the session set-up before the first command is not a step).
The callers run in a separate process (Asterisk is another process too), and each reply
waits a random "media time" of 0–2×``--think-ms`` (a prompt playing, a caller pressing a
key), so 200 calls are concurrently in the flow as on a PBX. ``--think-ms 0`` measures
saturation instead. Server CPU per step (process time / steps, set-up included) is printed
too: it is steadier than p99 on a shared machine.

    .venv/bin/python bench/ivr_flows.py --calls 2000 --concurrency 200 --rounds 3 --think-ms 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from agi_sessions import pin_to_one_core
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.agi.server import FastAgiServer
from ccbridge.asterisk.inbound_route import SCRIPT
from ccbridge.bootstrap import (
    IvrWiring,
    build_calendar_service,
    build_ivr_fastagi,
    freeze_startup_heap,
)
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.ivr import IvrCallLogRepository, IvrPromptRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.domain.acd.membership import queue_name
from ccbridge.domain.ivr.engine import Ask, CallContext, Digits, Done, Finish, FlowRun
from ccbridge.domain.ivr.model import Flow
from ccbridge.ivr_format.parse import load_document, parse_flow
from ccbridge.jobs.runner import JobRunner
from ccbridge.services.ivr_ports import IvrCallRecord, PromptRecord
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.tenants import AccessService
from ccbridge.settings import AgiSettings, IvrSettings, Settings

FLOW = Path(__file__).resolve().parent.parent / "ivr_flows" / "main_menu_bilingual.yaml"
DID = "4008001234"
KEYS = ["2", "9", "9", "1"]
NOW = datetime.fromisoformat("2026-12-01T10:00+08:00")


def environment() -> bytes:
    """An Asterisk 22 AGI environment for one inbound call to the demo DID."""
    lines = {
        "agi_network": "yes",
        "agi_network_script": SCRIPT,
        "agi_request": f"agi://127.0.0.1/{SCRIPT}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1795433102.1",
        "agi_version": "22.10.1",
        "agi_callerid": "13800138000",
        "agi_calleridname": "unknown",
        "agi_dnid": DID,
        "agi_context": "ccbridge-inbound",
        "agi_extension": DID,
        "agi_priority": "3",
    }
    return ("".join(f"{k}: {v}\n" for k, v in lines.items()) + "\n").encode()


async def play_call(port: int, env: bytes, think_ms: float, turnaround: list[int]) -> list[bytes]:
    """Be Asterisk for one call: GET DATA takes the next key, everything else succeeds."""
    clock = time.perf_counter_ns
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    sent = clock()
    keys = list(KEYS)
    commands: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            break
        if commands:  # the first command also pays for accept + environment: not a flow step
            turnaround.append(clock() - sent)
        commands.append(line)
        if think_ms:
            await asyncio.sleep(random.uniform(0, 2 * think_ms) / 1000)
        if line.startswith(b"GET DATA"):
            reply = b"200 result=" + (keys.pop(0).encode() if keys else b" (timeout)") + b"\n"
        elif line.startswith(b"STREAM FILE"):
            reply = b"200 result=0 endpos=8000\n"
        elif line.startswith(b"SET VARIABLE"):
            reply = b"200 result=1\n"
        else:
            reply = b"200 result=0\n"
        writer.write(reply)
        sent = clock()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return commands


async def _callers(
    port: int, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[bytes], list[int]]:
    env = environment()
    remaining = calls
    transcript: list[bytes] = []
    turnaround: list[int] = []

    async def caller() -> None:
        nonlocal remaining, transcript
        while remaining > 0:
            remaining -= 1
            transcript = await play_call(port, env, think_ms, turnaround)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started, transcript, turnaround


def _asterisk_process(port: int, calls: int, concurrency: int, think_ms: float) -> Any:
    """The callers' process (pinned to another core when there is one)."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    return asyncio.run(_callers(port, calls, concurrency, think_ms))


async def drive(
    port: int, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[bytes], list[int]]:
    """Run the callers in another process; return (wall time, one transcript, turnarounds)."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: tuple[float, list[bytes], list[int]] = await loop.run_in_executor(
            pool, _asterisk_process, port, calls, concurrency, think_ms
        )
    return result


ADMIN = Principal("key:bench", Role.PLATFORM_ADMIN, None, ALL_SCOPES)


@dataclass
class Production:
    """ccbridge's IVR as ``ccbridge serve`` wires it, over a seeded SQLite database."""

    engine: AsyncEngine
    ivr: IvrWiring
    agi: FastAgiServer
    logged: int = 0
    steps: list[dict[str, str | None]] = field(default_factory=list)


async def production(db_dir: Path, concurrency: int) -> Production:
    """Migrate and seed a database (tenant t1, skill groups, the flow published), then wire."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{db_dir / 'bench.db'}",
        simulate_pbx=False,
        agi=AgiSettings(port=0, max_sessions=max(500, concurrency)),
        ivr=IvrSettings(prompts_dir=db_dir / "prompts", asterisk_prompts_dir="ccbridge"),
    )
    await run_migrations_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec("x" * 32),
        now=lambda: NOW,
        token_ttl_seconds=600,
    )
    await access.create_tenant(ADMIN, tenant_id="t1", name="T1")
    groups = SkillGroupRepository(sessions)
    for group in ("sales", "service", "vip"):
        await groups.create(SkillGroupRecord("t1", group, queue_name("t1", group)))
    calendar = build_calendar_service(engine)
    ivr, agi = build_ivr_fastagi(settings, engine, calendar, now=lambda: NOW)
    body = FLOW.read_bytes()
    await ivr.service.create_flow(ADMIN, "t1", "main", body, "application/yaml")
    prompts = IvrPromptRepository(sessions)
    flow = parse_flow(load_document(body, "application/yaml")).flow
    assert flow is not None
    for pid in sorted(flow.prompt_ids()):  # as uploaded: Asterisk plays ccbridge/t1/<pid>
        await prompts.add(PromptRecord("t1", pid, f"{pid}.wav", 1, 1, NOW, "bench"))
    await ivr.service.publish(ADMIN, "t1", "main", "bench")
    await ivr.routing.numbers.assign(ADMIN, "t1", DID)  # no target: the tenant's flow answers
    return Production(engine, ivr, agi)


async def stored_logs(prod: Production) -> list[IvrCallRecord]:
    """Flush the call-log buffer as its job would; return every stored call as reports read it."""
    for name, _, job in prod.ivr.flushes:
        if name == "ivr-call-log":
            await job()
    logs = IvrCallLogRepository(create_session_factory(prod.engine))
    return await logs.list("t1", limit=1_000_000)


def summary(samples: list[int]) -> tuple[float, float]:
    """Return (p50, p99) in microseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] / 1000, cuts[98] / 1000


def _exclusive(
    busy: asyncio.Lock, job: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """Run ``job`` under ``busy``, so the bench can stop the jobs while none is writing."""

    async def run() -> object:
        async with busy:
            return await job()

    return run


async def run_ccbridge(
    prod: Production, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[int], Any, float]:
    """Serve the flow; return (calls/s, turnarounds in ns, a transcript, server CPU seconds)."""
    jobs, busy = JobRunner(), asyncio.Lock()
    for name, interval, job in (*prod.ivr.jobs, *prod.ivr.flushes):
        jobs.add(name, interval, _exclusive(busy, job))
    await prod.agi.start()
    running = asyncio.create_task(jobs.run())
    cpu = time.process_time()
    try:
        elapsed, transcript, samples = await drive(prod.agi.port, calls, concurrency, think_ms)
    finally:
        cpu = time.process_time() - cpu
        async with busy:  # stop the jobs between runs, not in the middle of a write
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        await prod.agi.stop()
    logs = await stored_logs(prod)
    want = prod.logged + calls
    assert len(logs) == want, f"{len(logs)} IVR call logs stored, want {want}"
    assert all(log.target == "sales" for log in logs)
    assert all(log.steps == prod.steps for log in logs), "every step is logged"
    prod.logged = len(logs)
    return calls / elapsed, samples, transcript, cpu


async def run_panoramisk(
    commands: list[str], calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[int], float]:
    """Serve the same command lines from a bare panoramisk route."""
    from panoramisk.fast_agi import Application

    async def handler(request: Any) -> None:
        for command in commands:
            await request.send_command(command)

    app = Application()
    app.add_route(SCRIPT, handler)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cpu = time.process_time()
    try:
        elapsed, _, samples = await drive(port, calls, concurrency, think_ms)
    finally:
        cpu = time.process_time() - cpu
        server.close()
        await server.wait_closed()
    return calls / elapsed, samples, cpu


def expected_steps(flow: Flow) -> list[dict[str, str | None]]:
    """The steps the simulator logs for the callers' keys: what every stored call must hold."""
    run = FlowRun(flow, CallContext(now=NOW, caller="13800138000", did=DID))
    keys = list(KEYS)
    action = run.start()
    while not isinstance(action, Finish):
        action = run.resume(Digits(keys.pop(0)) if isinstance(action, Ask) else Done())
    return [step.as_dict() for step in run.steps]


async def main(args: argparse.Namespace) -> bool:
    """Warm up, then measure both (best p99 of ``rounds``); print figures, ratios, PASS/FAIL."""
    with tempfile.TemporaryDirectory(prefix="ccbridge-ivr-bench-") as tmp:
        prod = await production(Path(tmp), args.concurrency)
        flow = parse_flow(load_document(FLOW.read_bytes(), "application/yaml")).flow
        assert flow is not None
        prod.steps = expected_steps(flow)
        try:
            return await measure(prod, args)
        finally:
            await prod.engine.dispose()


async def measure(prod: Production, args: argparse.Namespace) -> bool:
    """The warm-up and measured rounds over one production runtime."""
    calls, concurrency, think_ms = args.calls, args.concurrency, args.think_ms
    _, _, transcript, _ = await run_ccbridge(prod, 200, 20, 0)
    commands = [line.decode().rstrip("\n") for line in transcript]
    await run_panoramisk(commands, 200, 20, 0)
    print(f"{len(commands)} AGI commands per call: " + " | ".join(c[:28] for c in commands))
    if args.no_freeze:
        print("start-up heap NOT frozen (--no-freeze)")
    else:
        print(f"start-up heap frozen as in ccbridge serve: {freeze_startup_heap():,} objects")
    steps = calls * (len(commands) - 1)
    best: dict[str, tuple[float, float, float, float]] = {}
    for _ in range(args.rounds):
        cc_rate, cc_samples, _, cc_cpu = await run_ccbridge(prod, calls, concurrency, think_ms)
        pk_rate, pk_samples, pk_cpu = await run_panoramisk(commands, calls, concurrency, think_ms)
        for name, rate, samples, cpu in (
            ("ccbridge", cc_rate, cc_samples, cc_cpu),
            ("panoramisk", pk_rate, pk_samples, pk_cpu),
        ):
            p50, p99 = summary(samples)
            print(f"  round: {name:>10} p50 {p50:7.1f} us  p99 {p99:8.1f} us  {load()}")
            if name not in best or p99 < best[name][2]:
                best[name] = (rate, p50, p99, cpu / steps * 1e6)
    cc, pk = best["ccbridge"], best["panoramisk"]
    print(f"{'':>12} {'calls/s':>9} {'step p50 us':>12} {'step p99 us':>12} {'CPU us/step':>12}")
    for name, (rate, p50, p99, cpu_us) in best.items():
        print(f"{name:>12} {rate:>9,.0f} {p50:>12.1f} {p99:>12.1f} {cpu_us:>12.1f}")
    passed = bool(cc[2] <= args.target_us)
    print(
        f"ratio ccbridge/panoramisk: calls/s {cc[0] / pk[0]:.2f}, step p99 {cc[2] / pk[2]:.2f}, "
        f"CPU/step {cc[3] / pk[3]:.2f}; {load()}"
    )
    print(
        f"{'PASS' if passed else 'FAIL'}: ccbridge step p99 {cc[2]:.0f} us "
        f"{'<=' if passed else '>'} {args.target_us:g} us at {concurrency} concurrent calls "
        f"({cc[2] / pk[2]:.2f}x bare panoramisk's {pk[2]:.0f} us)"
    )
    return passed


def load() -> str:
    """The load average, to judge how far a figure can be trusted on a shared machine."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} {five:.2f}"


def cli() -> None:
    """Parse arguments, quieten logs, pin the CPU and run; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think-ms", type=float, default=500.0)
    parser.add_argument("--target-us", type=float, default=2000.0, help="step p99 target")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() (A/B)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("panoramisk").setLevel(logging.WARNING)
    print("not pinned" if args.no_pin else pin_to_one_core(), load())
    print(f"{args.calls} calls, {args.concurrency} at once, media time 0-{2 * args.think_ms:g} ms")
    passed: bool = asyncio.run(main(args))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    cli()
