"""A node without HA stands down once it sees an HA node own its PBX (ADR 0030)."""

from __future__ import annotations

import asyncio

from ccbridge.services.single_node_guard import SingleNodeGuard


class Lease:
    """The lease row as the guard reads it: ``None``, a live holder, or an error."""

    def __init__(self) -> None:
        self.holder: tuple[str, int] | None = None
        self.error: Exception | None = None
        self.looks = 0

    async def __call__(self, pbx: str) -> tuple[str, int] | None:
        assert pbx == "default"
        self.looks += 1
        if self.error is not None:
            raise self.error
        return self.holder


async def test_nobody_holds_the_lease_so_the_node_acts_after_its_first_look() -> None:
    lease = Lease()
    guard = SingleNodeGuard(lease, "default")
    assert not guard.may_act()  # AMI waits for the first look
    await guard.look()
    assert guard.may_act()
    await asyncio.wait_for(guard.wait_owner(), 1)
    assert guard.reason is None


async def test_an_ha_owner_stops_the_node_for_good_and_says_why() -> None:
    lease = Lease()
    dropped: list[str] = []
    guard = SingleNodeGuard(lease, "default")
    guard.on_blocked(dropped.append)
    await guard.look()
    ran = asyncio.Event()
    cancelled = asyncio.Event()

    async def dispatcher() -> None:
        ran.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    loop = asyncio.ensure_future(guard.while_allowed(dispatcher)())
    await asyncio.wait_for(ran.wait(), 1)

    lease.holder = ("node-a", 3)  # an HA node took the PBX
    await guard.look()
    assert not guard.may_act()
    assert guard.blocked_by == ("node-a", 3)
    assert guard.reason is not None
    assert "node-a" in guard.reason
    assert "CCBRIDGE_HA__ENABLED" in guard.reason
    assert len(dropped) == 1  # the AMI session is dropped once
    await asyncio.wait_for(cancelled.wait(), 1)  # and webhooks stop

    lease.holder = None  # the HA nodes restart one by one: the lease lapses for a moment
    looks = lease.looks
    await guard.look()
    assert not guard.may_act()  # sticky until this node is restarted
    assert lease.looks == looks  # and it does not even ask again
    assert len(dropped) == 1
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)


async def test_a_failed_first_look_keeps_the_single_node_path() -> None:
    lease = Lease()
    lease.error = OSError("database away")
    guard = SingleNodeGuard(lease, "default")
    await guard.look()
    assert guard.may_act()  # a database outage at start does not stop a single node
    lease.error = None
    lease.holder = ("node-b", 1)
    await guard.look()
    assert not guard.may_act()


async def test_another_node_without_ha_is_named_as_such() -> None:
    lease = Lease()
    lease.holder = ("single:solo", 1)
    guard = SingleNodeGuard(lease, "default")
    await guard.look()
    assert not guard.may_act()
    assert guard.reason is not None
    assert "'solo', also without HA" in guard.reason


async def test_release_lets_the_pbx_go_once() -> None:
    released: list[str] = []

    async def let_go() -> None:
        released.append("default")

    guard = SingleNodeGuard(Lease(), "default", close=let_go)
    await guard.look()
    await guard.release()
    await guard.release()
    assert released == ["default"]
