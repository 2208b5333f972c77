"""Helpers for the fake-Asterisk tests: a raw AMI client built on the shared codec."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder, encode_message, parse_frame
from ccbridge.testing.fake_pbx import FakeAsterisk

CAPTURES = Path(__file__).parents[2] / "fixtures" / "asterisk-captures"

VOLATILE = {
    "Timestamp",
    "EventTV",
    "SessionTV",
    "SessionID",
    "LocalAddress",
    "RemoteAddress",
    "Uptime",
    "LastReload",
    "Challenge",
    "LastPause",
    "LoginTime",
    "LastCall",
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "Channel",
    "DestChannel",
    "BridgeUniqueid",
    "ActionID",
    "Output",
    "CallsTaken",
    "TalkTime",
    "Completed",
    "Abandoned",
    "Holdtime",
    "ServicelevelPerf",
    "ServicelevelPerf2",
    "ListItems",
    "Duration",
    "BridgeId",
}


def capture_frames(name: str) -> list[AmiMessage]:
    """Frames of a capture file (the banner line removed)."""
    raw = (CAPTURES / name).read_bytes()
    raw = raw.split(b"\r\n", 1)[1] if raw.startswith(b"Asterisk Call Manager") else raw
    return [parse_frame(f) for f in raw.split(b"\r\n\r\n") if f.strip()]


def shape(msg: AmiMessage, keep: set[str] | None = None) -> list[tuple[str, str]]:
    """Field names in order, values masked where they are ids or times."""
    keep = keep or set()
    return [(k, "*" if k in VOLATILE and k not in keep else v) for k, v in msg.fields]


def after_action(frames: list[AmiMessage], action_id: str) -> list[AmiMessage]:
    """The response to ``action_id`` and the frames up to the next response."""
    out: list[AmiMessage] = []
    started = False
    for f in frames:
        if f.response is not None:
            if started:
                break
            started = f.action_id == action_id
        if started:
            out.append(f)
    return out


class AmiTestClient:
    """A tiny AMI client for tests (deliberately not ccbridge's own client)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.pending: list[AmiMessage] = []
        self.banner = b""

    @classmethod
    async def connect(cls, port: int) -> AmiTestClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.banner = await asyncio.wait_for(reader.readline(), 2)
        return client

    async def send(self, **headers: str) -> None:
        self.writer.write(encode_message(list(headers.items())))
        await self.writer.drain()

    async def read(self, within: float = 2.0) -> AmiMessage:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), within)
            if not data:
                raise EOFError
            self.pending.extend(self.decoder.feed_messages(data))
        return self.pending.pop(0)

    async def until(
        self, pred: Callable[[AmiMessage], bool], within: float = 5.0
    ) -> list[AmiMessage]:
        out: list[AmiMessage] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while True:
            msg = await self.read(max(0.01, end - loop.time()))
            out.append(msg)
            if pred(msg):
                return out

    async def login(self, user: str = "ccbridge", secret: str = "secret") -> list[AmiMessage]:
        await self.send(Action="Login", ActionID="l1", Username=user, Secret=secret)
        return await self.until(lambda m: m.event == "SuccessfulAuth")

    async def drain_for(self, seconds: float) -> list[AmiMessage]:
        out: list[AmiMessage] = []
        try:
            while True:
                out.append(await self.read(seconds))
        except (TimeoutError, EOFError):
            return out

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    # The shipped channelvars: tests comparing with the captures (taken before manager.conf set
    # them) leave the ChanVariable headers out of the comparison.
    fake = FakeAsterisk(agi_url=None, seed=7, time_scale=0.001, auth_fail_delay=0.0)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def client(pbx: FakeAsterisk) -> AsyncIterator[AmiTestClient]:
    c = await AmiTestClient.connect(pbx.ami_port)
    await c.login()
    try:
        yield c
    finally:
        await c.close()
