"""B-ACD: the desired-state reconciler's full cycle for 2,000 seats × 3 skill groups.

Usage: .venv/bin/python bench/reconciler.py [--seats 2000] [--groups 3] [--runs 3]

Fake Asterisk 22 over TCP on loopback (same process, same event loop, like the other benches),
20 tenants × 100 seats, each seat in its tenant's 3 skill-group queues (6,000 memberships),
desired state = everyone signed in, every other seat paused ("小休 break"). Measures:

(a) in sync: QueueStatus of 6,000 members + parse + diff, no repairs (target ≤ 3 s);
peer: the raw QueueStatus round trip alone (send_list_action, no parsing into specs, no diff),
    in the same run, so the ratio shows what the snapshot parsing and the diff add;
(b) after a PBX restart that lost every member: 6,000 QueueAdd (paused first) + 3,000 unpauses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import statistics
import time
from collections.abc import Collection
from datetime import UTC, datetime

import structlog

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.domain.acd.membership import (
    DriftKind,
    QueueMemberSpec,
    Repair,
    penalty_for_level,
    queue_name,
)
from ccbridge.services.acd import Reconciler
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec

SEATS_PER_TENANT = 100
GROUPS = ["sales", "support", "billing", "vip", "callback", "survey"]


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Seats:
    def __init__(self, members: list[QueueMemberSpec], queues: list[str]) -> None:
        self.members = members
        self.queues = queues

    async def desired(self) -> list[QueueMemberSpec]:
        return list(self.members)

    def managed_queues(self) -> Collection[str]:
        return self.queues


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    def record(self, kind: DriftKind, repair: Repair, at: datetime) -> None:  # noqa: ARG002
        self.count += 1


def build(seats: int, groups: int) -> tuple[list[str], list[QueueMemberSpec]]:
    """Queues and desired memberships: seats spread over tenants of 100, half paused."""
    queues: list[str] = []
    members: list[QueueMemberSpec] = []
    tenants = max(1, seats // SEATS_PER_TENANT)
    for t in range(tenants):
        tenant = f"t{t + 1:03d}"
        tq = [queue_name(tenant, g) for g in GROUPS[:groups]]
        queues += tq
        first = t * SEATS_PER_TENANT
        last = seats if t == tenants - 1 else first + SEATS_PER_TENANT
        for seat in range(first, last):
            paused = seat % 2 == 1
            for level, q in enumerate(tq, start=1):
                members.append(
                    QueueMemberSpec(
                        q,
                        f"PJSIP/{10000 + seat}",
                        f"{10000 + seat} 坐席{seat}",
                        penalty_for_level(min(10, level * 3)),
                        paused,
                        "小休 break" if paused else "",
                    )
                )
    return queues, members


async def run(seats: int, groups: int, runs: int, concurrency: int) -> None:
    queues, members = build(seats, groups)
    pbx = FakeAsterisk(
        queues=[QueueSpec(q) for q in queues], agi_url=None, seed=1, auth_fail_delay=0
    )
    pbx.ami.write_timeout = 30.0  # a 6,000-member QueueStatus is one big burst
    await pbx.start()
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=pbx.ami_port,
            username="ccbridge",
            secret="secret",
            action_timeout=30.0,
            ping_interval=60,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
    )
    control = AmiQueueControl(client, status_timeout=60)
    sink = CountingSink()
    reconciler = Reconciler(control, Seats(members, queues), sink, Clock(), concurrency=concurrency)
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(5)
        print(
            f"concurrency {concurrency}: {seats} seats × {groups} skill groups = "
            f"{len(members)} memberships, {len(queues)} queues"
        )
        first = await reconciler.run_once()  # initial sign-in of everyone (not timed below)
        assert not first.failed, first.failed
        print(f"initial sign-in: {len(first.repairs)} repairs in {first.duration:.3f} s")

        raw: list[float] = []
        sync: list[float] = []
        snap: list[float] = []
        for _ in range(runs):
            gc.collect()
            t0 = time.perf_counter()
            _, items = await client.send_list_action(act.queue_status(), timeout=60)
            raw.append(time.perf_counter() - t0)
            assert sum(1 for i in items if i.event == "QueueMember") == len(members)
            gc.collect()
            report = await reconciler.run_once()
            assert report.in_sync, report.drift
            assert report.actual == len(members)
            sync.append(report.duration)
            snap.append(report.snapshot_seconds)
        best_raw, best_sync = min(raw), min(sync)
        print(
            f"(peer) raw QueueStatus round trip: best {best_raw:.3f} s, "
            f"median {statistics.median(raw):.3f} s ({len(members) / best_raw:,.0f} members/s)"
        )
        print(
            f"(a) in-sync full cycle:            best {best_sync:.3f} s, "
            f"median {statistics.median(sync):.3f} s ({len(members) / best_sync:,.0f} members/s)"
            f"; snapshot {min(snap):.3f} s; ratio to raw {best_sync / best_raw:.2f}×"
        )
        print(f"    target ≤ 3 s: {'PASS' if best_sync <= 3.0 else 'FAIL'}")

        restart: list[float] = []
        for _ in range(runs):
            await pbx.ami.restart(lose_members=True)
            async with asyncio.timeout(10):
                while client.status.synced:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
            await client.wait_synced(10)
            gc.collect()
            report = await reconciler.run_once()
            assert not report.failed, report.failed[:3]
            assert report.drift == {DriftKind.MISSING: len(members)}, report.drift
            restart.append(report.duration)
            check = await reconciler.run_once()
            assert check.in_sync, check.drift
        actions = len(members) + sum(1 for m in members if not m.paused)
        best = min(restart)
        print(
            f"(b) after restart (lost all):      best {best:.3f} s, "
            f"median {statistics.median(restart):.3f} s ({len(members) / best:,.0f} members/s, "
            f"{actions} actions, {actions / best:,.0f} actions/s)"
        )
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
        await pbx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=3, choices=range(1, len(GROUPS) + 1))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="members repaired at once (1: one by one)"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    asyncio.run(run(args.seats, args.groups, args.runs, args.concurrency))


if __name__ == "__main__":
    main()
