"""Desired-state reconciler end to end over TCP: fake PBX → AmiClient → AmiQueueControl →
Reconciler. Drift made behind ccbridge's back is repaired in one cycle, recorded once per repair,
and a PBX restart that lost every member is healed by the login hook's cycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.domain.acd.membership import (
    AddMember,
    DriftKind,
    QueueMemberSpec,
    RemoveMember,
    Repair,
    SetPaused,
    queue_name,
)
from ccbridge.services.acd import Reconciler
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import MemberSpec, QueueSpec
from tests.support.ami_rig import fake_pbx_client, running

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GROUPS = ["sales", "support", "billing"]
MANAGED = [queue_name("t1", g) for g in GROUPS]


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass
class MemorySeats:
    """The DB side: signed-in agents × skill groups, with pause state."""

    members: dict[tuple[str, str], QueueMemberSpec] = field(default_factory=dict)

    async def desired(self) -> list[QueueMemberSpec]:
        return list(self.members.values())

    def managed_queues(self) -> Collection[str]:
        return MANAGED


@dataclass
class DriftLog:
    records: list[tuple[DriftKind, Repair, datetime]] = field(default_factory=list)

    def record(self, kind: DriftKind, repair: Repair, at: datetime) -> None:
        self.records.append((kind, repair, at))


@dataclass
class Rig:
    pbx: FakeAsterisk
    client: AmiClient
    control: AmiQueueControl
    seats: MemorySeats
    drift: DriftLog
    reconciler: Reconciler

    def pbx_state(self, queues: Collection[str] = MANAGED) -> dict[tuple[str, str], tuple]:
        return {
            (q.name, m.interface): (m.member_name, m.penalty, m.paused, m.paused_reason)
            for q in self.pbx.model.queues.values()
            if q.name in queues
            for m in q.members.values()
        }

    def desired_state(self) -> dict[tuple[str, str], tuple]:
        return {
            k: (m.member_name, m.penalty, m.paused, m.reason) for k, m in self.seats.members.items()
        }


def seats() -> MemorySeats:
    """Six agents in t1's three skill groups; agents 1 and 4 on break, 2 at lunch in sales."""
    out = MemorySeats()
    for n in range(1, 7):
        iface = f"PJSIP/10{n:02d}"
        for level, group in enumerate(GROUPS, start=1):
            q = queue_name("t1", group)
            paused = n in (1, 4) or (n == 2 and group == "sales")
            reason = "小休 break" if n in (1, 4) else ("lunch" if paused else "")
            out.members[(q, iface)] = QueueMemberSpec(
                q, iface, f"10{n:02d} 坐席{n}", 10 - level, paused, reason
            )
    return out


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    queues = [QueueSpec(q) for q in MANAGED]
    queues.append(QueueSpec("admin-q", members=[MemberSpec("PJSIP/9000", "admin static")]))
    pbx = FakeAsterisk(queues=queues, agi_url=None, seed=11, auth_fail_delay=0)
    await pbx.start()
    client = fake_pbx_client(pbx.ami_port)
    control = AmiQueueControl(client)
    source, drift = seats(), DriftLog()
    reconciler = Reconciler(control, source, drift, FixedClock())
    client.add_login_hook(reconciler.on_login)
    try:
        async with running(client):
            yield Rig(pbx, client, control, source, drift, reconciler)
    finally:
        await pbx.stop()


async def test_login_hook_signs_everyone_in_then_cycles_are_quiet(rig: Rig) -> None:
    assert rig.pbx_state() == rig.desired_state()
    assert rig.reconciler.stats.cycles == 1
    assert {k for k, _, _ in rig.drift.records} == {DriftKind.MISSING}
    assert len(rig.drift.records) == 18
    rig.drift.records.clear()
    report = await rig.reconciler.run_once()
    assert report.in_sync
    assert (report.desired, report.actual) == (18, 18)
    assert rig.drift.records == []


async def test_members_removed_or_paused_behind_our_back_are_repaired_in_one_cycle(
    rig: Rig,
) -> None:
    rig.drift.records.clear()
    sales, support = MANAGED[0], MANAGED[1]
    rig.pbx.ami.remove_member_behind_back(sales, "PJSIP/1003")
    rig.pbx.ami.remove_member_behind_back(support, "PJSIP/1001")  # was on break
    rig.pbx.ami.pause_member_behind_back(sales, "PJSIP/1005", True, "phone DND")
    rig.pbx.ami.pause_member_behind_back(None, "PJSIP/1004", False)  # unpaused everywhere
    rig.pbx.ami.pause_member_behind_back(sales, "PJSIP/1002", True, "wrong reason")

    report = await rig.reconciler.run_once()

    assert report.failed == ()
    assert dict(report.drift) == {DriftKind.MISSING: 2, DriftKind.WRONG_PAUSE: 5}
    assert rig.pbx_state() == rig.desired_state()
    # Exactly one drift record per repair, stamped with the clock's time.
    assert [(k, r) for k, r, _ in rig.drift.records] == [(r.kind, r) for r in report.repairs]
    assert all(at == NOW for _, _, at in rig.drift.records)
    assert SetPaused(sales, "PJSIP/1005", False, "") in report.repairs
    assert SetPaused(sales, "PJSIP/1002", True, "lunch") in report.repairs
    assert AddMember(rig.seats.members[(support, "PJSIP/1001")]) in report.repairs
    assert (await rig.reconciler.run_once()).in_sync
    assert len(rig.drift.records) == 7


