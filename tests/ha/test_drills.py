"""Issue 20's failure drills: two ``ccbridge serve`` nodes (real processes) share one
PostgreSQL and one fake PBX; one owns the PBX, the other stands by.

- **SIGKILL of the owner** during a call burst: the standby takes the lease once it expires,
  restores the open calls, logs in, resyncs and backfills from the queue log. Before the kill,
  an SSE stream opened on the standby receives the owner's events (LISTEN/NOTIFY).
- **Partition of the owner from PostgreSQL** (its every connection through a TCP proxy that
  resets and refuses): the owner cannot renew, fences itself (drops AMI, sends nothing more),
  the standby takes over; when the link heals the old owner comes back as a standby.
- **Rolling restart** under steady traffic: SIGTERM the owner (it flushes, then releases its
  lease, so the standby takes over at its next poll), start it again as a standby, then the
  same for the other node.
- **FastAGI on a standby**: the PBX's node list names a node that is down, then the standby;
  the standby routes every call from the database's numbers and sends no AMI action.

Afterwards, read over the surviving node's API: every call of the PBX's queue log (the record
of the undisturbed truth) is stored with its four variables, agent and outcome, and the
`calls audit` finds no difference; each journal step exactly once and in order; the seat's
QueueAdd was sent once in all (the next owner found the member there); every journal event
reached its webhook. Takeover time is not asserted here: bench/ha_takeover.py measures it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import make_url

from ccbridge.api.owner_forwarding import SERVED_BY_HEADER
from ccbridge.asterisk.agi.server import DONE_VARIABLE
from ccbridge.asterisk.inbound_route import SCRIPT as INBOUND_SCRIPT
from ccbridge.testing.ha_cluster import free_port, the_owner, wait_for
from tests.ha.rig import (
    HANG_GUARD,
    SEAT,
    Cluster,
    check_calls,
    check_everything,
    cluster,
    first_streamed_call_event,
    sign_in_seat,
    subscribe_webhooks,
    tail_cursor,
)

pytestmark = pytest.mark.pg


def _admin(pg_database_url: str) -> str:
    return make_url(pg_database_url).set(database="postgres").render_as_string(hide_password=False)


async def _two_nodes(world: Cluster, *, a_through_proxy: bool = False) -> None:
    """node-a starts first and owns the PBX; node-b stands by."""
    a = await world.start("node-a", through_proxy=a_through_proxy)
    assert await the_owner([a]) is a
    b = await world.start("node-b")
    assert await b.role() == "standby"
    assert world.actions_of("node-b") == []  # a standby never talks to the PBX


async def _webhooks_and_a_seat(world: Cluster, hooks_on: str, seat_on: str) -> None:
    """Webhooks subscribed over one node's API, agent 1101 signed in over another's; the
    owner (node-a) adds the seat to its queues."""
    await subscribe_webhooks(world, world.nodes[hooks_on])
    await sign_in_seat(world, world.nodes[seat_on])
    await wait_for(
        lambda: _true("QueueAdd" in world.actions_of("node-a")), "the owner adds the seat"
    )


def _first_action_index(world: Cluster, user: str) -> int:
    return next(i for i, (u, _) in enumerate(world.pbx.ami.actions_by) if u == user)


async def test_sigkill_of_the_owner_during_a_call_burst(
    pg_database_url: str, tmp_path: Path
) -> None:
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world)
        a, b = world.nodes["node-a"], world.nodes["node-b"]
        await _webhooks_and_a_seat(world, "node-a", "node-b")  # any node's API will do
        # An SSE stream on the standby at the tail sees the owner's commits (LISTEN/NOTIFY).
        after = await tail_cursor(world, b, "t1")
        opened = asyncio.Event()
        streamed = asyncio.create_task(first_streamed_call_event(world, b, "t1", after, opened))
        async with asyncio.timeout(HANG_GUARD):
            await opened.wait()
        await world.burst(0, 12)
        async with asyncio.timeout(HANG_GUARD):
            pushed = await streamed
        assert int(pushed["cursor"]) > after
        world.fault("SIGKILL node-a")
        a.kill()
        await world.burst(12, 12)  # calls go on while nobody owns the PBX
        assert await the_owner([b]) is b
        await world.burst(24, 6)
        await world.settle()
        verdict = await check_everything(world, b)
    assert verdict.calls == 30
    # A SIGKILL between a 2xx and its mark resends that one event per endpoint, named in
    # doubt by the next owner (check_webhook_repeats); nothing else is sent twice.
    assert verdict.webhook_repeats <= verdict.in_doubt <= 2


async def test_an_owner_partitioned_from_the_database_fences_itself(
    pg_database_url: str, tmp_path: Path
) -> None:
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world, a_through_proxy=True)
        a, b = world.nodes["node-a"], world.nodes["node-b"]
        await _webhooks_and_a_seat(world, "node-b", "node-a")
        await world.burst(0, 12)
        world.fault("cut node-a from the database")
        world.proxies["node-a"].cut()  # node-a alive, its PBX link up, its database gone
        await world.burst(12, 12)
        assert await the_owner([b]) is b
        fenced_from = _first_action_index(world, "node-b")
        await world.burst(24, 6)
        world.proxies["node-a"].restore()

        async def a_is_a_standby_again() -> bool:
            checks = await a.readiness()
            return bool(
                checks
                and checks.get("database", {}).get("ok")
                and checks.get("pbx_ownership", {}).get("role") == "standby"
                and checks["pbx_ownership"].get("terms_lost") == 1
            )

        await wait_for(a_is_a_standby_again, "node-a back as a standby", HANG_GUARD)
        await world.settle()
        verdict = await check_everything(world, a)  # read over the old owner's API
        # Once node-b acted, node-a sent nothing more: it had fenced itself before.
        late = [u for u, _ in world.pbx.ami.actions_by[fenced_from:] if u == "node-a"]
        assert late == []
        assert await b.role() == "owner"
    assert verdict.calls == 30
    # Cut off, node-a could claim nothing more: only a delivery acknowledged before its mark
    # could commit may repeat, one per endpoint.
    assert verdict.webhook_repeats <= verdict.in_doubt <= 2


async def test_a_rolling_restart_of_every_node_under_load(
    pg_database_url: str, tmp_path: Path
) -> None:
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world)
        a, b = world.nodes["node-a"], world.nodes["node-b"]
        await _webhooks_and_a_seat(world, "node-a", "node-a")
        stop = asyncio.Event()
        traffic = asyncio.create_task(world.traffic(0, stop))
        world.fault("SIGTERM node-a")
        await a.stop()  # SIGTERM: final flush, then the lease is released
        assert a.process.returncode == 0, a.log_tail()
        assert await the_owner([b]) is b
        a = await world.start("node-a")  # the same node, back as a standby
        assert await a.role() == "standby"
        world.fault("SIGTERM node-b")
        await b.stop()
        assert b.process.returncode == 0, b.log_tail()
        assert await the_owner([a]) is a
        b = await world.start("node-b")
        assert await b.role() == "standby"
        stop.set()
        placed = await traffic
        await world.settle()
        verdict = await check_everything(world, b)
        # Each takeover was a new term: node-a's first, node-b's, node-a's second.
        checks = await a.readiness()
        assert checks is not None
        assert checks["pbx_ownership"]["epoch"] == 3
    assert verdict.calls == placed
    # A SIGTERM lets the delivery in hand finish and be marked within the term, so a rolling
    # restart normally repeats nothing; one that outlasts the term is in doubt, as after a kill.
    assert verdict.webhook_repeats <= verdict.in_doubt <= 4


async def test_a_standby_answers_fastagi_from_the_published_numbers(
    pg_database_url: str, tmp_path: Path
) -> None:
    """Any node answers the PBX's FastAGI: the dialplan may send a call to a standby (its
    first choice failed, or a balancer picked it), and the standby routes it from the
    database's numbers without owning the PBX or sending a single AMI action."""
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world)
        b = world.nodes["node-b"]
        checks = await b.readiness()
        assert checks is not None
        port = checks["fastagi"]["port"]
        # The node list of the shipped dialplan (CCB_FASTAGI_HOSTS): the first node is down.
        nodes = (free_port(), port)
        world.pbx.simulator.config.agi_url = "&".join(
            f"agi://127.0.0.1:{p}/{INBOUND_SCRIPT}" for p in nodes
        )
        await world.burst(0, 6)
        await world.settle()
        outcomes = {o.linkedid: o for o in world.pbx.simulator.outcomes}
        assert len(outcomes) == 6
        for outcome in outcomes.values():
            assert outcome.agi is not None, outcome
            assert outcome.agi.variables_set.get("CCB_TENANT") == outcome.tenant
            assert outcome.agi.variables_set.get("CCB_QUEUE") == outcome.queue
            assert outcome.agi.variables_set.get(DONE_VARIABLE) == INBOUND_SCRIPT
        assert await b.role() == "standby"
        assert world.actions_of("node-b") == []
        # The owner tracked the calls the standby routed, whole.
        await check_calls(world, world.nodes["node-a"])


