"""One regression test per verified panoramisk hazard (architecture.md §3.7) our client avoids.

Items 1 and 2 (FastAGI) belong to the AGI server's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiDisconnected, AmiNotConnected, AmiTimeout
from tests.support.fault_proxy import FaultProxy
from tests.support.mini_ami import MiniAmi, MiniConn, frame


def config(port: int, **kw: float) -> AmiConfig:
    return AmiConfig(
        host="127.0.0.1",
        port=port,
        username="ccbridge",
        secret="ccbridge-secret",
        connect_timeout=1.0,
        action_timeout=kw.pop("action_timeout", 1.0),
        ping_interval=kw.pop("ping_interval", 5.0),
        backoff_initial=0.01,
        backoff_max=0.05,
    )


async def until(cond: Callable[[], bool], limit: float = 3.0) -> None:
    """Poll a plain-attribute condition."""
    async with asyncio.timeout(limit):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[MiniAmi]:
    srv = await MiniAmi().start()
    yield srv
    await srv.close()


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[None]:
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(2)
        yield
    finally:
        await client.stop()
        async with asyncio.timeout(3):
            await task


async def test_hazard3_utf8_split_at_tcp_chunk_boundary(server: MiniAmi) -> None:
    """panoramisk decoded each chunk with errors='ignore': 'Иван Петров' became 'Иан Петров'."""
    proxy = await FaultProxy("127.0.0.1", server.port).start()
    client = AmiClient(config(proxy.port))
    got: list[AmiMessage] = []
    client.subscribe("Newchannel", got.append)
    async with running(client):
        proxy.slice(7)  # every multi-byte name is cut somewhere, in separate reads
        raw = frame(
            ("Event", "Newchannel"),
            ("CallerIDName", "Иван Петров"),
            ("Queue", "客服"),
            ("Uniqueid", "1"),
        )
        server.push(raw)
        await until(lambda: len(got) == 1)
    assert got[0].get("CallerIDName") == "Иван Петров"
    assert got[0].get("Queue") == "客服"
    await proxy.close()


async def test_hazard4_half_open_connection_is_detected(server: MiniAmi) -> None:
    """panoramisk sent pings but never checked the pong: 4 unanswered pings, no reconnect."""
    client = AmiClient(config(server.port, ping_interval=0.05))
    async with running(client):
        server.answer_pings = False
        await until(lambda: server.connections >= 2, limit=10.0)  # a hang guard only
        server.answer_pings = True
        await client.wait_synced(2)
        assert client.status.reconnects >= 1
        assert len(client._pending) <= 1  # unanswered pings do not pile up


async def test_hazard5_subscriber_exception_does_not_kill_connection(server: MiniAmi) -> None:
    """panoramisk: a Hangup handler exception dropped the connection and the next Newchannel."""
    client = AmiClient(config(server.port))
    seen: list[str] = []

    def bad_hangup(msg: AmiMessage) -> None:
        raise KeyError("bug")

    client.subscribe("Hangup", bad_hangup)
    client.subscribe("Newchannel", lambda m: seen.append(m.get("Uniqueid") or ""))
    async with running(client):
        # same TCP chunk, as in the verified panoramisk failure
        server.push(
            frame(("Event", "Hangup"), ("Uniqueid", "1"))
            + frame(("Event", "Newchannel"), ("Uniqueid", "2"))
        )
        await until(lambda: seen == ["2"])
        await asyncio.sleep(0.05)
        assert client.status.reconnects == 0
        assert server.connections == 1


async def test_hazard6_originate_without_async_key_does_not_crash(server: MiniAmi) -> None:
    """panoramisk raised KeyError('async') on 'Originate successfully queued' and dropped."""
    client = AmiClient(config(server.port))
    responses: list[AmiMessage] = []
    client.subscribe("OriginateResponse", responses.append)
    async with running(client):
        # a raw dict without Async: we still resolve on the single response
        resp = await client.send_action(
            {"Action": "Originate", "Channel": "Local/1@x", "Application": "Wait"}
        )
        assert resp.get("Message") == "Originate successfully queued"
        # and our builder always sends Async: true explicitly
        await client.send_action(act.originate("Local/1@x", application="Wait", data="1"))
        assert server.actions("Originate")[-1].get("Async") == "true"
        server.push(
            frame(
                ("Event", "OriginateResponse"), ("ActionID", resp.action_id or ""), ("Reason", "4")
            )
        )
        await until(lambda: len(responses) == 1)
        assert client.status.reconnects == 0


async def test_hazard7_in_flight_actions_fail_fast_and_are_not_replayed(server: MiniAmi) -> None:
    """panoramisk parked in-flight actions until FullyBooted (maybe never) and then replayed."""
    server.hold_actions.update({"Originate", "Redirect", "QueueAdd"})
    client = AmiClient(config(server.port, action_timeout=5.0))
    async with running(client):
        pending = [
            asyncio.create_task(client.send_action(a))
            for a in (
                act.originate("Local/1@x", application="Wait"),
                act.redirect("Local/1@x-1;2", "ivr", "s"),
                act.queue_add("sales", "Local/2001@agents"),
            )
        ]
        await until(lambda: len(server.actions("QueueAdd")) == 1)
        server.drop_all()
        async with asyncio.timeout(1):  # fails fast, long before the 5 s action timeout
            for task in pending:
                with pytest.raises(AmiDisconnected):
                    await task
        await until(lambda: server.logins == 2)
        await client.wait_synced(2)
        server.push(frame(("Event", "FullyBooted"), ("Status", "Fully Booted")))
        await asyncio.sleep(0.1)
        # and every action has its own timeout
        with pytest.raises(AmiTimeout):
            await client.send_action(act.queue_add("sales", "Local/2002@agents"), timeout=0.05)
    assert len(server.actions("Originate")) == 1
    assert len(server.actions("Redirect")) == 1
    assert len(server.actions("QueueAdd")) == 2  # the second one is the timeout probe


async def test_hazard8_send_before_connect_raises_clear_error() -> None:
    """panoramisk raised AttributeError('NoneType' has no attribute 'send')."""
    client = AmiClient(config(1))
    with pytest.raises(AmiNotConnected):
        await client.send_action(act.ping())
    with pytest.raises(AmiNotConnected):
        await client.send_list_action(act.queue_status())


async def test_hazard9_queue_add_success_message_resolves(server: MiniAmi) -> None:
    """panoramisk 1.4 took 'Added interface to queue' for a list start and never resolved."""

    def added(conn: MiniConn, msg: AmiMessage) -> None:
        conn.reply(msg, ("Message", "Added interface to queue"))

    server.handlers["QueueAdd"] = added
    client = AmiClient(config(server.port))
    async with running(client):
        resp = await client.send_action(act.queue_add("sales", "Local/2001@agents"), timeout=0.5)
        assert resp.get("Message") == "Added interface to queue"
