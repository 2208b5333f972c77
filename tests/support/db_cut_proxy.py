"""A TCP proxy between ccbridge and PostgreSQL that can cut the database off: every open
connection is reset and new ones are refused until it is restored (a network partition, a
failover, a restart of the server)."""

from __future__ import annotations

import asyncio

from tests.support.fault_proxy import FaultProxy, _rst


class DbCutProxy(FaultProxy):
    """:class:`FaultProxy` plus :meth:`cut`: reset all links and refuse connects."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__(upstream_host, upstream_port)
        self.cutting = False
        self.refused = 0

    def cut(self) -> None:
        """Drop every connection (RST) and refuse new ones until :meth:`restore`."""
        self.cutting = True
        self.reset_all()
        # A link whose upstream connect was in flight joins the list a moment later.
        asyncio.get_running_loop().call_later(0.1, self._reset_if_cutting)

    def _reset_if_cutting(self) -> None:
        if self.cutting:
            self.reset_all()

    def restore(self) -> None:
        """Accept and forward connections again."""
        self.cutting = False
        super().restore()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cutting:
            self.refused += 1
            _rst(writer)
            return
        await super()._accept(reader, writer)