async def _true(value: bool) -> bool:
    return value


async def test_a_recording_policy_change_through_the_standby_reaches_the_owner_at_once(
    pg_database_url: str, tmp_path: Path
) -> None:
    """The standby stores the change and announces it (NOTIFY); the owner re-renders the
    queue file and reloads the queues then, not at its next login or recheck (ADR 0030)."""
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world)
        a = world.nodes["node-a"]
        before = len(world.pbx.ami.actions_by)
        async with await world.api(world.nodes["node-b"]) as http:
            resp = await http.put(
                "/api/v1/tenants/t1/recording-policy",
                json={"auto_record": False},  # the queues lose their monitor-format
                headers=world.keys["platform"],
            )
            assert resp.status_code == 200, resp.text

        def applied() -> list[str]:
            log = a.log_path.read_text(encoding="utf-8")
            return [line for line in log.splitlines() if "pbx_change_applied" in line]

        async def owner_applied_it() -> bool:
            reloaded = any(
                user == "node-a" and m.get("Action") == "QueueReload"
                for user, m in world.pbx.ami.actions_by[before:]
            )
            return reloaded and any("recording_policy" in line for line in applied())

        await wait_for(owner_applied_it, "the owner reloads the queues for it", HANG_GUARD)
        assert world.actions_of("node-b") == []


