"""CallRouter gathers a call's facts (VIP list or CRM, the owner agent and their seat) and
applies the group's policy; policies and numbers are cached and reloaded on every change."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ccbridge.domain.agents.state import AgentState, AgentStatus
from ccbridge.domain.ivr.engine import LookupAnswer
from ccbridge.domain.leases.model import SeatKind
from ccbridge.services.routing_cache import SnapshotCache
from ccbridge.services.routing_policies import CallRouter
from ccbridge.services.routing_ports import PolicyRecord
from ccbridge.services.seat_ports import SeatSession
from tests.fakes.seats import FakeClock, MemorySessions

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class MemoryPolicies:
    """RoutingPolicyRepo over a dict; counts whole-table reads."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PolicyRecord] = {}
        self.reads = 0

    def set(self, tenant: str, group: str, document: dict[str, Any]) -> None:
        old = self.rows.get((tenant, group))
        version = old.version + 1 if old else 1
        self.rows[(tenant, group)] = PolicyRecord(tenant, group, document, version, T0, "t")

    async def list(self, tenant_id: str | None) -> list[PolicyRecord]:
        self.reads += 1
        return [r for r in self.rows.values() if tenant_id in (None, r.tenant_id)]


class History:
    """CallHistory: who answered which caller, when."""

    def __init__(self, answered: dict[tuple[str, str], tuple[str, datetime]]) -> None:
        self.answered = answered

    async def last_agent(self, tenant_id: str, caller: str, since: datetime) -> str | None:
        hit = self.answered.get((tenant_id, caller))
        return hit[0] if hit is not None and hit[1] >= since else None


class Crm:
    """CrmLookup that answers from a dict and records what it was asked."""

    def __init__(self, fields: Mapping[str, dict[str, str]]) -> None:
        self.fields = fields
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    async def lookup(
        self, tenant_id: str, url: str, query: Mapping[str, str], timeout_ms: int
    ) -> LookupAnswer:
        self.asked.append((tenant_id, url, dict(query)))
        found = self.fields.get(query["caller"])
        return LookupAnswer(found is not None, found or {})


def _router(
    policies: MemoryPolicies,
    *,
    history: History | None = None,
    seats: MemorySessions | None = None,
    crm: Crm | None = None,
) -> CallRouter:
    clock = FakeClock(T0)
    return CallRouter(
        policies,  # type: ignore[arg-type]  # only list() is read at call time
        history or History({}),
        seats or MemorySessions(),
        clock.now,
        crm=crm,
    )


async def test_a_group_without_policy_gets_no_decision() -> None:
    assert await _router(MemoryPolicies()).route("t1", "sales", "13800138000") is None


async def test_split_through_the_router_over_10000_calls_is_within_2_percent() -> None:
    policies = MemoryPolicies()
    split = [{"group": "outsourced", "weight": 70}, {"group": "inhouse", "weight": 30}]
    policies.set("t1", "hotline", {"split": split})
    router = _router(policies)
    got = Counter()
    for i in range(10_000):
        decision = await router.route("t1", "hotline", f"1380000{i:04d}")
        assert decision is not None
        got[decision.group] += 1
    assert abs(got["outsourced"] / 10_000 - 0.70) <= 0.02
    assert abs(got["inhouse"] / 10_000 - 0.30) <= 0.02
    assert policies.reads == 1  # the table is read once, not once per call


async def test_a_changed_policy_is_applied_on_the_next_call() -> None:
    policies = MemoryPolicies()
    policies.set("t1", "hotline", {"split": [{"group": "a", "weight": 1}]})
    router = _router(policies)
    assert (await router.route("t1", "hotline", "1")).group == "a"  # type: ignore[union-attr]
    policies.set("t1", "hotline", {"split": [{"group": "b", "weight": 1}]})
    assert (await router.route("t1", "hotline", "1")).group == "a"  # type: ignore[union-attr]
    router.invalidate()
    assert (await router.route("t1", "hotline", "1")).group == "b"  # type: ignore[union-attr]


async def test_language_is_asked_only_when_the_policy_has_language_groups() -> None:
    policies = MemoryPolicies()
    policies.set("t1", "hotline", {"languages": {"en": "english"}})
    policies.set("t1", "plain", {"max_wait": {"seconds": 60, "action": "callback"}})
    router = _router(policies)
    asked: list[str] = []

    async def english() -> str:
        asked.append("hotline")
        return "en"

    got = await router.route("t1", "hotline", "1", english)
    assert got is not None
    assert (got.group, got.reason) == ("english", "language")
    plain = await router.route("t1", "plain", "1", english)
    assert plain is not None
    assert plain.group == "plain"
    assert asked == ["hotline"]


