"""AmiClient behaviour against a real TCP server (MiniAmi), with short timers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig, backoff_delay
from ccbridge.asterisk.ami.codec import AmiMessage, HeaderInjectionError
from ccbridge.asterisk.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.mini_ami import MiniAmi, MiniConn, frame
from tests.support.ticks import CountingTicks, ManualTicks


def make_config(port: int, **kw: object) -> AmiConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "ccbridge",
        "secret": "ccbridge-secret",
        "connect_timeout": 1.0,
        "action_timeout": 1.0,
        "ping_interval": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    base.update(kw)
    return AmiConfig(**base)  # type: ignore[arg-type]


async def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll ``cond`` (state lives in plain attributes, so there is no Event to wait on)."""
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[MiniAmi]:
    srv = await MiniAmi().start()
    yield srv
    await srv.close()


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        await client.stop()
        async with asyncio.timeout(3):
            await task


# --------------------------------------------------------------------------- login


async def test_md5_login_sends_challenge_then_key(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        st = client.status
        assert st.connected
        assert st.logged_in
        assert st.synced
    names = [m.get("Action") for m in server.received]
    assert names[:2] == ["Challenge", "Login"]
    login = server.received[1]
    assert login.get("AuthType") == "MD5"
    assert login.get("Key") == act.md5_key("161273028", "ccbridge-secret")
    assert login.get("Secret") is None
    assert server.received[0].action_id != login.action_id


async def test_plain_login(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port, auth="plain"))
    async with running(client):
        await client.wait_synced(2)
    login = server.actions("Login")[0]
    assert login.get("Secret") == "ccbridge-secret"
    assert server.actions("Challenge") == []


async def test_fully_booted_after_login_is_noted(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        await wait_for(lambda: client.status.fully_booted)


async def test_auth_failure_backs_off_without_hammering(server: MiniAmi) -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.005)

    client = AmiClient(
        make_config(server.port, secret="wrong", backoff_initial=0.5, backoff_max=30),
        rand=lambda: 1.0,
        sleep=fake_sleep,
    )
    with capture_logs() as logs:
        async with running(client):
            await wait_for(lambda: len(delays) >= 5)
            assert not client.status.logged_in
            assert "Authentication failed" in (client.status.last_error or "")
    assert server.failed_logins >= 5
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]  # grows, does not hammer
    failures = [e for e in logs if e["event"] == "ami_auth_failed" and e["log_level"] == "error"]
    assert len(failures) == 1  # logged once per outage


async def test_auth_error_class_from_login() -> None:
    assert issubclass(AmiAuthError, AmiError)


async def test_connect_timeout_and_backoff_on_refused() -> None:
    # A listening socket that never accepts beyond the backlog would be flaky; use a closed port.
    srv = await MiniAmi().start()
    port = srv.port
    await srv.close()
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0)

    client = AmiClient(make_config(port), rand=lambda: 0.0, sleep=fake_sleep)
    async with running(client):
        await wait_for(lambda: len(sleeps) >= 3)
        assert client.status.reconnects >= 2
        assert not client.status.connected
    assert sleeps[:3] == [0.005, 0.01, 0.02]


async def test_banner_timeout_is_a_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = AmiClient(make_config(port, connect_timeout=0.1))
    async with running(client):
        await wait_for(lambda: client.status.last_error is not None)
        assert "TimeoutError" in (client.status.last_error or "")
    srv.close()


def test_backoff_schedule_is_jittered_exponential_and_capped() -> None:
    hi = [backoff_delay(n, 0.5, 30, lambda: 1.0) for n in range(10)]
    assert hi == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    lo = [backoff_delay(n, 0.5, 30, lambda: 0.0) for n in range(3)]
    assert lo == [0.25, 0.5, 1.0]
    assert backoff_delay(1000, 0.5, 30, lambda: 0.5) == 22.5


# --------------------------------------------------------------------------- actions


