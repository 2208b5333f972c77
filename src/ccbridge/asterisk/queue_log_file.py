"""Read Asterisk's queue log from a file (the single-host setup, ADR 0013).

Asterisk appends ``/var/log/asterisk/queue_log``; logrotate moves it to ``queue_log.1``, so a
gap that spans a rotation is read from both.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from ccbridge.domain.calls.pbx_records import QueueLogEntry, parse_queue_log_line
from ccbridge.domain.ha.placement import DEFAULT_PBX_ID


def queue_log_source(pbx: str) -> str:
    """The cursor name of a PBX's queue log: each PBX's log is read from its own position
    (ADR 0033); the default PBX keeps the name it had before placements."""
    return "queue_log" if pbx == DEFAULT_PBX_ID else f"queue_log@{pbx}"


class QueueLogFile:
    """The queue log on a shared volume (implements ``PbxRecordSource``)."""

    def __init__(self, path: Path, name: str = "queue_log") -> None:
        """*name* is the cursor's key (:func:`queue_log_source`)."""
        self.path = path
        self.name = name

    async def read_since(self, since: datetime) -> list[QueueLogEntry]:
        """Lines at or after *since*, the rotated file's first; a missing file reads empty."""
        return await asyncio.to_thread(self._read, since)

    def _read(self, since: datetime) -> list[QueueLogEntry]:
        out: list[QueueLogEntry] = []
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            for line in text.split("\n"):
                entry = parse_queue_log_line(line)
                if entry is not None and entry.at >= since:
                    out.append(entry)
        return out