async def test_a_node_without_ha_stands_down_while_an_ha_node_owns_the_pbx(
    pg_database_url: str, tmp_path: Path
) -> None:
    """A node started without CCBRIDGE_HA__ENABLED against the PBX an HA node owns sees the
    lease, never logs in to AMI, fails /readyz with the reason, and logs it; the owner goes
    on alone, every call counted once (ADR 0030)."""
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        a = await world.start("node-a")
        assert await the_owner([a]) is a
        solo = await world.start("node-b", env={"CCBRIDGE_HA__ENABLED": "false"})

        async def stood_down() -> bool:
            checks = await solo.readiness()
            own = (checks or {}).get("pbx_ownership", {})
            return own.get("ok") is False and own.get("ha_owner") == "node-a"

        await wait_for(stood_down, "the node without HA stands down", HANG_GUARD)
        checks = await solo.readiness()
        assert checks is not None
        assert "CCBRIDGE_HA__ENABLED" in checks["pbx_ownership"]["reason"]
        assert "ha_owner_present" in solo.log_path.read_text(encoding="utf-8")
        await world.burst(0, 4)
        await world.settle()
        await check_calls(world, a)
        assert world.actions_of("node-b") == []  # never logged in, never acted
        assert await a.role() == "owner"


async def test_seat_commands_and_the_wallboard_through_the_standby_are_served_by_the_owner(
    pg_database_url: str, tmp_path: Path
) -> None:
    """Behind a load balancer a seat command may reach a standby: it forwards it to the
    owner's published address (ADR 0031), so the PBX hears it within the request, not at
    the owner's next reconcile; the standby itself never talks to the PBX."""
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        await _two_nodes(world)
        b = world.nodes["node-b"]
        tenant, agent = SEAT
        seat = f"/api/v1/tenants/{tenant}/seats/{agent}"
        async with await world.api(b) as http:
            resp = await http.post(f"{seat}/sign-in", headers=world.keys["platform"])
            assert resp.status_code in (200, 201), resp.text
            assert resp.headers[SERVED_BY_HEADER] == "node-a"
            # Added within the request: no wait for a reconcile round.
            assert "QueueAdd" in world.actions_of("node-a")
            resp = await http.post(
                f"{seat}/state",
                json={"action": "not_ready", "reason": "培训"},
                headers=world.keys["platform"],
            )
            assert resp.status_code == 200, resp.text
            assert resp.headers[SERVED_BY_HEADER] == "node-a"
            assert "QueuePause" in world.actions_of("node-a")
            board = await http.get(
                f"/api/v1/tenants/{tenant}/wallboard", headers=world.keys["platform"]
            )
            assert board.status_code == 200, board.text
            assert board.headers[SERVED_BY_HEADER] == "node-a"
            # A route any node serves from the database stays on the standby.
            calls = await http.get("/api/v1/calls", headers=world.keys[f"{tenant}:crm"])
            assert calls.status_code == 200, calls.text
            assert SERVED_BY_HEADER not in calls.headers
        assert world.actions_of("node-b") == []
        assert "owner_request_forwarded" in b.log_path.read_text(encoding="utf-8")


async def test_an_ha_node_started_beside_a_node_without_ha_stands_by_until_it_stops(
    pg_database_url: str, tmp_path: Path
) -> None:
    """A node without HA marks the PBX as its own (ADR 0032): an HA node started beside it
    stands by and never talks to the PBX. Once the node without HA stops (SIGTERM: final
    flush, then it lets the PBX go), the HA node takes over; every call is counted once."""
    async with cluster(_admin(pg_database_url), tmp_path) as world:
        solo = await world.start("node-b", env={"CCBRIDGE_HA__ENABLED": "false"})

        async def solo_drives_the_pbx() -> bool:
            checks = await solo.readiness()
            own = (checks or {}).get("pbx_ownership", {})
            return bool(own.get("ok")) and bool((checks or {}).get("ami", {}).get("synced"))

        await wait_for(solo_drives_the_pbx, "the node without HA drives the PBX", HANG_GUARD)
        a = await world.start("node-a")
        await world.burst(0, 6)
        assert await a.role() == "standby"
        await world.settle()
        await check_calls(world, solo)
        assert world.actions_of("node-a") == []  # it stood by: not one AMI action
        world.fault("SIGTERM node-b (without HA)")
        await solo.stop()
        assert solo.process.returncode == 0, solo.log_tail()
        assert await the_owner([a]) is a
        await world.burst(6, 4)
        await world.settle()
        await check_calls(world, a)
