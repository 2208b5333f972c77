"""FakeAmiServer against the real Asterisk 22 captures, over a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import pytest

from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.unit.testing.conftest import (
    AmiTestClient,
    after_action,
    capture_frames,
    shape,
)

CC = "call-centre-scenarios/ami-from-asterisk.txt"
SMOKE = "queue-call-and-sip/ami-from-asterisk.txt"


async def test_banner_and_plain_login_match_capture(pbx: FakeAsterisk) -> None:
    c = await AmiTestClient.connect(pbx.ami_port)
    assert c.banner == b"Asterisk Call Manager/11.0.0\r\n"
    await c.send(Action="Login", ActionID="r-2", Username="ccbridge", Secret="secret")
    got = await c.until(lambda m: m.event == "SuccessfulAuth")
    want = capture_frames("restart-and-login/relogin-from-asterisk.txt")
    assert [shape(m) for m in got] == [shape(m) for m in want]
    await c.close()


async def test_md5_login(pbx: FakeAsterisk) -> None:
    c = await AmiTestClient.connect(pbx.ami_port)
    await c.send(Action="Challenge", ActionID="cap-1", AuthType="MD5")
    resp = await c.read()
    want = capture_frames(CC)[0]
    assert shape(resp) == shape(want)
    challenge = resp.get("Challenge") or ""
    key = hashlib.md5((challenge + "secret").encode()).hexdigest()
    await c.send(Action="Login", ActionID="cap-2", AuthType="MD5", Username="ccbridge", Key=key)
    got = await c.until(lambda m: m.event == "SuccessfulAuth")
    assert [m.response or m.event for m in got] == ["Success", "FullyBooted", "SuccessfulAuth"]
    assert got[0].get("Message") == "Authentication accepted"
    await c.close()


async def test_bad_secret_matches_capture_and_closes(pbx: FakeAsterisk) -> None:
    c = await AmiTestClient.connect(pbx.ami_port)
    await c.send(Action="Login", ActionID="r-3", Username="ccbridge", Secret="wrong")
    got = await c.read()
    want = capture_frames("restart-and-login/bad-secret-from-asterisk.txt")[0]
    assert got.fields == want.fields
    with pytest.raises(EOFError):
        await c.read()


async def test_unauthenticated_action_is_denied(pbx: FakeAsterisk) -> None:
    c = await AmiTestClient.connect(pbx.ami_port)
    await c.send(Action="QueueStatus", ActionID="x")
    got = await c.read()
    assert got.fields == [
        ("Response", "Error"),
        ("ActionID", "x"),
        ("Message", "Permission denied"),
    ]
    await c.close()


async def test_auth_timeout_closes_session() -> None:
    fake = FakeAsterisk(agi_url=None, auth_fail_delay=0.0)
    fake.ami.auth_timeout = 0.05
    await fake.start()
    try:
        c = await AmiTestClient.connect(fake.ami_port)
        with pytest.raises(EOFError):
            await c.read(1.0)
    finally:
        await fake.stop()


@pytest.mark.parametrize(
    ("capture", "action_id", "headers"),
    [
        (CC, "cap-3", {"Action": "Ping"}),
        (CC, "cap-4", {"Action": "NoSuchAction"}),
        (CC, "cap-5", {"Action": "Command", "Command": "core show version"}),
        (SMOKE, "smoke-1786-2", {"Action": "CoreSettings"}),
        (
            SMOKE,
            "smoke-1786-3",
            {"Action": "QueueRemove", "Queue": "t1-sales", "Interface": "Local/2999@agents"},
        ),
    ],
)
async def test_simple_actions_match_capture(
    client: AmiTestClient, capture: str, action_id: str, headers: dict[str, str]
) -> None:
    await client.send(**headers, ActionID=action_id)
    want = after_action(capture_frames(capture), action_id)
    got = [await client.read() for _ in want]
    assert [shape(m) for m in got] == [shape(m) for m in want]


async def test_queue_add_pause_remove_match_capture(
    client: AmiTestClient, pbx: FakeAsterisk
) -> None:
    # Rename the captured queue so the demo config can be used unchanged.
    pbx.model.queues["sales"] = pbx.model.queues.pop("t1-sales")
    pbx.model.queues["sales"].name = "sales"
    pbx.model.queues["sales"].members.clear()
    pbx.model.sync_devices()
    frames = capture_frames(CC)
    steps = [
        (
            "cap-6",
            {
                "Action": "QueueAdd",
                "Queue": "sales",
                "Interface": "Local/2001@agents",
                "MemberName": "T001 Zhang Wei",
                "StateInterface": "Local/2001@agents",
                "Penalty": "1",
                "Paused": "true",
                "Reason": "signing-in",
            },
        ),
        (
            "cap-7",
            {
                "Action": "QueueAdd",
                "Queue": "sales",
                "Interface": "Local/2002@agents",
                "MemberName": "T002 李娜",
                "Penalty": "0",
                "Paused": "true",
                "Reason": "signing-in",
            },
        ),
        ("cap-8", {"Action": "QueuePause", "Interface": "Local/2001@agents", "Paused": "false"}),
        (
            "cap-9",
            {
                "Action": "QueuePause",
                "Queue": "sales",
                "Interface": "Local/2002@agents",
                "Paused": "true",
                "Reason": "小休 break",
            },
        ),
        ("cap-12", {"Action": "QueueAdd", "Queue": "sales", "Interface": "Local/2001@agents"}),
        ("cap-27", {"Action": "QueueRemove", "Queue": "sales", "Interface": "Local/2002@agents"}),
    ]
    for action_id, headers in steps:
        await client.send(**headers, ActionID=action_id)
        want = after_action(frames, action_id)
        got = [await client.read() for _ in want]
        assert [shape(m) for m in got] == [shape(m) for m in want], action_id


async def test_queue_status_lists_everything(client: AmiTestClient, pbx: FakeAsterisk) -> None:
    handle = await pbx.simulator.place_call(did="4008001234", talk_seconds=30_000)
    for q in pbx.model.queues.values():
        for m in q.members.values():
            m.paused = True  # nobody answers: the caller must show up as a QueueEntry
    async with asyncio.timeout(10):  # a hang guard: wait for the caller to reach the queue
        while not any(q.entries for q in pbx.model.queues.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    await client.send(Action="QueueStatus", ActionID="qs")
    frames = await client.until(lambda m: m.event == "QueueStatusComplete")
    frames = [f for f in frames if f.action_id == "qs"]
    resp, items, done = frames[0], frames[1:-1], frames[-1]
    assert resp.fields == [
        ("Response", "Success"),
        ("ActionID", "qs"),
        ("EventList", "start"),
        ("Message", "Queue status will follow"),
    ]
    names = [i.event for i in items]
    assert names.count("QueueParams") == 3
    assert names.count("QueueMember") == 6
    entries = [i for i in items if i.event == "QueueEntry"]
    assert len(entries) == 1
    assert entries[0].get("Channel") == handle.channel
    assert done.get("ListItems") == str(len(items))
    want = capture_frames(CC)
    params = next(m for m in want if m.event == "QueueParams")
    member = next(m for m in want if m.event == "QueueMember")
    assert [k for k, _ in items[0].fields if k != "ChanVariable"] == [
        k for k, _ in params.fields if k != "ChanVariable"
    ]
    assert [k for k, _ in items[1].fields if k != "ChanVariable"] == [
        k for k, _ in member.fields if k != "ChanVariable"
    ]
    handle.task.cancel()


async def test_queue_summary_and_core_show_channels_shape(client: AmiTestClient) -> None:
    want = capture_frames(CC)
    await client.send(Action="QueueSummary", ActionID="cap-11")
    got = await client.until(lambda m: m.event == "QueueSummaryComplete")
    ref = after_action(want, "cap-11")
    assert [k for k, _ in got[1].fields if k != "ChanVariable"] == [
        k for k, _ in ref[1].fields if k != "ChanVariable"
    ]
    assert shape(got[-1]) == shape(ref[-1])
    await client.send(Action="CoreShowChannels", ActionID="cap-14")
    got = await client.until(lambda m: m.event == "CoreShowChannelsComplete")
    assert got[0].get("Message") == "Channels will follow"
    assert got[-1].get("ListItems") == "0"


async def test_originate_and_recording_actions(client: AmiTestClient, pbx: FakeAsterisk) -> None:
    pbx.ami.time_scale = 1.0  # the channel must outlive the recording actions on a loaded box
    await client.send(
        Action="Originate",
        ActionID="cap-13",
        Channel="Local/sales@queue-in",
        Application="Wait",
        Data="25",
        CallerID='"张三" <13800138000>',
        Async="true",
        Variable="CCB_TENANT=t1,CCB_DID=4008001234",
    )
    got = await client.until(lambda m: m.event == "OriginateResponse")
    assert got[0].fields == [
        ("Response", "Success"),
        ("ActionID", "cap-13"),
        ("Message", "Originate successfully queued"),
    ]
    ref = next(m for m in capture_frames(CC) if m.event == "OriginateResponse")
    assert shape(got[-1]) == shape(ref)
    chan = got[-1].get("Channel") or ""
    two = chan.replace(";1", ";2")
    await client.send(
        Action="MixMonitor", ActionID="cap-15", Channel=two, File="x.wav", Options="b"
    )
    got = await client.until(lambda m: m.event == "MixMonitorStart")
    assert got[0].fields == [("Response", "Success"), ("ActionID", "cap-15")]
    await client.send(
        Action="MixMonitorMute", ActionID="cap-16", Channel=two, Direction="both", State="1"
    )
    got = await client.until(lambda m: m.event == "MixMonitorMute")
    ref = next(m for m in capture_frames(CC) if m.event == "MixMonitorMute")
    assert [k for k, _ in got[-1].fields if k != "ChanVariable"] == [
        k for k, _ in ref.fields if k != "ChanVariable"
    ]
    await client.send(Action="StopMixMonitor", ActionID="cap-18", Channel=two)
    got = await client.until(lambda m: m.event == "MixMonitorStop")
    assert got[0].fields == [("Response", "Success"), ("ActionID", "cap-18")]
    await client.send(Action="Getvar", ActionID="g", Channel=two, Variable="CCB_TENANT")
    got = await client.until(lambda m: m.action_id == "g")
    assert got[-1].fields == [
        ("Response", "Success"),
        ("ActionID", "g"),
        ("Variable", "CCB_TENANT"),
        ("Value", "t1"),
    ]
    await client.send(Action="Hangup", ActionID="h", Channel=chan)
    got = await client.until(lambda m: m.event == "Hangup")
    assert got[0].get("Message") == "Channel Hungup"
    assert got[-1].get("Cause-txt") == "Normal Clearing"
    await client.send(Action="Logoff", ActionID="cap-28")
    got = await client.until(lambda m: m.response == "Goodbye")
    assert got[-1].fields == after_action(capture_frames(CC), "cap-28")[0].fields


async def test_events_reach_every_session(pbx: FakeAsterisk, client: AmiTestClient) -> None:
    other = await AmiTestClient.connect(pbx.ami_port)
    await other.login()
    pbx.ami.pause_member_behind_back("t1-sales", "Local/2001@agents", True, "lunch")
    for c in (client, other):
        got = await c.until(lambda m: m.event == "QueueMemberPause")
        assert got[-1].get("PausedReason") == "lunch"
        assert (got[-1].get("Timestamp") or "").count(".") == 1
        assert len((got[-1].get("Timestamp") or "").split(".")[1]) == 6
    await other.close()


async def test_shutdown_event_matches_capture_and_restart(pbx: FakeAsterisk) -> None:
    pbx.model.queues["t1-sales"].members.clear()
    c = await AmiTestClient.connect(pbx.ami_port)
    await c.login()
    await c.send(Action="QueueAdd", ActionID="a", Queue="t1-sales", Interface="Local/2009@agents")
    await c.until(lambda m: m.event == "QueueMemberAdded")
    await pbx.ami.restart(lose_members=True)
    got = await c.drain_for(0.5)
    want = capture_frames("restart-and-login/shutdown-from-asterisk.txt")[-1]
    assert shape(got[-1]) == shape(want)
    with pytest.raises(EOFError):
        await c.read(0.5)
    assert "Local/2009@agents" not in pbx.model.queues["t1-sales"].members
    c2 = await AmiTestClient.connect(pbx.ami_port)
    got = await c2.login()
    assert got[1].event == "FullyBooted"
    await c2.close()


async def test_drop_all_resets_connections(pbx: FakeAsterisk, client: AmiTestClient) -> None:
    pbx.ami.drop_all()
    with pytest.raises((ConnectionResetError, EOFError)):
        await client.read(1.0)


async def test_slow_reader_is_dropped_after_writetimeout() -> None:
    fake = FakeAsterisk(agi_url=None, auth_fail_delay=0.0)
    fake.ami.socket_sndbuf = 4096
    await fake.start()
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", fake.ami_port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        c = AmiTestClient(reader, writer)
        c.banner = await reader.readline()
        await c.login()
        assert len(fake.ami.sessions) == 1
        member = "Local/2001@agents"
        for i in range(5000):  # the client reads nothing from here on
            fake.ami.pause_member_behind_back(None, member, bool(i % 2), "x" * 200)
            if i % 100 == 0:
                await asyncio.sleep(0)
            if not fake.ami.sessions or fake.ami.dropped_slow:
                break
        for _ in range(500):  # a hang guard (10 s), not a time limit
            if fake.ami.dropped_slow:
                break
            await asyncio.sleep(0.02)
        assert fake.ami.dropped_slow == 1
        writer.close()
    finally:
        await fake.stop()
