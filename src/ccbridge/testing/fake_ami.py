"""FakeAmiServer: a TCP server speaking Asterisk 22's AMI byte for byte, backed by PbxModel.

Lets ccbridge and integrators' tests run against real AMI framing, login, list actions,
events and failure modes (restart, RST, slow reader) without an Asterisk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder, encode_message
from ccbridge.testing import ami_frames as af
from ccbridge.testing.fake_call_control import FakeCallControl
from ccbridge.testing.fake_mixmonitor import MixMonitorTape
from ccbridge.testing.pbx_model import (
    DEVICE_INUSE,
    STATE_RINGING,
    STATE_UP,
    Channel,
    MemberExistsError,
    MemberNotDynamicError,
    NoSuchMemberError,
    NoSuchQueueError,
    PbxModel,
    Queue,
    QueueMember,
)
from ccbridge.testing.pbx_records import PbxRecordFiles

log = structlog.get_logger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ASTERISK_VERSION = "22.10.1"
VERSION_LINE = (
    f"Asterisk {ASTERISK_VERSION} built by root @ vm on a x86_64 running Linux on "
    "2026-11-23 11:18:38 UTC"
)
UNAUTH_ALLOWED = frozenset({"login", "logoff", "challenge"})

Fields = af.Fields


class _Request:
    """An incoming action with case-insensitive header lookup, as astman_get_header does."""

    def __init__(self, msg: AmiMessage) -> None:
        self.msg = msg
        self._h: dict[str, str] = {}
        for k, v in msg.fields:
            self._h.setdefault(k.lower(), v)
        self.action = self._h.get("action", "")
        self.action_id = self._h.get("actionid")

    def get(self, key: str, default: str = "") -> str:
        """First value of a header, ``default`` when absent."""
        return self._h.get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeated header."""
        return [v for k, v in self.msg.fields if k.lower() == key.lower()]


def _truthy(value: str) -> bool:
    """Asterisk's ast_true()."""
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def parse_callerid(value: str) -> tuple[str, str]:
    """Split ``"Name" <num>`` into (num, name) like ast_callerid_parse."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].partition("<")
        return num.strip(), name.strip().strip('"')
    return value, ""


@dataclass(eq=False)
class AmiSession:
    """One client connection: auth state plus an ordered outbox drained under writetimeout."""

    server: FakeAmiServer
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    session_id: str
    opened_at: float
    authenticated: bool = False
    username: str = ""
    challenge: str | None = None
    events_on: bool = True
    closed: bool = False
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def is_open(self) -> bool:
        """Whether the session still accepts frames."""
        return not self.closed

    def send(self, frame: bytes) -> None:
        """Queue bytes for this client, preserving order."""
        if not self.closed:
            self.outbox.put_nowait(frame)

    def respond(self, req: _Request, pairs: Fields) -> None:
        """Send a response: ``Response`` first, then ``ActionID`` when the action had one."""
        head, rest = pairs[0], pairs[1:]
        out = [head]
        if req.action_id is not None:
            out.append(("ActionID", req.action_id))
        out.extend(rest)
        self.send(encode_message(out))

    def ok(self, req: _Request, message: str | None = None) -> None:
        """``Response: Success`` with an optional ``Message``."""
        pairs: Fields = [("Response", "Success")]
        if message is not None:
            pairs.append(("Message", message))
        self.respond(req, pairs)

    def error(self, req: _Request, message: str) -> None:
        """``Response: Error`` with Asterisk's message text."""
        self.respond(req, [("Response", "Error"), ("Message", message)])

    def close(self) -> None:
        """Flush what is queued, then close (FIN)."""
        if not self.closed:
            self.outbox.put_nowait(None)
            self.closed = True

    def abort(self) -> None:
        """Drop the connection at once with a TCP RST."""
        self.closed = True
        transport = self.writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def addr(self, which: str) -> str:
        """``IPV4/TCP/127.0.0.1/5038`` style address of one end."""
        info = self.writer.get_extra_info(which)
        host, port = (info[0], info[1]) if info else ("0.0.0.0", 0)  # noqa: S104
        return f"IPV4/TCP/{host}/{port}"


Handler = Callable[[AmiSession, _Request], Awaitable[None]]
SPOOL_MONITOR = "/var/spool/asterisk/monitor"
"""Where MixMonitor puts a relative file name (``astspooldir``/monitor)."""


