"""Hardened FastAGI listener: bounded header reads, peer allow-list, session cap, routing."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ccbridge.asterisk.agi.errors import AgiError, AgiHangup
from ccbridge.asterisk.agi.result import decode_line
from ccbridge.asterisk.agi.session import AgiSession, parse_environment

AgiHandler = Callable[[AgiSession], Awaitable[None]]

DONE_VARIABLE = "CCB_AGI_DONE"
"""The channel variable ccbridge's FastAGI sets to the script's name once a script finished:
the shipped dialplan's proof that the node completed it (``[ccbridge-fastagi]``, docs/ha.md).
Asterisk reports ``AGISTATUS=SUCCESS`` also when the server closed the session mid-script,
so the status alone cannot tell a finished script from a node that died during it."""

_log = structlog.get_logger(__name__)
_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _LogThrottle:
    """Let one warning per interval through, so a port scan cannot flood the logs."""

    __slots__ = ("_interval", "_next", "suppressed")

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._next = 0.0
        self.suppressed = 0

    def allow(self) -> bool:
        """Tell whether to log now; otherwise count the event as suppressed."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        """Return and reset how many events were not logged since the last log line."""
        count, self.suppressed = self.suppressed, 0
        return count


class AgiHeaderError(AgiError):
    """Raised while reading the environment: too large, malformed, or not FastAGI at all."""


def _route_key(script: str) -> str:
    """Normalise a script (``/ivr-main?x=1``) to its route key (``ivr-main``)."""
    return script.partition("?")[0].strip("/")


class AgiRouter:
    """Map ``agi_network_script`` paths to ``async def handler(session)`` coroutines."""

    def __init__(self) -> None:
        self._routes: dict[str, AgiHandler] = {}

    def add_route(self, path: str, handler: AgiHandler) -> None:
        """Register ``handler`` for ``agi://host:port/<path>``; it must be an ``async def``."""
        call = getattr(handler, "__call__", None)  # noqa: B004 - async callable objects count
        if not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)):
            raise TypeError(
                f"AGI handler for {path!r} must be an 'async def' function taking an "
                f"AgiSession, got {handler!r}"
            )
        key = _route_key(path)
        if key in self._routes:
            raise ValueError(f"an AGI route for {key!r} already exists")
        self._routes[key] = handler

    def resolve(self, script: str) -> AgiHandler | None:
        """Return the handler for an ``agi_network_script`` value, or ``None``."""
        return self._routes.get(_route_key(script))


@dataclass(frozen=True, slots=True)
class AgiServerConfig:
    """Listener settings; the defaults are safe for a FastAGI server on the PBX host."""

    host: str = "127.0.0.1"
    port: int = 4573
    allowed_peers: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    max_sessions: int = 500
    header_timeout: float = 5.0
    command_timeout: float = 30.0
    max_header_bytes: int = 65536
    stop_grace: float = 1.0
    """Seconds a session in flight at stop may take to finish (a routing decision half made
    completes) before it is cancelled."""
    done_variable: str | None = None
    """When set (``DONE_VARIABLE`` in ccbridge), the last command of every session whose
    handler returned on a live channel sets this variable to the script's name."""


@dataclass(slots=True)
class AgiStats:
    """Counters for health checks and metrics (a snapshot; the server keeps its own copy)."""

    active: int = 0
    total: int = 0
    refused_peer: int = 0
    refused_capacity: int = 0
    header_errors: int = 0
    handler_errors: int = 0


def _parse_networks(peers: tuple[str, ...]) -> tuple[_IpNetwork, ...]:
    """Parse the allow-list once; a typo fails at start-up, not at the first call."""
    return tuple(ipaddress.ip_network(peer, strict=False) for peer in peers)


