"""The AMI client is the one place actions leave a node: without a term it connects to
nothing and writes nothing, and it drops the link the moment the term ends."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.errors import AmiFenced
from ccbridge.jobs.runner import JobRunner
from ccbridge.testing.fake_ami import FakeAmiServer
from tests.support.ami_rig import fake_pbx_client
from tests.unit.ha.lease_fakes import GUARD, until


class Gate:
    """A term switched by hand."""

    def __init__(self) -> None:
        self.owner = asyncio.Event()

    def may_act(self) -> bool:
        return self.owner.is_set()

    async def wait_owner(self) -> None:
        await self.owner.wait()


async def test_a_standby_neither_connects_nor_sends_and_a_lost_term_drops_the_link() -> None:
    server = FakeAmiServer(users={"ccbridge": "secret"})
    await server.start()
    gate = Gate()
    client = fake_pbx_client(server.port)
    client.gate = gate
    task = asyncio.create_task(client.run())
    try:
        await asyncio.sleep(0.2)  # a standby for a while: no session, no action
        assert server.sessions == []
        with pytest.raises(AmiFenced):
            await client.send_action(act.ping())
        gate.owner.set()
        await client.wait_synced(GUARD)
        reply = await client.send_action(act.ping())
        assert reply.response == "Success"
        before = len(server.actions)
        gate.owner.clear()  # the term ends: the very next action is refused...
        with pytest.raises(AmiFenced):
            await client.send_action(act.queue_add("q1", "Local/1001@agents"))
        client.drop("this node lost the PBX's lease")  # ...and the link goes
        await until(lambda: not client.status.connected, "the link is dropped")
        await asyncio.sleep(0.2)  # and stays down while another node owns the PBX
        assert not client.status.connected
        assert len(server.actions) == before
        assert client.actions_fenced == 2
        gate.owner.set()  # a later term connects again
        await until(lambda: client.status.synced, "synced in the next term")
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
        await server.stop()


async def test_gated_jobs_run_only_while_the_gate_is_open_and_node_jobs_always() -> None:
    owner = False
    runner = JobRunner(gate=lambda: owner)
    runs = {"retention": 0, "loop-lag": 0}

    async def retention() -> None:
        runs["retention"] += 1

    async def lag() -> None:
        runs["loop-lag"] += 1

    retention_job = runner.add("retention", 0.005, retention)
    runner.add("loop-lag", 0.005, lag, every_node=True)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: runs["loop-lag"] >= 5, "node jobs run on a standby")
        assert runs["retention"] == 0
        assert retention_job.stats.skipped >= 1
        owner = True
        await until(lambda: runs["retention"] >= 1, "owner jobs run once the node owns")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_once_per_database_jobs_follow_the_cluster_lease_not_the_pbx_lease() -> None:
    """With several PBXs, reports and retention run on the cluster lease's holder, which may
    own no PBX; PBX jobs stay with the PBX owner (ADR 0033)."""
    owns_pbx, holds_cluster = True, False
    runner = JobRunner(gate=lambda: owns_pbx, cluster_gate=lambda: holds_cluster)
    runs = {"reconcile": 0, "retention": 0}

    async def reconcile() -> None:
        runs["reconcile"] += 1

    async def retention() -> None:
        runs["retention"] += 1

    runner.add("reconcile", 0.005, reconcile)
    retention_job = runner.add("retention", 0.005, retention, once_per_database=True)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: runs["reconcile"] >= 3, "the PBX owner's jobs run")
        assert runs["retention"] == 0
        assert retention_job.stats.skipped >= 1
        owns_pbx, holds_cluster = False, True
        await until(lambda: runs["retention"] >= 1, "the cluster holder's jobs run")
        before = runs["reconcile"]
        await until(lambda: retention_job.stats.runs >= 3, "and keep running")
        assert runs["reconcile"] <= before + 1  # one already under way at the switch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_without_a_cluster_gate_once_per_database_jobs_follow_the_pbx_gate() -> None:
    owner = False
    runner = JobRunner(gate=lambda: owner)
    runs = [0]

    async def retention() -> None:
        runs[0] += 1

    job = runner.add("retention", 0.005, retention, once_per_database=True)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: job.stats.skipped >= 2, "skipped while not the owner")
        assert runs[0] == 0
        owner = True
        await until(lambda: runs[0] >= 1, "runs on the PBX owner")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