async def test_restart_that_lost_every_member_is_healed_by_one_cycle(rig: Rig) -> None:
    cycles = rig.reconciler.stats.cycles
    rig.drift.records.clear()
    await rig.pbx.ami.restart(lose_members=True)
    assert rig.pbx_state() == {}
    async with asyncio.timeout(5):
        while not (rig.client.status.synced and rig.reconciler.stats.cycles > cycles):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert rig.reconciler.stats.cycles == cycles + 1  # one cycle, run by the login hook
    assert rig.pbx_state() == rig.desired_state()  # right pause state and reason for all
    assert [k for k, _, _ in rig.drift.records] == [DriftKind.MISSING] * 18
    assert rig.pbx_state(["admin-q"]) == {("admin-q", "PJSIP/9000"): ("admin static", 0, False, "")}
    assert (await rig.reconciler.run_once()).in_sync


async def test_phantoms_removed_only_from_managed_queues(rig: Rig) -> None:
    rig.drift.records.clear()
    model = rig.pbx.model
    model.add_member(MANAGED[2], "PJSIP/7777", "7777 ghost")  # e.g. signed out while away
    model.add_member("admin-q", "PJSIP/8888", "admin's own dynamic member")
    report = await rig.reconciler.run_once()
    assert report.repairs == (RemoveMember(MANAGED[2], "PJSIP/7777"),)
    assert [k for k, _, _ in rig.drift.records] == [DriftKind.PHANTOM]
    assert "PJSIP/7777" not in model.queue(MANAGED[2]).members
    assert "PJSIP/8888" in model.queue("admin-q").members
    assert "PJSIP/9000" in model.queue("admin-q").members


async def test_sign_out_and_break_in_the_db_reach_the_pbx(rig: Rig) -> None:
    sales = MANAGED[0]
    del rig.seats.members[(sales, "PJSIP/1006")]
    old = rig.seats.members[(sales, "PJSIP/1005")]
    rig.seats.members[(sales, "PJSIP/1005")] = QueueMemberSpec(
        sales, old.interface, old.member_name, old.penalty, True, "培训 training"
    )
    report = await rig.reconciler.run_once()
    assert report.repairs == (
        SetPaused(sales, "PJSIP/1005", True, "培训 training"),
        RemoveMember(sales, "PJSIP/1006"),
    )
    assert rig.pbx_state() == rig.desired_state()


async def test_one_failing_repair_does_not_stop_the_others(rig: Rig) -> None:
    rig.pbx.ami.remove_member_behind_back(MANAGED[0], "PJSIP/1003")
    rig.pbx.ami.remove_member_behind_back(MANAGED[0], "PJSIP/1004")
    rig.pbx.ami.remove_member_behind_back(MANAGED[1], "PJSIP/1005")
    real_add = rig.control.add_member

    async def flaky_add(spec: QueueMemberSpec) -> None:
        if spec.interface == "PJSIP/1004":
            raise RuntimeError("boom")
        await real_add(spec)

    rig.control.add_member = flaky_add  # type: ignore[method-assign]
    report = await rig.reconciler.run_once()
    assert [r.interface for r in report.failed] == ["PJSIP/1004"]
    assert len(report.repairs) == 3
    assert rig.reconciler.stats.repairs_failed == 1
    assert "PJSIP/1003" in rig.pbx.model.queue(MANAGED[0]).members
    assert "PJSIP/1005" in rig.pbx.model.queue(MANAGED[1]).members
    rig.control.add_member = real_add  # type: ignore[method-assign]
    report = await rig.reconciler.run_once()  # the next cycle retries it
    assert [r.interface for r in report.repairs] == ["PJSIP/1004"]
    assert rig.pbx_state() == rig.desired_state()


async def test_periodic_loop_runs_cycles_and_survives_a_failing_one(rig: Rig) -> None:
    ticks = 0
    real_snapshot = rig.control.snapshot

    async def flaky_snapshot(queues: Collection[str]) -> list[QueueMemberSpec]:
        if ticks == 1:
            raise RuntimeError("PBX hiccup")
        return await real_snapshot(queues)

    async def fast_sleep(_: float) -> None:
        nonlocal ticks
        ticks += 1
        if ticks > 3:
            await asyncio.Event().wait()  # park forever; the test cancels the loop
        await asyncio.sleep(0)

    rig.control.snapshot = flaky_snapshot  # type: ignore[method-assign]
    cycles = rig.reconciler.stats.cycles
    loop = asyncio.create_task(rig.reconciler.run(interval=30, sleep=fast_sleep))
    async with asyncio.timeout(3):
        while ticks <= 3:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    assert rig.reconciler.stats.cycles == cycles + 2
    assert rig.reconciler.stats.cycles_failed == 1