class FakeAmiServer:
    """Asterisk 22 AMI over TCP: login, actions, broadcast events and fault injection."""

    def __init__(
        self,
        model: PbxModel | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        write_timeout: float = 0.1,
        auth_timeout: float = 30.0,
        auth_fail_delay: float = 1.0,
        time_scale: float = 1.0,
        socket_sndbuf: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock
        self.tapes: dict[str, MixMonitorTape] = {}
        """Recordings in progress by channel name (written when they stop)."""
        self.recording_errors: list[str] = []
        self.records: PbxRecordFiles | None = None
        """The queue log and CDR this PBX writes (``None``: it keeps no records)."""
        self.model = model if model is not None else PbxModel(clock)
        self.host = host
        self._port = port
        self.users = dict(users or {"ccbridge": "secret"})
        self.write_timeout = write_timeout
        self.auth_timeout = auth_timeout
        self.auth_fail_delay = auth_fail_delay
        self.time_scale = time_scale
        self.socket_sndbuf = socket_sndbuf
        self.sessions: list[AmiSession] = []
        self.dropped_slow = 0
        self.global_vars: dict[str, str] = {}
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._bg: set[asyncio.Task[None]] = set()
        self.call_control = FakeCallControl(self)
        self.actions: list[AmiMessage] = []
        """Every action a logged-in client sent, in order (tests check them field by field)."""
        self.actions_by: list[tuple[str, AmiMessage]] = []
        """The same actions with the AMI user that sent each (several nodes, one PBX)."""
        self.originate_hook: Callable[[Channel, Channel | None], bool] | None = None
        """Called with (outbound, peer) after Originate; return True to take over the call."""
        self._handlers: dict[str, Handler] = {
            "login": self._login,
            "challenge": self._challenge,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "command": self._command,
            "coresettings": self._coresettings,
            "queueadd": self._queue_add,
            "queueremove": self._queue_remove,
            "queuepause": self._queue_pause,
            "queuepenalty": self._queue_penalty,
            "queuereload": self._queue_reload,
            "queuestatus": self._queue_status,
            "queuesummary": self._queue_summary,
            "coreshowchannels": self._core_show_channels,
            "originate": self._originate,
            "redirect": self._redirect,
            "hangup": self._hangup,
            "mixmonitor": self._mixmonitor,
            "stopmixmonitor": self._stop_mixmonitor,
            "mixmonitormute": self._mixmonitor_mute,
            "blindtransfer": self._blind_transfer,
            "bridge": self.call_control.bridge,
            "muteaudio": self.call_control.mute_audio,
            "atxfer": self.call_control.atxfer,
            "cancelatxfer": self.call_control.cancel_atxfer,
            "setvar": self._setvar,
            "getvar": self._getvar,
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return self._port

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        sock = self._server.sockets[0]
        self._port = sock.getsockname()[1]
        log.info("fake_ami.listening", host=self.host, port=self._port)

    async def stop(self) -> None:
        """Stop listening and drop every session."""
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.abort()
        for task in list(self._bg):
            task.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        for s in list(self.sessions):
            for task in s.tasks:
                task.cancel()
            await asyncio.gather(*s.tasks, return_exceptions=True)
        self.sessions.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run a background coroutine owned by the server (cancelled on stop)."""

        async def _run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(_run())
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def sleep(self, seconds: float) -> None:
        """Sleep PBX seconds, scaled by ``time_scale``."""
        await asyncio.sleep(max(0.0, seconds * self.time_scale))

    # ----------------------------------------------------------------- faults

    async def shutdown(self, restart: bool = False) -> None:
        """Send ``Shutdown`` (as ``core restart now`` does) and close every session."""
        self.emit(
            "Shutdown",
            [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
            af.PRIV_SYSTEM,
        )
        sessions = list(self.sessions)
        for s in sessions:
            s.close()
        await asyncio.gather(*(t for s in sessions for t in s.tasks), return_exceptions=True)

    async def restart(self, lose_members: bool = True) -> None:
        """Shutdown, then come back like a restarted PBX (dynamic members gone by default)."""
        await self.shutdown(restart=True)
        for task in list(self._bg):
            task.cancel()
        self.model.restart(lose_members=lose_members)
        log.info("fake_ami.restarted", lose_members=lose_members)

    def drop_all(self) -> None:
        """Abort every client connection with a TCP RST."""
        for s in list(self.sessions):
            s.abort()

    def remove_member_behind_back(self, queue: str, interface: str) -> None:
        """Remove a member as the CLI would (``queue remove member``), emitting the events."""
        q = self.model.queue(queue)
        member = q.members.pop(interface)
        self._member_removed_events(q, member)

    def pause_member_behind_back(
        self, queue: str | None, interface: str, paused: bool = True, reason: str = ""
    ) -> None:
        """Pause/unpause a member outside ccbridge (phone feature code), emitting the events."""
        for q, m in self.model.pause_member(interface, paused, reason, queue):
            self._pause_events(q, m)

    # ----------------------------------------------------------------- events

    def emit(self, event: str, fields: Fields, privilege: str = af.PRIV_CALL) -> None:
        """Broadcast an event with ``Privilege`` and ``Timestamp`` to every logged-in session."""
        frame = encode_message(
            [
                ("Event", event),
                ("Privilege", privilege),
                ("Timestamp", af.timestamp(self.clock())),
                *fields,
            ]
        )
        for s in self.sessions:
            if s.authenticated and s.events_on:
                s.send(frame)

    def emit_channel(self, event: str, ch: Channel, extra: Fields | None = None) -> None:
        """Emit a channel event (snapshot block plus ``extra``)."""
        priv = af.PRIV_DIALPLAN if event in {"VarSet", "Newexten"} else af.PRIV_CALL
        if event.startswith(("Queue", "Agent")):
            priv = af.PRIV_AGENT
        self.emit(event, [*af.channel_fields(ch), *(extra or [])], priv)

    def device_state(self, device: str, state: str) -> None:
        """Emit ``DeviceStateChange`` when a device's state really changes."""
        if self.model.set_device(device, state):
            self.emit("DeviceStateChange", [("Device", device), ("State", state)])

    def queue_avail_state(self, q: Queue) -> None:
        """Track ``Queue:<name>_avail`` (in use when no member can take a call)."""
        free = any(not m.paused and m.status == 1 for m in q.members.values())
        self.device_state(f"Queue:{q.name}_avail", "NOT_INUSE" if free else "INUSE")

    def member_status(self, q: Queue, m: QueueMember) -> None:
        """Emit ``QueueMemberStatus`` and the queue availability change."""
        self.emit("QueueMemberStatus", af.member_event_fields(q, m), af.PRIV_AGENT)
        self.queue_avail_state(q)

    def set_var(self, ch: Channel, name: str, value: str, always: bool = True) -> None:
        """Set a channel variable and emit ``VarSet``."""
        ch.variables[name] = value
        if always:
            self.emit_channel("VarSet", ch, [("Variable", name), ("Value", value)])

    def hangup_channel(self, ch: Channel, cause: int = 16, request: bool = True) -> None:
        """Emit ``HangupRequest``/``Hangup`` and forget the channel."""
        if self.model.find_channel(ch.name) is None:
            return
        if request:
            self.emit_channel("HangupRequest", ch, [("Cause", str(cause))])
        text = {
            16: "Normal Clearing",
            0: "Unknown",
            17: "User busy",
            19: "No user responding",
            26: "Answered elsewhere",
            21: "Call Rejected",
        }.get(cause, "Normal Clearing")
        self.model.drop_channel(ch.name)
        self._finish_tape(ch.name)
        self.emit_channel("Hangup", ch, [("Cause", str(cause)), ("Cause-txt", text)])

    def _finish_tape(self, channel: str) -> None:
        """Write the channel's recording file, as Asterisk does when MixMonitor ends."""
        tape = self.tapes.pop(channel, None)
        if tape is not None:
            try:
                tape.write(self.clock())
            except OSError as exc:  # an unwritable path: the real PBX logs and goes on too
                self.recording_errors.append(f"{tape.path}: {exc}")

    def _pause_events(self, q: Queue, m: QueueMember) -> None:
        self.device_state(
            f"Queue:{q.name}_pause_{m.interface}", "INUSE" if m.paused else "NOT_INUSE"
        )
        self.queue_avail_state(q)
        self.emit("QueueMemberPause", af.member_event_fields(q, m), af.PRIV_AGENT)

    def _member_removed_events(self, q: Queue, m: QueueMember) -> None:
        self.emit("QueueMemberRemoved", af.member_event_fields(q, m), af.PRIV_AGENT)
        if m.paused:
            self.device_state(f"Queue:{q.name}_pause_{m.interface}", "NOT_INUSE")
        self.queue_avail_state(q)

    # ----------------------------------------------------------------- sessions

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and self.socket_sndbuf:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_sndbuf)
        writer.transport.set_write_buffer_limits(high=16384)
        session = AmiSession(
            server=self,
            reader=reader,
            writer=writer,
            session_id=f"0x7f{self._rng.getrandbits(40):010x}",
            opened_at=self.clock(),
        )
        self.sessions.append(session)
        session.send(BANNER)
        loop = asyncio.get_running_loop()
        session.tasks = [
            loop.create_task(self._writer_loop(session)),
            loop.create_task(self._auth_watchdog(session)),
        ]
        try:
            await self._reader_loop(session)
        finally:
            session.close()
            await asyncio.gather(session.tasks[0], return_exceptions=True)
            session.tasks[1].cancel()
            if session in self.sessions:
                self.sessions.remove(session)

    async def _reader_loop(self, session: AmiSession) -> None:
        decoder = FrameDecoder()
        while not session.closed:
            try:
                data = await session.reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            for msg in decoder.feed_messages(data):
                if not session.is_open():
                    return
                await self._dispatch(session, _Request(msg))

    async def _writer_loop(self, session: AmiSession) -> None:
        writer = session.writer
        try:
            while True:
                item = await session.outbox.get()
                chunks: list[bytes] = []
                done = item is None
                if item is not None:
                    chunks.append(item)
                while not done and not session.outbox.empty():
                    nxt = session.outbox.get_nowait()
                    if nxt is None:
                        done = True
                    else:
                        chunks.append(nxt)
                if chunks:
                    writer.write(b"".join(chunks))
                    try:
                        await asyncio.wait_for(writer.drain(), self.write_timeout)
                    except TimeoutError:
                        self.dropped_slow += 1
                        log.warning("fake_ami.writetimeout", session=session.session_id)
                        session.abort()
                        return
                if done:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
                    return
        except (ConnectionError, OSError):
            session.abort()

    async def _auth_watchdog(self, session: AmiSession) -> None:
        await asyncio.sleep(self.auth_timeout)
        if not session.authenticated:
            log.info("fake_ami.authtimeout", session=session.session_id)
            session.close()
            session.writer.transport.close()

    async def _dispatch(self, session: AmiSession, req: _Request) -> None:
        action = req.action.lower()
        if not action:
            session.error(req, "Missing action in request")
            return
        if not session.authenticated and action not in UNAUTH_ALLOWED:
            session.error(req, "Permission denied")
            return
        if session.authenticated:
            self.actions.append(req.msg)
            self.actions_by.append((session.username, req.msg))
        handler = self._handlers.get(action)
        if handler is None:
            session.error(
                req,
                f"Invalid/unknown command: {req.action}. "
                "Use Action: ListCommands to show available commands.",
            )
            self._security_event(
                session, "RequestBadFormat", "Error", [("RequestType", f"Action: {req.action}")]
            )
            return
        await handler(session, req)

    def _security_event(self, session: AmiSession, name: str, severity: str, extra: Fields) -> None:
        now = self.clock()
        self.emit(
            name,
            [
                ("EventTV", af.event_tv(now)),
                ("Severity", severity),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("SessionID", session.session_id),
                ("LocalAddress", session.addr("sockname")),
                ("RemoteAddress", session.addr("peername")),
                *extra,
                ("SessionTV", af.event_tv(session.opened_at)),
                ("AccountID", session.username),
            ],
            af.PRIV_SECURITY,
        )

    # ----------------------------------------------------------------- auth actions

    async def _challenge(self, session: AmiSession, req: _Request) -> None:
        if req.get("AuthType").lower() != "md5":
            session.error(req, "Must specify AuthType")
            return
        if session.challenge is None:
            session.challenge = str(self._rng.randint(100000000, 999999999))
        session.respond(req, [("Response", "Success"), ("Challenge", session.challenge)])

    def _check_login(self, session: AmiSession, req: _Request) -> bool:
        user = req.get("Username")
        secret = self.users.get(user)
        if secret is None:
            return False
        if req.get("AuthType").lower() == "md5":
            if session.challenge is None:
                return False
            expected = hashlib.md5((session.challenge + secret).encode(), usedforsecurity=False)
            return req.get("Key").lower() == expected.hexdigest()
        return req.get("Secret") == secret

    async def _login(self, session: AmiSession, req: _Request) -> None:
        if session.authenticated:
            session.ok(req, "Already authenticated")
            return
        if not self._check_login(session, req):
            log.info("fake_ami.login_failed", user=req.get("Username"))
            if self.auth_fail_delay:
                await asyncio.sleep(self.auth_fail_delay)
            session.error(req, "Authentication failed")
            session.close()
            return
        session.authenticated = True
        session.username = req.get("Username")
        events = req.get("Events")
        if events and events.lower() == "off":
            session.events_on = False
        session.ok(req, "Authentication accepted")
        uptime = str(self.model.uptime())
        session.send(
            encode_message(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", af.PRIV_SYSTEM),
                    ("Uptime", uptime),
                    ("LastReload", uptime),
                    ("Status", "Fully Booted"),
                ]
            )
        )
        now = self.clock()
        self.emit(
            "SuccessfulAuth",
            [
                ("EventTV", af.event_tv(now)),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", session.username),
                ("SessionID", session.session_id),
                ("LocalAddress", session.addr("sockname")),
                ("RemoteAddress", session.addr("peername")),
                ("UsingPassword", "0"),
                ("SessionTV", af.event_tv(session.opened_at)),
            ],
            af.PRIV_SECURITY,
        )
        log.info("fake_ami.login", user=session.username)

    async def _logoff(self, session: AmiSession, req: _Request) -> None:
        session.respond(req, [("Response", "Goodbye"), ("Message", "Thanks for all the fish.")])
        session.close()

    # ----------------------------------------------------------------- simple actions

    async def _ping(self, session: AmiSession, req: _Request) -> None:
        session.respond(
            req,
            [("Response", "Success"), ("Ping", "Pong"), ("Timestamp", af.timestamp(self.clock()))],
        )

    async def _events(self, session: AmiSession, req: _Request) -> None:
        mask = req.get("EventMask", "on").lower()
        session.events_on = mask not in {"off", "none", "0", "no", "false"}
        session.respond(
            req, [("Response", "Success"), ("Events", "On" if session.events_on else "Off")]
        )

    async def _command(self, session: AmiSession, req: _Request) -> None:
        cmd = " ".join(req.get("Command").split())
        if cmd == "core show version":
            session.respond(
                req,
                [
                    ("Response", "Success"),
                    ("Message", "Command output follows"),
                    ("Output", VERSION_LINE),
                ],
            )
            return
        first = cmd.split(" ", 1)[0]
        session.respond(
            req,
            [
                ("Response", "Error"),
                ("Message", "Command output follows"),
                (
                    "Output",
                    f"No such command '{cmd}' (type 'core show help {first}' "
                    "for other possible commands)",
                ),
            ],
        )

    async def _coresettings(self, session: AmiSession, req: _Request) -> None:
        session.respond(
            req,
            [
                ("Response", "Success"),
                ("AMIversion", "11.0.0"),
                ("AsteriskVersion", ASTERISK_VERSION),
                ("SystemName", self.model.system_name),
                ("CoreMaxCalls", "0"),
                ("CoreMaxLoadAvg", "0.000000"),
                ("CoreRunUser", ""),
                ("CoreRunGroup", ""),
                ("CoreMaxFilehandles", "0"),
                ("CoreRealTimeEnabled", "No"),
                ("CoreCDRenabled", "Yes"),
                ("CoreHTTPenabled", "No"),
                ("SoundsSearchCustomDir", "No"),
            ],
        )

    # ----------------------------------------------------------------- queue actions

    async def _queue_add(self, session: AmiSession, req: _Request) -> None:
        queue, iface = req.get("Queue"), req.get("Interface")
        if not queue:
            session.error(req, "'Queue' not specified.")
            return
        if not iface:
            session.error(req, "'Interface' not specified.")
            return
        paused = _truthy(req.get("Paused"))
        try:
            penalty = int(req.get("Penalty") or 0)
        except ValueError:
            penalty = 0
        try:
            member = self.model.add_member(
                queue,
                iface,
                member_name=req.get("MemberName"),
                state_interface=req.get("StateInterface"),
                penalty=penalty,
                paused=paused,
                reason=req.get("Reason"),
            )
        except NoSuchQueueError:
            session.error(req, "Unable to add interface to queue: No such queue")
            return
        except MemberExistsError:
            session.error(req, "Unable to add interface: Already there")
            return
        session.ok(req, "Added interface to queue")
        q = self.model.queue(queue)
        if paused:
            self.device_state(f"Queue:{queue}_pause_{iface}", "INUSE")
        self.emit("QueueMemberAdded", af.member_event_fields(q, member), af.PRIV_AGENT)
        self.queue_avail_state(q)

    async def _queue_remove(self, session: AmiSession, req: _Request) -> None:
        queue, iface = req.get("Queue"), req.get("Interface")
        if not queue or not iface:
            session.error(req, "Need 'Queue' and 'Interface' parameters.")
            return
        try:
            member = self.model.remove_member(queue, iface)
        except NoSuchQueueError:
            session.error(req, "Unable to remove interface from queue: No such queue")
            return
        except NoSuchMemberError:
            session.error(req, "Unable to remove interface: Not there")
            return
        except MemberNotDynamicError:
            session.error(req, "Member not dynamic")
            return
        session.ok(req, "Removed interface from queue")
        self._member_removed_events(self.model.queue(queue), member)

    async def _queue_penalty(self, session: AmiSession, req: _Request) -> None:
        # Not in the captures: texts follow app_queue.c's manager_queue_member_penalty.
        iface, penalty_s, queue = req.get("Interface"), req.get("Penalty"), req.get("Queue")
        if not iface or not penalty_s or not penalty_s.lstrip("-").isdigit():
            session.error(req, "Need 'Interface' and 'Penalty' parameters.")
            return
        hits = [(q, m) for q, m in self.model.members_of(iface) if queue is None or q.name == queue]
        if not hits:
            session.error(req, "Invalid interface, queuename or penalty")
            return
        for q, m in hits:
            m.penalty = int(penalty_s)
            self.emit(
                "QueueMemberPenalty",
                [("Queue", q.name), ("Interface", iface), ("Penalty", penalty_s)],
                af.PRIV_AGENT,
            )
        session.ok(req, "Interface penalty set successfully")

    async def _queue_reload(self, session: AmiSession, req: _Request) -> None:
        # Not in the captures: the model re-reads its queues.conf (when it has one), as
        # app_queue does; app_queue answers "Queue reloaded successfully" either way.
        self.model.reload_config()
        session.ok(req, "Queue reloaded successfully")

    async def _queue_pause(self, session: AmiSession, req: _Request) -> None:
        iface, paused_s = req.get("Interface"), req.get("Paused")
        if not iface or not paused_s:
            session.error(req, "Need 'Interface' and 'Paused' headers.")
            return
        paused = _truthy(paused_s)
        try:
            changed = self.model.pause_member(
                iface, paused, req.get("Reason"), req.get("Queue") or None
            )
        except (NoSuchQueueError, NoSuchMemberError):
            session.error(req, "Interface not found")
            return
        session.ok(
            req, "Interface paused successfully" if paused else "Interface unpaused successfully"
        )
        for q, m in changed:
            self._pause_events(q, m)

    def _list_start(self, session: AmiSession, req: _Request, message: str) -> None:
        session.respond(
            req, [("Response", "Success"), ("EventList", "start"), ("Message", message)]
        )

    def _list_item(
        self, session: AmiSession, req: _Request, pairs: Fields, id_first: bool = False
    ) -> None:
        if req.action_id is None:
            session.send(encode_message(pairs))
        elif id_first:
            session.send(encode_message([pairs[0], ("ActionID", req.action_id), *pairs[1:]]))
        else:
            session.send(encode_message([*pairs, ("ActionID", req.action_id)]))

    def _list_complete(self, session: AmiSession, req: _Request, event: str, count: int) -> None:
        pairs: Fields = [("Event", event)]
        if req.action_id is not None:
            pairs.append(("ActionID", req.action_id))
        pairs += [("EventList", "Complete"), ("ListItems", str(count))]
        session.send(encode_message(pairs))

    async def _queue_status(self, session: AmiSession, req: _Request) -> None:
        qname, member_filter = req.get("Queue"), req.get("Member")
        self._list_start(session, req, "Queue status will follow")
        now = self.clock()
        count = 0
        for q in self.model.queues.values():
            if qname and q.name != qname:
                continue
            self._list_item(session, req, af.queue_params_item(q))
            count += 1
            for m in q.members.values():
                if member_filter and member_filter not in (m.interface, m.member_name):
                    continue
                self._list_item(session, req, af.queue_member_item(q, m))
                count += 1
            for pos, entry in enumerate(q.entries, start=1):
                ch = self.model.find_channel(entry.channel)
                self._list_item(session, req, af.queue_entry_item(q, pos, entry, ch, now))
                count += 1
        self._list_complete(session, req, "QueueStatusComplete", count)

    async def _queue_summary(self, session: AmiSession, req: _Request) -> None:
        qname = req.get("Queue")
        self._list_start(session, req, "Queue summary will follow")
        count = 0
        now = self.clock()
        for q in self.model.queues.values():
            if qname and q.name != qname:
                continue
            self._list_item(session, req, af.queue_summary_item(q, now))
            count += 1
        self._list_complete(session, req, "QueueSummaryComplete", count)

    async def _core_show_channels(self, session: AmiSession, req: _Request) -> None:
        self._list_start(session, req, "Channels will follow")
        now = self.clock()
        chans = list(self.model.channels.values())
        for ch in chans:
            self._list_item(
                session,
                req,
                [
                    ("Event", "CoreShowChannel"),
                    *af.channel_fields(ch),
                    ("Application", ch.application),
                    ("ApplicationData", ch.app_data),
                    ("Duration", af.duration(now - ch.created_at)),
                    ("BridgeId", ch.bridge_id),
                ],
                id_first=True,
            )
        self._list_complete(session, req, "CoreShowChannelsComplete", len(chans))

    # ----------------------------------------------------------------- channel actions

    def _channel(
        self, session: AmiSession, req: _Request, header: str = "Channel"
    ) -> Channel | None:
        name = req.get(header)
        if not name:
            session.error(req, "No channel specified")
            return None
        ch = self.model.find_channel(name)
        if ch is None:
            session.error(req, "No such channel")
        return ch

    async def _originate(self, session: AmiSession, req: _Request) -> None:
        target = req.get("Channel")
        if not target:
            session.error(req, "Channel not specified")
            return
        if "/" not in target:
            session.error(req, "Invalid channel")
            return
        session.ok(req, "Originate successfully queued")
        self.spawn(self._run_originate(req))

    async def _run_originate(self, req: _Request) -> None:
        num, name = parse_callerid(req.get("CallerID"))
        variables: list[tuple[str, str]] = []
        for raw in req.get_all("Variable"):
            for item in raw.split(","):
                k, sep, v = item.partition("=")
                if sep:
                    variables.append((k.strip(), v))
        target = req.get("Channel")
        tech, _, rest = target.partition("/")
        app, data = req.get("Application"), req.get("Data")
        peer: Channel | None = None
        if tech.lower() == "local":
            exten, _, ctx = rest.partition("@")
            one, peer = self.model.local_pair(exten, ctx or "default")
            chans = [one, peer]
        else:
            one = self.model.new_channel(
                f"{tech}/{rest}-{self.model.ids.suffix(tech)}", context="", exten="s"
            )
            chans = [one]
        channel_id = req.get("ChannelId")
        if channel_id:  # Asterisk takes it as the first channel's Uniqueid (and Linkedid)
            for ch in chans:
                ch.linkedid = channel_id
            one.uniqueid = channel_id
        for ch in chans:
            ch.caller_num = num or ch.caller_num
            ch.caller_name = name or ch.caller_name
            ch.connected_num, ch.connected_name = ch.caller_num, ch.caller_name
        self.emit_channel("Newchannel", one)
        if peer is not None:
            self.emit_channel("Newchannel", peer)
        for ch in chans:
            for k, v in variables:
                self.set_var(ch, k, v)
        self.emit("DialBegin", [*af.channel_fields(one, "Dest"), ("DialString", rest)])
        await self.sleep(0.05)
        for ch in reversed(chans):
            ch.state = STATE_UP
            ch.priority = 2 if ch is peer else ch.priority
            self.emit_channel("Newstate", ch)
        self.emit("DialEnd", [*af.channel_fields(one, "Dest"), ("DialStatus", "ANSWER")])
        response: Fields = []
        if req.action_id is not None:
            response.append(("ActionID", req.action_id))
        response += [("Response", "Success"), ("Channel", one.name)]
        if app:
            response += [("Application", app), ("Data", data)]
            one.application, one.app_data = app, data
        else:
            response += [("Context", req.get("Context")), ("Exten", req.get("Exten"))]
        response += [
            ("Reason", "4"),
            ("Uniqueid", one.uniqueid),
            ("CallerIDNum", one.caller_num),
            ("CallerIDName", one.caller_name),
        ]
        self.emit("OriginateResponse", response)
        if self.originate_hook is not None and self.originate_hook(one, peer):
            return
        if app and app.lower() == "chanspy":
            await self.call_control.chanspy(one, data or "")
        elif not app and req.get("Context") and req.get("Exten"):
            far = self.call_control.originate_into_dialplan(
                one, req.get("Context"), req.get("Exten")
            )
            if far is not None:
                chans.append(far)
            await self.sleep(600.0)
        else:
            wait = (
                float(data)
                if app.lower() == "wait" and data.replace(".", "", 1).isdigit()
                else 10.0
            )
            await self.sleep(wait)
        for ch in chans:
            self.hangup_channel(ch)

    async def _redirect(self, session: AmiSession, req: _Request) -> None:
        if await self.call_control.redirect(session, req):
            return
        ch = self._channel(session, req)
        if ch is None:
            return
        exten, ctx = req.get("Exten"), req.get("Context")
        if not exten or not ctx:
            session.error(req, "Redirect failed")
            return
        session.ok(req, "Redirect successful")
        for q in self.model.queues.values():
            pos = q.position_of(ch.uniqueid)
            if pos:
                entry = q.entries.pop(pos - 1)
                q.abandoned += 1
                hold = int(self.clock() - entry.joined_at)
                self.emit_channel("MusicOnHoldStop", ch)
                ch.context, ch.exten, ch.priority = ctx, exten, 1
                self.emit_channel(
                    "QueueCallerAbandon",
                    ch,
                    [
                        ("Queue", q.name),
                        ("Position", str(pos)),
                        ("OriginalPosition", str(entry.original_position)),
                        ("HoldTime", str(hold)),
                    ],
                )
                self.emit_channel(
                    "QueueCallerLeave",
                    ch,
                    [
                        ("Queue", q.name),
                        ("Position", str(pos)),
                        ("Count", str(len(q.entries))),
                    ],
                )
        ch.context, ch.exten = ctx, exten
        ch.priority = int(req.get("Priority") or 1)
        ch.variables["__REDIRECTED"] = f"{ctx},{exten},{ch.priority}"

    async def _hangup(self, session: AmiSession, req: _Request) -> None:
        ch = self._channel(session, req)
        if ch is None:
            return
        try:
            cause = int(req.get("Cause") or 16)
        except ValueError:
            cause = 16
        session.ok(req, "Channel Hungup")
        self.call_control.complete_on_hangup(ch)
        self.call_control.hang_up(ch, cause)

    async def _mixmonitor(self, session: AmiSession, req: _Request) -> None:
        ch = self._channel(session, req)
        if ch is None:
            return
        filename = req.get("File") or f"{ch.uniqueid}.wav"
        session.respond(req, [("Response", "Success")])
        self.start_mixmonitor(ch, filename)

    def start_mixmonitor(self, ch: Channel, filename: str) -> None:
        """MixMonitor on *ch* (the AMI action, or app_queue's own on an answer): the file's
        tape starts, ``MIXMONITOR_FILENAME`` is set and ``MixMonitorStart`` emitted."""
        ch.recording_file = filename
        ch.recording_muted = False
        path = filename if filename.startswith("/") else f"{SPOOL_MONITOR}/{filename}"
        tape = MixMonitorTape(path, self.clock())
        try:
            tape.begin()
        except OSError as exc:  # an unwritable path: the real PBX logs and goes on too
            self.recording_errors.append(f"{path}: {exc}")
        self.tapes[ch.name] = tape
        self.set_var(ch, "MIXMONITOR_FILENAME", path)
        self.emit_channel("MixMonitorStart", ch)

    async def _stop_mixmonitor(self, session: AmiSession, req: _Request) -> None:
        ch = self._channel(session, req)
        if ch is None:
            return
        if ch.recording_file is None:
            session.error(req, "Could not stop monitoring channel")
            return
        session.respond(req, [("Response", "Success")])
        self.stop_mixmonitor(ch)

    def stop_mixmonitor(self, ch: Channel) -> None:
        """StopMixMonitor (the action or the dialplan app): the file is written and
        ``MixMonitorStop`` emitted; ``MIXMONITOR_FILENAME`` stays set, as in Asterisk."""
        if ch.recording_file is None:
            return
        ch.recording_file = None
        self._finish_tape(ch.name)
        self.emit_channel("MixMonitorStop", ch)

    async def _mixmonitor_mute(self, session: AmiSession, req: _Request) -> None:
        ch = self._channel(session, req)
        if ch is None:
            return
        direction = req.get("Direction") or "both"
        state = "1" if _truthy(req.get("State")) else "0"
        ch.recording_muted = state == "1"
        if ch.name in self.tapes:
            self.tapes[ch.name].mute(self.clock(), ch.recording_muted)
        session.respond(req, [("Response", "Success")])
        self.emit_channel("MixMonitorMute", ch, [("Direction", direction), ("State", state)])

    async def _blind_transfer(self, session: AmiSession, req: _Request) -> None:
        ch = self._channel(session, req)
        if ch is None:
            return
        exten, ctx = req.get("Exten"), req.get("Context") or ch.context
        if not exten:
            session.error(req, "No extension specified")
            return
        peer = next(iter(self.model.bridged_with(ch)), None)
        if peer is None:
            session.error(req, "Transfer failed")
            return
        session.ok(req, "Transfer succeeded")
        self.set_var(ch, "BLINDTRANSFER", peer.name)
        self.set_var(peer, "BLINDTRANSFER", ch.name)
        peer.exten, peer.context, peer.priority = exten, ctx, 1
        ch.variables["__TRANSFERRED"] = "1"
        fields: Fields = [("Result", "Success")]
        fields += af.channel_fields(ch, "Transferer")
        fields += af.channel_fields(peer, "Transferee")
        fields += af.bridge_fields(ch.bridge_id, 2)
        fields += [("IsExternal", "Yes"), ("Context", ctx), ("Extension", exten)]
        self.emit("BlindTransfer", fields)
        self.call_control.after_blind_transfer(ch, peer, ctx, exten)

    async def _setvar(self, session: AmiSession, req: _Request) -> None:
        var = req.get("Variable")
        if not var:
            session.error(req, "No variable specified")
            return
        if req.get("Channel"):
            ch = self._channel(session, req)
            if ch is None:
                return
            session.ok(req, "Variable Set")
            self.set_var(ch, var, req.get("Value"))
            return
        self.global_vars[var] = req.get("Value")
        session.ok(req, "Variable Set")

    async def _getvar(self, session: AmiSession, req: _Request) -> None:
        var = req.get("Variable")
        if not var:
            session.error(req, "No variable specified")
            return
        if req.get("Channel"):
            ch = self._channel(session, req)
            if ch is None:
                return
            value = ch.variables.get(var, "")
        else:
            value = self.global_vars.get(var, "")
        session.respond(req, [("Response", "Success"), ("Variable", var), ("Value", value)])

    def member_in_use(self, interface: str, in_use: bool, in_call: bool) -> None:
        """Set a member's device state in every queue and emit ``QueueMemberStatus``."""
        for q, m in self.model.members_of(interface):
            m.status = DEVICE_INUSE if in_use else 1
            m.in_call = in_call
            self.member_status(q, m)

    def ring_state(self, ch: Channel) -> None:
        """Mark a channel as ringing (state 5) and emit ``Newstate``."""
        ch.state = STATE_RINGING
        self.emit_channel("Newstate", ch)
