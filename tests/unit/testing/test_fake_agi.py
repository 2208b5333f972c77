"""FakeAgiClient against a tiny FastAGI server written here, checked with the captures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ccbridge.testing.fake_agi import DEAD_CHANNEL, AgiCall, FakeAgiClient, split_args
from tests.unit.testing.conftest import CAPTURES

CC = CAPTURES / "call-centre-scenarios"


@dataclass
class Script:
    """Commands a test FastAGI server sends, and what it saw."""

    commands: list[str]
    env: list[tuple[str, str]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    extra_lines: list[str] = field(default_factory=list)


async def _serve(
    script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        line = (await reader.readline()).decode().rstrip("\n")
        if not line:
            break
        key, _, value = line.partition(": ")
        script.env.append((key, value))
    for cmd in script.commands:
        writer.write(cmd.encode() + b"\n")
        await writer.drain()
        reply = (await reader.readline()).decode().rstrip("\n")
        script.replies.append(reply)
        if reply == "HANGUP":  # the channel went away; the next line is the real reply
            script.extra_lines.append(reply)
            script.replies[-1] = (await reader.readline()).decode().rstrip("\n")
    writer.close()


StartAgi = Callable[[Script], Awaitable[str]]


@pytest.fixture
async def agi_server() -> AsyncIterator[StartAgi]:
    servers: list[asyncio.Server] = []

    async def make(script: Script) -> str:
        server = await asyncio.start_server(lambda r, w: _serve(script, r, w), "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"agi://127.0.0.1:{port}/ivr-main"

    yield make
    for s in servers:
        s.close()
        await s.wait_closed()


def test_split_args_handles_quotes() -> None:
    assert split_args('STREAM FILE "nonexistent-prompt" "0123456789*#"') == [
        "STREAM",
        "FILE",
        "nonexistent-prompt",
        "0123456789*#",
    ]
    assert split_args('SET VARIABLE X ""') == ["SET", "VARIABLE", "X", ""]


async def test_environment_and_replies_match_capture(agi_server: StartAgi) -> None:
    commands = (CC / "fastagi-to-asterisk.txt").read_text().splitlines()
    captured = (CC / "fastagi-from-asterisk.txt").read_text().split("\n\n", 1)
    want_env = [
        tuple(line.split(": ", 1)) if ": " in line else (line.rstrip(":"), "")
        for line in captured[0].splitlines()
    ]
    want_replies = captured[1].splitlines()
    script = Script(commands)
    url = await agi_server(script)
    call = AgiCall(
        channel="Local/sales@queue-in-0000000a;2",
        uniqueid="1795433106.22",
        callerid="02087654321",
        calleridname="Li Si",
        context="agi-test",
        extension="ivr-main",
        priority=3,
    )
    client = FakeAgiClient(url, call, dtmf=[""], missing_prompts={"nonexistent-prompt", "beep"})
    result = await client.run()
    assert [k for k, _ in script.env] == [k for k, _ in want_env]
    env = dict(script.env)
    assert env["agi_request"] == url
    assert env["agi_type"] == "Local"
    assert env["agi_version"] == "22.10.1"
    assert env["agi_network_script"] == "ivr-main"
    assert script.replies == want_replies
    assert result.variables_set == {"IVR_CHOICE": "2"}
    assert result.ended_normally
    assert not result.hung_up


async def test_get_data_dtmf_and_args(agi_server: StartAgi) -> None:
    script = Script(
        [
            'GET DATA "welcome" 3000 4',
            'GET DATA "menu" 3000 1',
            "GET DATA x 10 4",
            'GET DATA "y" 10 4',
        ]
    )
    url = await agi_server(script)
    call = AgiCall(channel="PJSIP/trunk-00000001", args=["4008001234", "t1"])
    result = await FakeAgiClient(url, call, dtmf=["12#", "3", "5"]).run()
    assert script.replies == [
        "200 result=12",
        "200 result=3",
        "200 result=5 (timeout)",
        "200 result= (timeout)",
    ]
    env = dict(script.env)
    assert env["agi_type"] == "PJSIP"
    assert env["agi_arg_1"] == "4008001234"
    assert env["agi_arg_2"] == "t1"
    assert list(env)[-2:] == ["agi_arg_1", "agi_arg_2"]
    assert len(result.commands) == 4


async def test_hangup_then_dead_channel(agi_server: StartAgi) -> None:
    script = Script(["ANSWER", "HANGUP", 'STREAM FILE foo ""', "GET VARIABLE X"])
    url = await agi_server(script)
    result = await FakeAgiClient(url, AgiCall(variables={"X": "1"})).run()
    assert script.replies == ["200 result=0", "200 result=1", DEAD_CHANNEL, "200 result=1 (1)"]
    assert script.extra_lines == ["HANGUP"]
    assert result.hung_up
    assert not result.caller_hung_up


async def test_caller_hangs_up_mid_session(agi_server: StartAgi) -> None:
    script = Script(["ANSWER", "EXEC Playback hello", "EXEC Set CCB_QUEUE=t1-sales"])
    url = await agi_server(script)
    result = await FakeAgiClient(url, hangup_after=1).run()
    assert script.extra_lines == ["HANGUP"]
    assert script.replies == ["200 result=0", DEAD_CHANNEL, DEAD_CHANNEL]
    assert result.caller_hung_up
    assert result.variables_set == {}