async def test_action_id_correlation_out_of_order(server: MiniAmi) -> None:
    held: list[tuple[MiniConn, AmiMessage]] = []

    def hold(conn: MiniConn, msg: AmiMessage) -> None:
        held.append((conn, msg))

    server.handlers["Getvar"] = hold
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        t1 = asyncio.create_task(client.send_action(act.getvar("A")))
        t2 = asyncio.create_task(client.send_action(act.getvar("B")))
        await wait_for(lambda: len(held) == 2)
        ids = [m.action_id for _, m in held]
        assert ids[0] != ids[1]
        assert all(i and i.startswith("ccb-") for i in ids)
        for conn, msg in reversed(held):  # answer in reverse order
            conn.reply(msg, ("Variable", msg.get("Variable") or ""), ("Value", "v"))
        r1, r2 = await t1, await t2
        assert r1.get("Variable") == "A"
        assert r2.get("Variable") == "B"


async def test_action_error_carries_message(server: MiniAmi) -> None:
    def dup(conn: MiniConn, msg: AmiMessage) -> None:
        conn.reply(msg, ("Message", "Unable to add interface: Already there"), ok=False)

    server.handlers["QueueAdd"] = dup
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        with pytest.raises(AmiActionError) as info:
            await client.send_action(act.queue_add("sales", "Local/2001@agents"))
        assert info.value.message == "Unable to add interface: Already there"
        # the connection is still usable
        resp = await client.send_action(act.ping())
        assert resp.get("Ping") == "Pong"


async def test_the_action_observer_hears_each_outcome(server: MiniAmi) -> None:
    server.handlers["QueueAdd"] = lambda conn, msg: conn.reply(msg, ("Message", "no"), ok=False)
    server.hold_actions.add("Redirect")
    heard: list[tuple[str, str]] = []
    client = AmiClient(make_config(server.port))
    client.action_observer = lambda name, seconds, outcome: heard.append((name, outcome))
    async with running(client):
        await client.wait_synced(2)
        heard.clear()  # login and its hooks are actions too
        await client.send_action(act.ping())
        with pytest.raises(AmiActionError):
            await client.send_action(act.queue_add("sales", "Local/2001@agents"))
        with pytest.raises(AmiTimeout):
            await client.send_action(act.redirect("Local/x", "ivr", "s"), timeout=0.05)
    assert heard[:3] == [("Ping", "ok"), ("QueueAdd", "error"), ("Redirect", "timeout")]


async def test_every_action_times_out(server: MiniAmi) -> None:
    server.hold_actions.add("Redirect")
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        with pytest.raises(AmiTimeout):
            await client.send_action(act.redirect("Local/x", "ivr", "s"), timeout=0.05)
        assert client._pending == {}
        assert client.status.connected


