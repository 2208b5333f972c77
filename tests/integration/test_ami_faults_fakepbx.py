"""AmiClient fault recovery against the full fake Asterisk (src/ccbridge/testing), over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.testing.fake_ami import FakeAmiServer
from ccbridge.testing.fake_pbx import demo_queues
from ccbridge.testing.pbx_model import PbxModel
from tests.support.fault_proxy import FaultProxy
from tests.support.ticks import CountingTicks


async def until(cond: Callable[[], bool], limit: float = 3.0) -> None:
    """Poll a plain-attribute condition."""
    async with asyncio.timeout(limit):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAmiServer]:
    server = FakeAmiServer(
        PbxModel(time.time, demo_queues()), users={"ccbridge": "secret"}, auth_fail_delay=0.0
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy(pbx: FakeAmiServer) -> AsyncIterator[FaultProxy]:
    fp = await FaultProxy("127.0.0.1", pbx.port).start()
    yield fp
    await fp.close()


def client_for(
    port: int, tick: Callable[[float], Awaitable[None]] = asyncio.sleep, **kw: float
) -> AmiClient:
    return AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=port,
            username="ccbridge",
            secret="secret",
            connect_timeout=0.5,
            action_timeout=1.0,
            ping_interval=kw.get("ping_interval", 5.0),
            backoff_initial=0.01,
            backoff_max=0.1,
        ),
        tick=tick,
    )


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[None]:
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(3)
        yield
    finally:
        await client.stop()
        async with asyncio.timeout(3):
            await task


class Resync:
    """A login hook like the real one: snapshot queues and channels after every login."""

    def __init__(self) -> None:
        self.runs = 0
        self.members = -1

    async def __call__(self, client: AmiClient) -> None:
        _, items = await client.send_list_action(act.queue_status())
        await client.send_list_action(act.core_show_channels())
        self.members = sum(1 for i in items if i.event == "QueueMember")
        self.runs += 1


async def test_connection_reset_reconnects_and_reruns_hooks(
    pbx: FakeAmiServer, proxy: FaultProxy
) -> None:
    client = client_for(proxy.port)
    resync = Resync()
    client.add_login_hook(resync)
    async with running(client):
        assert resync.runs == 1
        await client.send_action(act.queue_add("t1-sales", "Local/2009@agents", member_name="A"))
        proxy.reset_all()
        await until(lambda: resync.runs == 2)
        await client.wait_synced(3)
        assert client.status.reconnects == 1
        assert resync.members >= 1
        assert (await client.send_action(act.ping())).get("Ping") == "Pong"


async def test_half_open_detected_within_the_heartbeat_budget(
    pbx: FakeAmiServer, proxy: FaultProxy
) -> None:
    ticks = CountingTicks()
    client = client_for(proxy.port, tick=ticks, ping_interval=0.1)
    resync = Resync()
    client.add_login_hook(resync)
    async with running(client):
        proxy.blackhole()
        before = ticks.passed
        await until(lambda: not client.status.logged_in, limit=10)
        # Counted in heartbeat ticks, not seconds: (max_missed_pongs + 1) intervals = 15 s.
        assert ticks.passed - before <= client.config.max_missed_pongs + 1
        proxy.restore()
        await until(lambda: resync.runs == 2, limit=10)
        await client.wait_synced(10)


async def test_shutdown_and_restart_resync(pbx: FakeAmiServer) -> None:
    client = client_for(pbx.port)
    resync = Resync()
    client.add_login_hook(resync)
    async with running(client):
        await client.send_action(act.queue_add("t1-sales", "Local/2009@agents", member_name="A"))
        await pbx.restart(lose_members=True)
        await until(lambda: resync.runs == 2)
        await client.wait_synced(3)
        assert client.status.fully_booted
        assert client.status.reconnects >= 1


async def test_subscriber_exception_connection_survives(pbx: FakeAmiServer) -> None:
    client = client_for(pbx.port)
    seen: list[str] = []

    def bad(msg: AmiMessage) -> None:
        raise RuntimeError("handler bug")

    client.subscribe("Hangup", bad)
    client.subscribe("Newchannel", lambda m: seen.append(m.get("Uniqueid") or ""))
    async with running(client):
        pbx.emit("Hangup", [("Uniqueid", "1"), ("Cause", "16")])
        pbx.emit("Newchannel", [("Uniqueid", "2")])
        await until(lambda: seen == ["2"])
        assert client.status.reconnects == 0
        assert (await client.send_action(act.ping())).get("Ping") == "Pong"
