"""A minimal Asterisk stand-in for FastAGI tests: send an environment, answer with a script."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CAPTURES = Path(__file__).parent.parent / "fixtures" / "asterisk-captures"


def capture_environment(scenario: str) -> bytes:
    """Return the AGI environment (with its blank line) Asterisk 22 sent in a capture."""
    data = (CAPTURES / scenario / "fastagi-from-asterisk.txt").read_bytes()
    return data[: data.index(b"\n\n") + 2]


def capture_replies(scenario: str) -> list[bytes]:
    """Return Asterisk's reply lines from a capture, one per command, newline included."""
    data = (CAPTURES / scenario / "fastagi-from-asterisk.txt").read_bytes()
    body = data[data.index(b"\n\n") + 2 :]
    return [line + b"\n" for line in body.split(b"\n") if line]


def capture_commands(scenario: str) -> list[str]:
    """Return the commands the FastAGI server sent in a capture."""
    data = (CAPTURES / scenario / "fastagi-to-asterisk.txt").read_text("utf-8")
    return data.splitlines()


def environment(script: str = "ivr-main", **extra: str) -> bytes:
    """Build an Asterisk 22 style environment for ``agi://127.0.0.1/<script>``."""
    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": "PJSIP/sipp-00000001",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1795433106.22",
        "agi_version": "22.10.1",
        "agi_callerid": "13800138000",
        "agi_calleridname": "Zhang San",
        "agi_dnid": "4000",
        "agi_context": "agi-test",
        "agi_extension": "ivr-main",
        "agi_priority": "3",
        "agi_accountcode": "",
    }
    env.update(extra)
    return "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"


@dataclass
class AgiTranscript:
    """What the server sent during one fake call, and how the call ended."""

    commands: list[str] = field(default_factory=list)
    closed_by_server: bool = False


async def play_asterisk(
    port: int,
    env: bytes,
    replies: Sequence[bytes | str],
    *,
    host: str = "127.0.0.1",
    deadline: float = 5.0,
    close_after_replies: bool = False,
) -> AgiTranscript:
    """Connect like Asterisk, send ``env``, answer each command with the next scripted reply.

    A reply may hold several lines (``HANGUP\\n511 …``). Without replies left the fake answers
    ``510 Invalid or unknown command``, or closes if ``close_after_replies``.
    """
    transcript = AgiTranscript()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(deadline):
            writer.write(env)
            await writer.drain()
            pending = list(replies)
            while True:
                line = await reader.readline()
                if not line:
                    transcript.closed_by_server = True
                    break
                transcript.commands.append(line.decode("utf-8").rstrip("\n"))
                if pending:
                    reply = pending.pop(0)
                    writer.write(reply.encode("utf-8") if isinstance(reply, str) else reply)
                elif close_after_replies:
                    break
                else:
                    writer.write(b"510 Invalid or unknown command\n")
                await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return transcript


class DyingAgiNode:
    """A FastAGI node that takes the call, starts its script and dies: its socket closes while
    the script runs, as when the process is killed (the kernel closes its connections).
    Asterisk then reports ``AGISTATUS=SUCCESS``: only the missing ``CCB_AGI_DONE`` tells."""

    def __init__(self) -> None:
        self.calls = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound loopback port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass  # the agi_* environment, up to its blank line
        self.calls += 1
        writer.write(b"ANSWER\n")
        await reader.readline()
        writer.write(b'STREAM FILE beep ""\n')
        await writer.drain()
        writer.transport.abort()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DyingAgiNode]:
        """Listen on a free loopback port while the block runs."""
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()