class FastAgiServer:
    """Serve FastAGI sessions without ever letting one peer stall the event loop."""

    def __init__(self, config: AgiServerConfig, router: AgiRouter) -> None:
        self._config = config
        self._router = router
        self._networks = _parse_networks(config.allowed_peers)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._stats = AgiStats()
        self._peer_log = _LogThrottle()
        self._header_log = _LogThrottle()

    @property
    def listening(self) -> bool:
        """Tell whether the listener accepts connections."""
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        """Return the bound port (useful with ``port=0`` in tests)."""
        if self._server is None or not self._server.sockets:
            return self._config.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def stats(self) -> AgiStats:
        """Return a snapshot of the counters."""
        return dataclasses.replace(self._stats)

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_connect,
            self._config.host,
            self._config.port,
            limit=self._config.max_header_bytes,
            backlog=min(4096, max(128, self._config.max_sessions)),
        )
        _log.info("agi_server_listening", host=self._config.host, port=self.port)

    async def stop(self) -> None:
        """Close the listener, give live sessions ``stop_grace`` to finish, cancel the rest
        and wait for them."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        sessions = list(self._sessions)
        if sessions and self._config.stop_grace > 0:
            _, pending = await asyncio.wait(sessions, timeout=self._config.stop_grace)
            sessions = list(pending)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.gather(*sessions, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
            _log.info("agi_server_stopped", port=self._config.port)

    async def serve_forever(self) -> None:
        """Start, then run until cancelled (for a TaskGroup); always stops cleanly."""
        await self.start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self.stop()

    def _peer_allowed(self, peer: object) -> bool:
        """Check the peer address against the allow-list (IPv4-mapped IPv6 counts as IPv4)."""
        if not isinstance(peer, tuple) or not peer:
            return False
        try:
            address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Admit or refuse one connection, then read its environment and run its handler."""
        stats = self._stats
        stats.total += 1
        peer = writer.get_extra_info("peername")
        if stats.active >= self._config.max_sessions:
            stats.refused_capacity += 1
            writer.transport.abort()
            return
        if not self._peer_allowed(peer):
            stats.refused_peer += 1
            if self._peer_log.allow():
                suppressed = self._peer_log.take_suppressed()
                _log.warning("agi_peer_refused", peer=str(peer), suppressed=suppressed)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        stats.active += 1
        try:
            await self._serve(reader, writer, peer)
        except asyncio.CancelledError:
            if self._server is not None:
                raise
            # Cancelled by stop(): end normally. Python 3.11's stream callback calls
            # task.exception() on a cancelled connection task and logs a bogus traceback.
            _log.info("agi_session_cancelled_at_stop", peer=str(peer))
        finally:
            stats.active -= 1
            if task is not None:
                self._sessions.discard(task)
            self._close(writer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        """Run one admitted session; no exception from it reaches the listener."""
        try:
            async with asyncio.timeout(self._config.header_timeout):
                env = await self._read_environment(reader)
        except (TimeoutError, AgiHeaderError, ConnectionError) as exc:
            self._stats.header_errors += 1
            if self._header_log.allow():
                _log.warning(
                    "agi_header_rejected",
                    peer=str(peer),
                    reason=str(exc) or "timeout",
                    suppressed=self._header_log.take_suppressed(),
                )
            return
        if env is None:  # peer closed before the blank line: a port scan or health check
            self._stats.header_errors += 1
            return
        session = AgiSession(env, reader, writer, command_timeout=self._config.command_timeout)
        handler = self._router.resolve(session.script)
        if handler is None:
            _log.warning("agi_unknown_script", script=session.script, channel=session.channel)
            return
        try:
            await handler(session)
            await self._confirm(session)
        except AgiHangup:
            pass  # the caller hung up: the normal end of many IVR flows
        except Exception:
            self._stats.handler_errors += 1
            _log.exception(
                "agi_handler_failed",
                script=session.script,
                channel=session.channel,
                uniqueid=session.uniqueid,
            )
        finally:
            session.close()

    async def _confirm(self, session: AgiSession) -> None:
        """Tell the dialplan the script finished on this node (see ``DONE_VARIABLE``)."""
        name = self._config.done_variable
        if name is not None and not session.hung_up:
            await session.set_variable(name, session.script)

    async def _read_environment(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        """Read ``agi_*: value`` lines up to the blank line; ``None`` on early EOF."""
        budget = self._config.max_header_bytes
        lines: list[str] = []
        while True:
            try:
                raw = await reader.readline()
            except ValueError as exc:  # one line exceeded the reader limit (= header cap)
                raise AgiHeaderError("AGI environment too large") from exc
            if not raw.endswith(b"\n"):
                return None
            budget -= len(raw)
            if budget < 0:
                raise AgiHeaderError("AGI environment too large")
            line = decode_line(raw).rstrip("\r\n")
            if not line:
                break
            if not line.startswith("agi_"):
                raise AgiHeaderError("not an AGI environment line")
            lines.append(line)
        if not lines:
            raise AgiHeaderError("empty AGI environment")
        try:
            return parse_environment(lines)
        except AgiError as exc:
            raise AgiHeaderError(str(exc)) from exc

    @staticmethod
    def _close(writer: asyncio.StreamWriter) -> None:
        """Close the socket without waiting: unsent bytes to a peer that stopped reading are
        dropped (abort) so the transport cannot linger."""
        transport = writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
