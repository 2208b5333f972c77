"""Pure-asyncio TCP fault proxy (a tiny toxiproxy) for AMI fault tests on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field


@dataclass
class _Link:
    """One proxied client connection and its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    """Forward loopback TCP to ``upstream`` and inject resets, black holes, delay and slicing."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.links: list[_Link] = []
        self.accepted = 0
        self._blackholed = False
        self._delay = 0.0
        self._slice = 0
        self._slice_pause = 0.002
        self._server: asyncio.Server | None = None

    async def start(self) -> FaultProxy:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every link."""
        if self._server is not None:
            self._server.close()
        self.reset_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def reset_all(self) -> None:
        """Send RST on every link (SO_LINGER 0, then close), like a crashed peer or firewall."""
        for link in self.links:
            for writer in (link.client, link.upstream):
                _rst(writer)
            for task in link.tasks:
                task.cancel()
        self.links.clear()

    async def refuse(self) -> None:
        """Stop listening and reset every link: reconnects are refused (RST to the SYN), like
        a PBX host whose AMI port is closed, until :meth:`listen` reopens the same port."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.reset_all()

    async def listen(self) -> None:
        """Listen again on the same port after :meth:`refuse`."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    def blackhole(self) -> None:
        """Stop forwarding in both directions but keep the sockets open (half-open TCP)."""
        self._blackholed = True

    def restore(self) -> None:
        """Undo every fault: forward normally again."""
        self._blackholed = False
        self._delay = 0.0
        self._slice = 0

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before forwarding it."""
        self._delay = seconds

    def slice(self, nbytes: int, pause: float = 0.002) -> None:
        """Forward in ``nbytes`` pieces with a short pause, so the peer sees many small reads."""
        self._slice = nbytes
        self._slice_pause = pause

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            _rst(writer)
            return
        link = _Link(writer, up_writer)
        self.links.append(link)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*link.tasks, return_exceptions=True)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await src.read(65536):
                if self._blackholed:
                    continue  # swallowed: the sender's writes still "succeed"
                if self._delay:
                    await asyncio.sleep(self._delay)
                if self._slice:
                    for i in range(0, len(data), self._slice):
                        dst.write(data[i : i + self._slice])
                        await dst.drain()
                        await asyncio.sleep(self._slice_pause)
                else:
                    dst.write(data)
                    await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not self._blackholed:
                for writer in (link.client, link.upstream):
                    writer.transport.abort()
                if link in self.links:
                    self.links.remove(link)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Abort ``writer``'s socket with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