async def test_vip_by_list_and_by_crm() -> None:
    policies = MemoryPolicies()
    vip = {"priority": 9, "callers": ["13800138000"], "crm": {"url": "https://crm.example/vip"}}
    policies.set("t1", "sales", {"vip": vip})
    crm = Crm({"13900000001": {"vip": "yes"}, "13900000002": {"vip": "0"}})
    router = _router(policies, crm=crm)
    listed = await router.route("t1", "sales", "13800138000")
    by_crm = await router.route("t1", "sales", "13900000001")
    not_vip = await router.route("t1", "sales", "13900000002")
    unknown = await router.route("t1", "sales", "13900000003")
    assert [d.priority if d else None for d in (listed, by_crm, not_vip, unknown)] == [9, 9, 0, 0]
    # The list is checked first: the CRM is asked only for callers not on it.
    assert [q["caller"] for _, _, q in crm.asked] == ["13900000001", "13900000002", "13900000003"]
    assert {(t, u) for t, u, _ in crm.asked} == {("t1", "https://crm.example/vip")}


def _seat(agent_no: str, interface: str, state: AgentState) -> SeatSession:
    return SeatSession(
        id=f"s-{agent_no}",
        tenant_id="t1",
        agent_no=agent_no,
        kind=SeatKind.INBOUND,
        interface=interface,
        signed_in_at=T0,
        signed_out_at=None,
        status=AgentStatus(since=T0, state=state),
    )


async def test_sticky_rings_the_owner_who_is_ready_and_answered_within_the_lookback() -> None:
    policies = MemoryPolicies()
    policies.set("t1", "sales", {"sticky": {"ring_seconds": 20, "lookback_days": 30}})
    seats = MemorySessions()
    await seats.open(_seat("1101", "PJSIP/1101", AgentState.READY))
    await seats.open(_seat("1102", "PJSIP/1102", AgentState.ON_CALL))
    history = History(
        {
            ("t1", "13800000001"): ("1101", T0 - timedelta(days=2)),
            ("t1", "13800000002"): ("1102", T0 - timedelta(days=2)),  # busy now
            ("t1", "13800000003"): ("1101", T0 - timedelta(days=31)),  # too long ago
            ("t1", "13800000004"): ("1199", T0 - timedelta(days=1)),  # not signed in
        }
    )
    router = _router(policies, history=history, seats=seats)
    owner = await router.route("t1", "sales", "13800000001")
    assert owner is not None
    assert (owner.sticky_agent, owner.sticky_interface, owner.sticky_seconds) == (
        "1101",
        "PJSIP/1101",
        20,
    )
    for caller in ("13800000002", "13800000003", "13800000004", "13800000009"):
        got = await router.route("t1", "sales", caller)
        assert got is not None
        assert got.sticky_interface is None, caller


async def test_snapshot_cache_never_serves_a_load_that_started_before_an_invalidation() -> None:
    version = {"n": 0}
    gate = asyncio.Event()

    async def load() -> int:
        seen = version["n"]
        await gate.wait()
        return seen

    cache: SnapshotCache[int] = SnapshotCache(load, ttl=3600)
    early = asyncio.create_task(cache.get())
    for _ in range(3):  # the first load is running (it read version 0) and waits
        await asyncio.sleep(0)
    version["n"] = 1
    cache.invalidate()
    late = asyncio.create_task(cache.get())
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    assert await early == 0
    assert await late == 1
    assert await cache.get() == 1
    assert cache.loads == 2


async def test_an_old_snapshot_answers_at_once_while_the_store_hangs_or_fails() -> None:
    # A database outage must not make every call wait for the store (FastAGI answers from
    # memory): past its ttl the snapshot is served and reloaded in the background.
    clock = {"t": 0.0}
    hanging = asyncio.Event()
    released = asyncio.Event()

    async def load() -> int:
        if hanging.is_set():
            await released.wait()  # a connection attempt that hangs, then fails
            raise ConnectionResetError("database away")
        return 1

    cache: SnapshotCache[int] = SnapshotCache(load, ttl=30, monotonic=lambda: clock["t"])
    assert await cache.get() == 1
    hanging.set()
    clock["t"] = 31.0
    async with asyncio.timeout(1):  # a hang guard: the answer needs no load at all
        assert await cache.get() == 1
        await asyncio.sleep(0)
        assert await cache.get() == 1
    assert cache.loads == 2  # one background reload, not one per call
    released.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert await cache.get() == 1  # the failed reload kept the snapshot
    assert cache.loads == 2  # and it is not retried before another ttl


async def test_calls_routed_by_language_do_not_take_turns_of_the_split() -> None:
    policies = MemoryPolicies()
    split = [{"group": "a", "weight": 1}, {"group": "b", "weight": 1}]
    policies.set("t1", "hotline", {"split": split, "languages": {"en": "english"}})
    router = _router(policies)
    spoken = iter(["zh", "en", "zh", "en", "zh", "en", "zh", "en"])

    async def language() -> str:
        return next(spoken)

    groups = [
        d.group if d else None
        for d in [await router.route("t1", "hotline", "1", language) for _ in range(8)]
    ]
    assert groups == ["a", "english", "b", "english", "a", "english", "b", "english"]