async def test_list_action_collects_until_complete(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    seen: list[str] = []
    client.subscribe(None, lambda m: seen.append(m.event or ""))
    async with running(client):
        await client.wait_synced(2)
        resp, items = await client.send_list_action(act.queue_status())
        assert resp.get("EventList") == "start"
        assert [i.event for i in items] == ["QueueParams", "QueueMember"]
        assert items[1].get("Name") == "T002 李娜"
        resp2, items2 = await client.send_list_action(act.core_show_channels())
        assert items2 == []
        assert resp2.get("Message") == "Channels will follow"
    # list items are answers, not broadcast events
    assert "QueueMember" not in seen


async def test_list_action_times_out_without_complete(server: MiniAmi) -> None:
    def no_complete(conn: MiniConn, msg: AmiMessage) -> None:
        conn.reply(msg, ("EventList", "start"))

    server.handlers["QueueSummary"] = no_complete
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        with pytest.raises(AmiTimeout):
            await client.send_list_action(act.queue_summary(), timeout=0.1)
        assert client._lists_pending == 0


async def test_send_while_not_logged_in_raises_immediately() -> None:
    client = AmiClient(make_config(1))
    with pytest.raises(AmiNotConnected):
        await client.send_action(act.ping())
    with pytest.raises(AmiNotConnected):
        await client.send_action({"Action": "Originate", "Channel": "Local/1@x"})


async def test_header_injection_rejected_before_any_write(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        before = len(server.received)
        with pytest.raises(HeaderInjectionError):
            act.originate("Local/1@x", application="Wait", caller_id="a\r\nApplication: System")
        with pytest.raises(HeaderInjectionError):
            await client.send_action(
                {"Action": "Originate", "CallerID": "a\r\nApplication: System"}
            )
        with pytest.raises(HeaderInjectionError):
            await client.send_action({"Action": "Setvar", "Value": "x\x00y"})
        await client.send_action(act.ping())
        after = server.received[before:]
        assert [m.get("Action") for m in after] == ["Ping"]
        assert all(m.get("Application") is None for m in server.received)


async def test_in_flight_actions_fail_and_are_never_replayed(server: MiniAmi) -> None:
    server.hold_actions.update({"Originate", "Redirect", "QueueAdd"})
    client = AmiClient(make_config(server.port))
    async with running(client):
        await client.wait_synced(2)
        tasks = [
            asyncio.create_task(client.send_action(a, timeout=5))
            for a in (
                act.originate("Local/1@x", application="Wait", data="1"),
                act.redirect("Local/1@x-1;2", "ivr", "s"),
                act.queue_add("sales", "Local/2001@agents"),
            )
        ]
        await wait_for(lambda: len(server.actions("QueueAdd")) == 1)
        server.drop_all()
        for task in tasks:
            with pytest.raises(AmiDisconnected):
                await task
        await wait_for(lambda: server.logins == 2)
        await client.wait_synced(2)
        await client.send_action(act.ping())
        await asyncio.sleep(0.05)
    assert len(server.actions("Originate")) == 1
    assert len(server.actions("Redirect")) == 1
    assert len(server.actions("QueueAdd")) == 1


# --------------------------------------------------------------------------- events


async def test_dispatch_by_name_catch_all_sync_and_async_in_order(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    got: list[str] = []

    async def slow(msg: AmiMessage) -> None:
        await asyncio.sleep(0.01)
        got.append("async:" + (msg.get("Uniqueid") or ""))

    client.subscribe("Newchannel", lambda m: got.append("sync:" + (m.get("Uniqueid") or "")))
    client.subscribe("Newchannel", slow)
    every: list[str] = []
    unsub = client.subscribe(None, lambda m: every.append(m.event or ""))
    async with running(client):
        await client.wait_synced(2)
        server.push(
            frame(("Event", "Newchannel"), ("Uniqueid", "1"))
            + frame(("Event", "Newchannel"), ("Uniqueid", "2"))
            + frame(("Event", "VarSet"), ("Variable", "X"))
        )
        await wait_for(lambda: len(got) == 4)
        assert got == ["sync:1", "async:1", "sync:2", "async:2"]
        await wait_for(lambda: "VarSet" in every)
        unsub()
        n = len(every)
        server.push(frame(("Event", "Newchannel"), ("Uniqueid", "3")))
        await wait_for(lambda: len(got) == 6)
        assert len(every) == n
        assert client.status.last_event_at is not None


async def test_failing_subscriber_is_isolated(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    seen: list[str] = []

    def boom(msg: AmiMessage) -> None:
        raise RuntimeError("handler bug")

    async def aboom(msg: AmiMessage) -> None:
        raise ValueError("async handler bug")

    client.subscribe("Hangup", boom)
    client.subscribe("Hangup", aboom)
    client.subscribe("Hangup", lambda m: seen.append("Hangup"))
    client.subscribe("Newchannel", lambda m: seen.append("Newchannel"))
    with capture_logs() as logs:
        async with running(client):
            await client.wait_synced(2)
            server.push(
                frame(("Event", "Hangup"), ("Uniqueid", "1"))
                + frame(("Event", "Newchannel"), ("Uniqueid", "2"))
            )
            await wait_for(lambda: seen == ["Hangup", "Newchannel"])
            assert client.status.reconnects == 0
            assert server.connections == 1
            await client.send_action(act.ping())
    failed = [e for e in logs if e["event"] == "ami_subscriber_failed"]
    assert len(failed) == 2
    assert failed[0]["ami_event"] == "Hangup"


async def test_unsubscribed_events_are_skipped_unparsed(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    got: list[AmiMessage] = []
    client.subscribe("Hangup", got.append)
    async with running(client):
        await client.wait_synced(2)
        base = client.status
        server.push(
            frame(("Event", "VarSet"), ("Variable", "x")) * 10
            + frame(("Event", "Hangup"), ("Uniqueid", "9"))
        )
        await wait_for(lambda: len(got) == 1)
        st = client.status
        assert st.events_skipped - base.events_skipped == 10
        assert st.events_received - base.events_received == 11
        assert st.queue_depth == 0


async def test_slow_subscriber_never_blocks_the_reader(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    gate = asyncio.Event()
    done: list[int] = []

    async def blocked(msg: AmiMessage) -> None:
        await gate.wait()
        done.append(1)

    client.subscribe("Newstate", blocked)
    async with running(client):
        await client.wait_synced(2)
        server.push(frame(("Event", "Newstate"), ("Uniqueid", "1")) * 50)
        await wait_for(lambda: client.status.queue_depth >= 49)
        # the reader still answers actions while the consumer is stuck
        resp = await client.send_action(act.ping(), timeout=0.5)
        assert resp.get("Ping") == "Pong"
        gate.set()
        await wait_for(lambda: len(done) == 50)
        assert client.status.queue_depth == 0
        assert client.status.queue_lag >= 0


async def test_queue_overflow_counts_and_resyncs(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port, event_queue_size=5))
    gate = asyncio.Event()

    async def blocked(msg: AmiMessage) -> None:
        await gate.wait()

    client.subscribe("Newstate", blocked)
    async with running(client):
        await client.wait_synced(2)
        server.push(frame(("Event", "Newstate"), ("Uniqueid", "1")) * 20)
        await wait_for(lambda: client.status.events_dropped >= 1)
        gate.set()
        await wait_for(lambda: server.logins >= 2)
        await client.wait_synced(2)


async def test_utf8_split_mid_character_across_writes(server: MiniAmi) -> None:
    proxy = await FaultProxy("127.0.0.1", server.port).start()
    client = AmiClient(make_config(proxy.port))
    got: list[AmiMessage] = []
    client.subscribe("Newchannel", got.append)
    async with running(client):
        await client.wait_synced(2)
        data = frame(("Event", "Newchannel"), ("CallerIDName", "张三"), ("Uniqueid", "1"))
        cut = data.index("张".encode()) + 1  # inside the 3-byte sequence
        for conn in server.conns:
            conn.send(data[:cut])
            await conn.writer.drain()
            await asyncio.sleep(0.05)  # separate TCP segments / reads
            conn.send(data[cut:])
        await wait_for(lambda: len(got) == 1)
        assert got[0].get("CallerIDName") == "张三"
    await proxy.close()


async def test_gbk_caller_name_does_not_crash(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    got: list[AmiMessage] = []
    client.subscribe("Newchannel", got.append)
    async with running(client):
        await client.wait_synced(2)
        server.push(b"Event: Newchannel\r\nCallerIDName: " + "李娜".encode("gbk") + b"\r\n\r\n")
        server.push(frame(("Event", "Newchannel"), ("CallerIDName", "ok")))
        await wait_for(lambda: len(got) == 2)
        assert got[0].get("CallerIDName") == "李娜"


async def test_oversized_frame_dropped_and_next_frame_delivered(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    got: list[AmiMessage] = []
    client.subscribe("Newchannel", got.append)
    async with running(client):
        await client.wait_synced(2)
        junk = b"X" * (1 << 20)
        for conn in server.conns:
            for _ in range(16):  # 16 MB, no terminator
                conn.send(junk)
                await conn.writer.drain()
        server.push(b"\r\n\r\n" + frame(("Event", "Newchannel"), ("Uniqueid", "ok")))
        await wait_for(lambda: len(got) == 1, timeout=5)
        assert got[0].get("Uniqueid") == "ok"
        assert client.status.frames_oversized == 1
        session = client._session
        assert session is not None
        assert session.decoder.pending < 1 << 20


# --------------------------------------------------------------------------- heartbeat, reconnect


async def test_ping_records_pong_rtt(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port, ping_interval=0.05))
    async with running(client):
        await client.wait_synced(2)
        await wait_for(lambda: client.status.last_pong_rtt is not None)
        await wait_for(lambda: len(server.actions("Ping")) >= 2)
        assert client.status.reconnects == 0


async def test_two_missed_pongs_reconnect(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port, ping_interval=0.05))
    async with running(client):
        await client.wait_synced(2)
        server.answer_pings = False
        await wait_for(lambda: server.connections == 2)
        server.answer_pings = True
        await client.wait_synced(2)
        assert client.status.reconnects >= 1


async def test_half_open_detected_via_blackhole_and_recovers(server: MiniAmi) -> None:
    proxy = await FaultProxy("127.0.0.1", server.port).start()
    ticks = CountingTicks()
    cfg = make_config(proxy.port, ping_interval=0.05, connect_timeout=0.2)
    client = AmiClient(cfg, tick=ticks)
    async with running(client):
        await client.wait_synced(2)
        proxy.blackhole()
        before = ticks.passed
        await wait_for(lambda: not client.status.logged_in, timeout=10)
        # The budget in heartbeat ticks, whatever the machine's load: (missed + 1) intervals.
        assert ticks.passed - before <= cfg.max_missed_pongs + 1
        assert "pongs missed" in (client.status.last_error or "")
        proxy.restore()
        await client.wait_synced(10)
        assert client.status.reconnects >= 1
    await proxy.close()


@pytest.mark.parametrize("max_missed", [1, 2, 3])
async def test_a_silent_peer_is_dropped_within_interval_times_missed_plus_one(
    server: MiniAmi, max_missed: int
) -> None:
    ticks = ManualTicks()
    cfg = make_config(server.port, ping_interval=5.0, max_missed_pongs=max_missed)
    client = AmiClient(cfg, tick=ticks)

    async def tick() -> None:
        waiting = ticks.waiting
        ticks.advance()
        await wait_for(lambda: ticks.waiting > waiting or not client.status.logged_in)

    async with running(client):
        await client.wait_synced(2)
        await wait_for(lambda: ticks.waiting == 1)
        await tick()  # ping 1 sent ...
        await wait_for(lambda: client.status.last_pong_rtt is not None)  # ... and answered
        server.answer_pings = False  # the link dies just after its last pong: the worst case
        ticks_to_detect = 0
        while client.status.logged_in:
            assert ticks_to_detect <= max_missed, "still connected past the budget"
            await tick()
            ticks_to_detect += 1
        assert ticks_to_detect == max_missed + 1
        assert set(ticks.intervals) == {5.0}
        assert ticks_to_detect * cfg.ping_interval <= cfg.ping_interval * (max_missed + 1)
        await wait_for(lambda: len(server.actions("Ping")) >= max_missed + 1)
        assert len(server.actions("Ping")) == max_missed + 1  # one per tick, none after
        assert f"{max_missed} pongs missed" in (client.status.last_error or "")


async def test_the_default_heartbeat_budget_is_the_documented_15_seconds() -> None:
    cfg = AmiConfig(host="pbx", username="u", secret="s")
    assert cfg.ping_interval * (cfg.max_missed_pongs + 1) == 15


async def test_an_answered_ping_starts_the_misses_over(server: MiniAmi) -> None:
    ticks = ManualTicks()
    client = AmiClient(make_config(server.port, max_missed_pongs=2), tick=ticks)

    async def tick(n: int, answer: bool) -> None:
        """Let tick ``n`` pass; its ping is answered or lost."""
        server.answer_pings = answer
        await wait_for(lambda: ticks.waiting == n)
        ticks.advance()
        await wait_for(lambda: len(server.actions("Ping")) == n)

    async with running(client):
        await client.wait_synced(2)
        await tick(1, answer=False)
        await tick(2, answer=True)  # ping 1 missed (1 in a row); ping 2 answered
        await tick(3, answer=False)  # the misses start over
        await tick(4, answer=False)  # ping 3 missed (1 in a row)
        await wait_for(lambda: ticks.waiting == 5)
        assert client.status.logged_in
        assert client.status.reconnects == 0
        ticks.advance()  # ping 4 missed: 2 in a row
        await wait_for(lambda: not client.status.logged_in)


async def test_reset_reconnects_and_reruns_login_hooks(server: MiniAmi) -> None:
    proxy = await FaultProxy("127.0.0.1", server.port).start()
    client = AmiClient(make_config(proxy.port))
    order: list[str] = []

    async def resync(c: AmiClient) -> None:
        assert not c.status.synced
        _, members = await c.send_list_action(act.queue_status())
        await c.send_list_action(act.core_show_channels())
        order.append(f"resync:{len(members)}")

    async def second(c: AmiClient) -> None:
        order.append("second")

    client.add_login_hook(resync)
    client.add_login_hook(second)
    async with running(client):
        await client.wait_synced(2)
        assert order == ["resync:2", "second"]
        proxy.reset_all()
        await wait_for(lambda: len(order) == 4)
        await client.wait_synced(2)
        assert order == ["resync:2", "second"] * 2
        assert client.status.reconnects == 1
        assert client.status.synced
    await proxy.close()


async def test_failing_login_hook_forces_reconnect(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    calls: list[int] = []

    async def flaky(c: AmiClient) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("resync bug")

    client.add_login_hook(flaky)
    async with running(client):
        await client.wait_synced(2)
    assert len(calls) == 2
    assert server.logins == 2


async def test_shutdown_event_closes_and_resyncs(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    hooks: list[int] = []

    async def hook(c: AmiClient) -> None:
        hooks.append(1)

    client.add_login_hook(hook)
    with capture_logs() as logs:
        async with running(client):
            await client.wait_synced(2)
            server.push(
                frame(
                    ("Event", "Shutdown"),
                    ("Privilege", "system,all"),
                    ("Shutdown", "Cleanly"),
                    ("Restart", "True"),
                )
            )
            await wait_for(lambda: len(hooks) == 2)
            await client.wait_synced(2)
            assert server.connections == 2
    # An orderly PBX restart is expected: info and warning lines, never an error.
    levels = {e["event"]: e["log_level"] for e in logs}
    assert levels["ami_pbx_shutdown"] == "info"
    assert levels["ami_connection_failed"] == "warning"
    assert levels["ami_recovered"] == "info"
    assert not [e for e in logs if e["log_level"] == "error"]


async def test_stop_logs_off_and_run_returns(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port))
    task = asyncio.create_task(client.run())
    await client.wait_synced(2)
    await client.stop()
    async with asyncio.timeout(2):
        await task
    assert server.actions("Logoff")
    assert not client.status.connected
    with pytest.raises(AmiNotConnected):
        await client.send_action(act.ping())


async def test_wait_synced_timeout() -> None:
    client = AmiClient(make_config(1))
    with pytest.raises(AmiTimeout):
        await client.wait_synced(0.01)


async def test_no_unawaited_tasks_leak(server: MiniAmi) -> None:
    client = AmiClient(make_config(server.port, ping_interval=0.02))
    hook: Callable[[AmiClient], Awaitable[None]]

    async def hook(c: AmiClient) -> None:
        await c.send_action(act.ping())

    client.add_login_hook(hook)
    async with running(client):
        await client.wait_synced(2)
        server.drop_all()
        await wait_for(lambda: server.logins == 2)
        await client.wait_synced(2)
    gc.collect()


# --------------------------------------------------------------------------- fault proxy self-tests


@contextlib.asynccontextmanager
async def echo_via_proxy() -> AsyncIterator[
    tuple[FaultProxy, asyncio.StreamReader, asyncio.StreamWriter, list[int]]
]:
    reads: list[int] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                reads.append(len(data))
                writer.write(data)
                await writer.drain()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = await FaultProxy("127.0.0.1", upstream.sockets[0].getsockname()[1]).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        yield proxy, reader, writer, reads
    finally:
        writer.transport.abort()
        await proxy.close()
        upstream.close()


async def test_proxy_forwards_both_ways() -> None:
    async with echo_via_proxy() as (_, reader, writer, _reads):
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), 1) == b"hello"


async def test_proxy_slice_splits_into_small_reads() -> None:
    async with echo_via_proxy() as (proxy, reader, writer, reads):
        proxy.slice(3, pause=0.005)
        writer.write(b"abcdefghijkl")
        assert await asyncio.wait_for(reader.readexactly(12), 2) == b"abcdefghijkl"
        assert len(reads) >= 3
        assert max(reads) <= 3


async def test_proxy_blackhole_then_restore() -> None:
    async with echo_via_proxy() as (proxy, reader, writer, _reads):
        proxy.blackhole()
        writer.write(b"lost")
        await writer.drain()  # the write "succeeds": half-open
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(10), 0.1)
        proxy.restore()
        writer.write(b"back")
        assert await asyncio.wait_for(reader.readexactly(4), 1) == b"back"


async def test_proxy_delay() -> None:
    async with echo_via_proxy() as (proxy, reader, writer, _reads):
        proxy.delay(0.1)
        writer.write(b"x")
        # One loop, so its timers fire in deadline order however busy the machine is: ours
        # (0.15 s) comes before the proxy's two holds (0.1 s each way) are over.
        echoed = asyncio.ensure_future(reader.readexactly(1))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(echoed), 0.15)
        assert await asyncio.wait_for(echoed, 10) == b"x"


async def test_proxy_reset_sends_rst() -> None:
    async with echo_via_proxy() as (proxy, reader, writer, _reads):
        writer.write(b"x")
        await asyncio.wait_for(reader.readexactly(1), 1)
        proxy.reset_all()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 1)
