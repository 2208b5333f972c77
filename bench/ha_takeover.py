"""B-HA: how long the PBX has no owner when its owner dies (issue 20; target ≤ 10 s).

Usage: .venv/bin/python bench/ha_takeover.py [--drills 10] [--mode kill|freeze]
       [--ttl 5 --renew 1 --margin 1] [--target 10]
       [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Real ``ccbridge serve`` processes (``CCBRIDGE_HA__ENABLED``, by default the shipped lease
timing: TTL 5 s, renew every 1 s, fence margin 1 s) share a throw-away PostgreSQL database
with the demo tenants, and a fake PBX placing 12 calls a PBX minute in this process. Each
drill has one owner and one standby: the owner is SIGKILLed (``kill``) or SIGSTOPped, i.e.
hung, neither renewing nor acting (``freeze``), and the clock runs from that signal until the
standby's ``/readyz`` says it owns the PBX and its AMI session is logged in and resynced
(polled every 50 ms). The next drill starts a new
standby beside the new owner and kills that one, so the nodes alternate.

Printed per drill: time to win the lease and time to synced. Then min/median/max and the
ratio of the median to the lease's own bound (TTL + one standby poll: what the design
allows before the AMI login starts). Exit 1 when the max exceeds ``--target``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import make_url

from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.ha.ownership import LeaseTiming
from ccbridge.domain.time import SystemClock
from ccbridge.services.tenants import AccessService
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.demo_db import seed_demo_database
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.ha_cluster import NODE_SECRET, LeaseKnobs, Node, NodeSpec, start_node

POLL = 0.05
GUARD = 120.0
CALLS_PER_PBX_MINUTE = 12.0
TIME_SCALE = 0.2


async def _admin(url: str, statement: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _seed(url: str) -> None:
    """The demo tenants, agents and phones (as `ccbridge serve --simulate-pbx` seeds them)."""
    engine = create_engine(url)
    try:
        sessions = create_session_factory(engine)
        access = AccessService(
            lambda: SqlAccessUnitOfWork(sessions),
            JwtCodec("bench-ha-jwt-secret-bench-ha-jwt-secret"),
            now=SystemClock().now,
            token_ttl_seconds=600,
        )
        await seed_demo_database(engine, access)
    finally:
        await engine.dispose()


async def _role(node: Node) -> tuple[bool, bool]:
    """(owns the lease, owns and synced)."""
    checks = await node.readiness()
    if checks is None:
        return False, False
    owner = checks.get("pbx_ownership", {}).get("role") == "owner"
    return owner, owner and bool(checks.get("ami", {}).get("synced"))


async def _until_synced(node: Node, since: float) -> tuple[float, float]:
    """Seconds from ``since`` until ``node`` won the lease, and until it was synced."""
    won: float | None = None
    async with asyncio.timeout(GUARD):
        while True:
            owner, synced = await _role(node)
            now = time.monotonic()
            if owner and won is None:
                won = now - since
            if synced:
                return (won if won is not None else now - since), now - since
            await asyncio.sleep(POLL)


async def drills(args: argparse.Namespace) -> int:
    admin = args.pg
    name = f"ccbridge_bench_ha_{secrets.token_hex(3)}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    knobs = LeaseKnobs(args.ttl, args.renew, args.margin)
    bound = LeaseTiming(knobs.ttl, knobs.renew, knobs.margin).worst_takeover()
    results: list[tuple[float, float]] = []
    try:
        await run_migrations_async(url)
        await _seed(url)
        with tempfile.TemporaryDirectory(prefix="ha-bench-") as tmp:
            root = Path(tmp)
            users = {f"node-{i}": NODE_SECRET for i in range(args.drills + 2)}
            config = SimulatorConfig(talk_seconds=(20.0, 60.0), patience_seconds=(10.0, 40.0))
            async with FakeAsterisk(
                users=users,
                agi_url=None,
                time_scale=TIME_SCALE,
                config=config,
                records_dir=root / "records",
                seed=20,
            ) as pbx:
                pbx.simulator.start_traffic(CALLS_PER_PBX_MINUTE)

                def spec(i: int) -> NodeSpec:
                    return NodeSpec(
                        f"node-{i}",
                        url,
                        pbx.ami_port,
                        root / f"node-{i}",
                        root / "records" / "queue_log",
                        knobs,
                    )

                owner = await start_node(spec(0))
                await _until_synced(owner, time.monotonic())
                for i in range(1, args.drills + 1):
                    standby = await start_node(spec(i))
                    owned, _ = await _role(standby)
                    assert not owned, "two owners"
                    await asyncio.sleep(2 * knobs.renew)  # a few renewals in steady state
                    since = time.monotonic()
                    if args.mode == "freeze":
                        owner.process.send_signal(signal.SIGSTOP)
                    else:
                        owner.kill()
                    won, synced = await _until_synced(standby, since)
                    results.append((won, synced))
                    print(
                        f"drill {i:2d} ({args.mode}): lease won after {won:5.2f} s, "
                        f"synced after {synced:5.2f} s",
                        flush=True,
                    )
                    if args.mode == "freeze":
                        owner.kill()
                    await owner.process.wait()
                    owner = standby
                await pbx.simulator.stop_traffic()
                await owner.stop()
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    synced_times = [s for _, s in results]
    won_times = [w for w, _ in results]
    median = statistics.median(synced_times)
    print(
        f"\nB-HA takeover ({args.mode}, {len(results)} drills, TTL {knobs.ttl} s, renew "
        f"{knobs.renew} s, margin {knobs.margin} s)"
    )
    print(
        f"  lease won : min {min(won_times):.2f}  median {statistics.median(won_times):.2f}  "
        f"max {max(won_times):.2f} s"
    )
    print(
        f"  synced    : min {min(synced_times):.2f}  median {median:.2f}  "
        f"max {max(synced_times):.2f} s  (target <= {args.target:.0f} s)"
    )
    print(f"  median / lease bound (TTL + one poll = {bound:.1f} s): {median / bound:.2f}")
    ok = max(synced_times) <= args.target
    print("  PASS" if ok else "  MISS")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", type=int, default=10)
    parser.add_argument("--mode", choices=("kill", "freeze"), default="kill")
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--target", type=float, default=10.0)
    defaults = LeaseKnobs()
    parser.add_argument("--ttl", type=float, default=defaults.ttl)
    parser.add_argument("--renew", type=float, default=defaults.renew)
    parser.add_argument("--margin", type=float, default=defaults.margin)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(drills(args)))


if __name__ == "__main__":
    main()
