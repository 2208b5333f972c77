"""Call tracking through AMI faults, end to end over TCP: fake PBX → fault proxy → AmiClient
→ call feed → tracker. Checks: no phantom calls, no duplicates, every call closed exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.calls import CallTrackingService
from ccbridge.testing.fake_pbx import SHIPPED_CHANNELVARS, FakeAsterisk
from tests.fakes.calls import MemoryCallStore
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.fault_proxy import FaultProxy
from tests.support.ticks import CountingTicks

PING = 0.1  # a fast heartbeat: production pings every 5 s (a 15 s detection budget)


async def until(cond: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll until ``cond`` holds or fail after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@dataclass
class Rig:
    """The pieces of one end-to-end run."""

    pbx: FakeAsterisk
    proxy: FaultProxy
    client: AmiClient
    store: MemoryCallStore
    service: CallTrackingService
    feed: AmiCallFeed
    ticks: CountingTicks

    def record(self, call_id: str) -> CallRecord:
        return self.store.records[call_id]

    def state(self, call_id: str) -> CallState | None:
        rec = self.store.records.get(call_id)
        return rec.state if rec else None

    def final(self, call_id: str) -> bool:
        state = self.state(call_id)
        return state is not None and state.is_final

    def finals(self, call_id: str) -> int:
        """How many times a call moved into a final state (must be exactly once)."""
        count, was_final = 0, False
        for rec in self.store.submitted:
            if rec.call_id != call_id:
                continue
            if rec.state.is_final and not was_final:
                count += 1
            was_final = rec.state.is_final
        return count


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    pbx = FakeAsterisk(
        users={"ccbridge": "secret"}, agi_url=None, seed=7, time_scale=0.01, auth_fail_delay=0
    )
    await pbx.start()
    proxy = await FaultProxy("127.0.0.1", pbx.ami_port).start()
    ticks = CountingTicks()
    client = fake_pbx_client(
        proxy.port, tick=ticks, action_timeout=1.0, ping_interval=PING, backoff_max=0.2
    )
    store = MemoryCallStore()
    service = CallTrackingService(store)
    feed = AmiCallFeed(service, lambda: datetime.now(UTC))
    PbxCoordinator(client, calls=feed).attach()
    try:
        async with running(client, synced_within=3):
            yield Rig(pbx, proxy, client, store, service, feed, ticks)
    finally:
        await proxy.close()
        await pbx.stop()


def _live(rig: Rig, ids: list[str]) -> set[str]:
    """The calls among ``ids`` that still have a channel on the PBX."""
    return {ch.linkedid for ch in rig.pbx.model.channels.values()} & set(ids)


async def _place(rig: Rig, talk: list[float], did: str = "4008001234") -> list[str]:
    ids = []
    for seconds in talk:
        handle = await rig.pbx.simulator.place_call(did=did, talk_seconds=seconds)
        ids.append(handle.linkedid)
    return ids


async def test_reset_mid_call_reconnects_resyncs_without_phantoms_or_duplicates(rig: Rig) -> None:
    ids = await _place(rig, [150.0, 150.0])  # 1.5 s of real time each
    await until(lambda: all(i in rig.store.records for i in ids))
    resyncs = rig.feed.resyncs
    rig.proxy.reset_all()  # RST both ways, calls keep going on the PBX
    await until(lambda: rig.feed.resyncs > resyncs)
    assert rig.client.status.reconnects >= 1
    # Both calls were live at the resync: neither was closed by it.
    assert all(not rig.record(i).state.is_final for i in ids)
    for handle in list(rig.pbx.simulator.calls.values()):
        await handle
    await until(lambda: all(rig.final(i) for i in ids))
    assert set(rig.store.records) == set(ids)  # no phantom call
    for i in ids:
        assert rig.finals(i) == 1
        assert rig.record(i).end_reason != "reconciled"


async def test_half_open_is_detected_and_calls_ended_meanwhile_are_reconciled_once(
    rig: Rig,
) -> None:
    short = await _place(rig, [60.0, 60.0])  # t1-sales, 2 agents: end 0.6 s after answer
    long = await _place(rig, [200.0], did="4008001235")  # t1-support: still up after the gap
    ids = short + long
    await until(lambda: all(rig.state(i) is CallState.CONNECTED for i in ids))
    reconnects = rig.client.status.reconnects
    rig.proxy.blackhole()
    before = rig.ticks.passed
    await until(lambda: not rig.client.status.logged_in, limit=15)
    # Counted in heartbeat ticks: (max_missed_pongs + 1) intervals, 15 s at the production 5 s.
    assert rig.ticks.passed - before <= rig.client.config.max_missed_pongs + 1
    await until(lambda: rig.client.status.reconnects > reconnects, limit=15)
    await until(lambda: not _live(rig, short))
    assert all(not rig.record(i).state.is_final for i in short)  # nothing seen yet
    rig.proxy.restore()
    await until(lambda: all(rig.final(i) for i in short))
    for i in short:
        assert rig.record(i).end_reason == "reconciled"
        assert rig.finals(i) == 1
    assert not rig.record(long[0]).state.is_final
    for handle in list(rig.pbx.simulator.calls.values()):
        await handle
    await until(lambda: rig.final(long[0]))
    assert rig.record(long[0]).end_reason != "reconciled"
    assert set(rig.store.records) == set(ids)
    assert all(rig.finals(i) == 1 for i in ids)


async def test_pbx_restart_resyncs_and_closes_the_calls_it_lost(rig: Rig) -> None:
    ids = await _place(rig, [300.0, 300.0])
    await until(lambda: all(rig.state(i) is CallState.CONNECTED for i in ids))
    resyncs = rig.feed.resyncs
    await rig.pbx.ami.restart(lose_members=True)
    await until(lambda: rig.feed.resyncs > resyncs)
    await until(lambda: rig.client.status.synced)
    assert rig.client.status.fully_booted
    for i in ids:
        assert rig.record(i).state is CallState.ENDED
        assert rig.record(i).end_reason == "reconciled"
        assert rig.finals(i) == 1
    assert set(rig.store.records) == set(ids)


async def test_a_failing_subscriber_does_not_cost_the_tracker_any_event(rig: Rig) -> None:
    def explode(_msg: object) -> None:
        raise RuntimeError("CRM plug-in bug")

    rig.client.subscribe("Newchannel", explode)
    rig.client.subscribe("Hangup", explode)
    ids = await _place(rig, [10.0])
    for handle in list(rig.pbx.simulator.calls.values()):
        await handle
    await until(lambda: rig.final(ids[0]))
    assert rig.client.status.reconnects == 0
    rec = rig.record(ids[0])
    assert (rec.skill_group, rec.callee) == ("t1-sales", "4008001234")
    assert rec.agent_no in {"1001", "1002"}


async def test_a_call_first_seen_in_the_resync_names_its_tenant() -> None:
    """A call already up when ccbridge logs in (a restart, or `ccbridge serve` whose simulator
    placed it before AMI synced) is known only from CoreShowChannels: the tenant comes from
    the ``ChanVariable`` headers that manager.conf ``channelvars`` adds, as on a real PBX."""
    pbx = FakeAsterisk(
        users={"ccbridge": "secret"}, agi_url=None, seed=7, time_scale=0.01, auth_fail_delay=0
    )
    await pbx.start()
    try:
        handle = await pbx.simulator.place_call(did="4008005678", talk_seconds=300.0)
        await until(
            lambda: any(
                ch.linkedid == handle.linkedid and ch.variables.get("CCB_TENANT")
                for ch in pbx.model.channels.values()
            )
        )
        client = fake_pbx_client(pbx.ami_port)
        store = MemoryCallStore()
        PbxCoordinator(
            client, calls=AmiCallFeed(CallTrackingService(store), lambda: datetime.now(UTC))
        ).attach()
        async with running(client, synced_within=10):
            await until(lambda: handle.linkedid in store.records)
            assert store.records[handle.linkedid].tenant == "t2"
    finally:
        await pbx.stop()


def test_the_simulator_reports_the_channelvars_the_shipped_manager_conf_sets() -> None:
    conf = Path(__file__).parents[2] / "asterisk" / "manager.d" / "ccbridge.conf"
    line = next(ln for ln in conf.read_text().splitlines() if ln.startswith("channelvars"))
    assert tuple(v.strip() for v in line.split("=", 1)[1].split(",")) == SHIPPED_CHANNELVARS
