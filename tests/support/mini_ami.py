"""A tiny scripted AMI server for the client's unit tests (the full fake PBX lives elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder, encode_message, parse_frame

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Handler = Callable[["MiniConn", AmiMessage], Awaitable[None] | None]


def frame(*pairs: tuple[str, str]) -> bytes:
    """Encode one AMI frame (CRLF, blank-line terminated)."""
    return encode_message(list(pairs))


@dataclass
class MiniConn:
    """One client connection as the server sees it."""

    writer: asyncio.StreamWriter
    logged_in: bool = False
    challenge: str = "161273028"

    def send(self, data: bytes) -> None:
        """Write raw bytes to this client."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def reply(self, msg: AmiMessage, *pairs: tuple[str, str], ok: bool = True) -> None:
        """Answer ``msg`` with a Success/Error response carrying its ActionID."""
        head = [("Response", "Success" if ok else "Error")]
        aid = msg.action_id
        if aid is not None:
            head.append(("ActionID", aid))
        self.send(frame(*head, *pairs))


@dataclass
class MiniAmi:
    """Scripted AMI server on 127.0.0.1 with just enough Asterisk behaviour for tests."""

    username: str = "ccbridge"
    secret: str = "ccbridge-secret"
    answer_pings: bool = True
    hold_actions: set[str] = field(default_factory=set)
    handlers: dict[str, Handler] = field(default_factory=dict)
    received: list[AmiMessage] = field(default_factory=list)
    conns: list[MiniConn] = field(default_factory=list)
    logins: int = 0
    failed_logins: int = 0
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    logged_in_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> MiniAmi:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every client."""
        self.drop_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def drop_all(self) -> None:
        """Close every client connection (like an Asterisk restart)."""
        for conn in list(self.conns):
            conn.writer.transport.abort()
        self.conns.clear()

    def push(self, data: bytes) -> None:
        """Send raw bytes (events) to every logged-in client."""
        for conn in self.conns:
            if conn.logged_in:
                conn.send(data)

    def actions(self, name: str) -> list[AmiMessage]:
        """Every received action named ``name``."""
        return [m for m in self.received if m.get("Action") == name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = MiniConn(writer)
        self.conns.append(conn)
        self.connections += 1
        writer.write(BANNER)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for raw in decoder.feed(data):
                    msg = parse_frame(raw)
                    self.received.append(msg)
                    result = self._handle(conn, msg)
                    if result is not None:
                        await result
        except (ConnectionError, OSError):
            pass
        finally:
            if conn in self.conns:
                self.conns.remove(conn)
            writer.transport.abort()

    def _handle(self, conn: MiniConn, msg: AmiMessage) -> Awaitable[None] | None:
        name = msg.get("Action") or ""
        if name in self.handlers:
            return self.handlers[name](conn, msg)
        if name in self.hold_actions:
            return None
        if name == "Challenge":
            conn.reply(msg, ("Challenge", conn.challenge))
        elif name == "Login":
            self._login(conn, msg)
        elif name == "Ping":
            if self.answer_pings:
                conn.reply(msg, ("Ping", "Pong"), ("Timestamp", "1795433102.084093"))
        elif name == "Logoff":
            conn.send(frame(("Response", "Goodbye"), ("ActionID", msg.action_id or "")))
            conn.writer.close()
        elif name == "QueueStatus":
            self._queue_status(conn, msg)
        elif name == "CoreShowChannels":
            conn.reply(msg, ("EventList", "start"), ("Message", "Channels will follow"))
            aid = msg.action_id or ""
            conn.send(
                frame(("Event", "CoreShowChannelsComplete"), ("ActionID", aid)).replace(
                    b"\r\n\r\n", b"\r\nEventList: Complete\r\nListItems: 0\r\n\r\n"
                )
            )
        elif name == "Originate":
            conn.reply(msg, ("Message", "Originate successfully queued"))
        else:
            conn.reply(msg, ("Message", "Success"))
        return None

    def _login(self, conn: MiniConn, msg: AmiMessage) -> None:
        if msg.get("AuthType") == "MD5":
            key = hashlib.md5((conn.challenge + self.secret).encode()).hexdigest()
            ok = msg.get("Key") == key
        else:
            ok = msg.get("Secret") == self.secret
        ok = ok and msg.get("Username") == self.username
        if not ok:
            self.failed_logins += 1
            conn.reply(msg, ("Message", "Authentication failed"), ok=False)
            return
        self.logins += 1
        conn.logged_in = True
        conn.reply(msg, ("Message", "Authentication accepted"))
        conn.send(
            frame(
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Uptime", "10"),
                ("LastReload", "10"),
                ("Status", "Fully Booted"),
            )
        )
        self.logged_in_event.set()

    def _queue_status(self, conn: MiniConn, msg: AmiMessage) -> None:
        aid = msg.action_id or ""
        conn.reply(msg, ("EventList", "start"), ("Message", "Queue status will follow"))
        conn.send(frame(("Event", "QueueParams"), ("Queue", "sales"), ("ActionID", aid)))
        conn.send(
            frame(
                ("Event", "QueueMember"),
                ("Queue", "sales"),
                ("Name", "T002 李娜"),
                ("Location", "Local/2002@agents"),
                ("ActionID", aid),
            )
        )
        conn.send(
            frame(
                ("Event", "QueueStatusComplete"),
                ("ActionID", aid),
                ("EventList", "Complete"),
                ("ListItems", "2"),
            )
        )
