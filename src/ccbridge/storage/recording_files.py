"""Recording files under one root: measured, hashed and deleted in a worker thread."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

from ccbridge.domain.recordings.model import audio_bytes, check_tenant
from ccbridge.services.recording_ports import FileFacts

CHUNK = 1 << 20


class PathEscapeError(ValueError):
    """A relative path that would leave the recordings root."""


class LocalRecordingFiles:
    """Implements ``services.recording_ports.RecordingFiles`` on a local directory."""

    def __init__(self, root: Path) -> None:
        """Resolve the root once; every path is checked to stay under it."""
        self.root = root.resolve()

    def absolute(self, relative: str) -> str:
        """The absolute path; raise :class:`PathEscapeError` when it leaves the root."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise PathEscapeError(f"{relative!r} is outside the recordings root")
        return str(path)

    def absolute_root(self) -> str:
        """The resolved root (what ``MONITOR_FILENAME`` starts with, ADR 0025)."""
        return str(self.root)

    def _inspect(self, relative: str) -> FileFacts | None:
        path = self.absolute(relative)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return FileFacts(size_bytes=size, sha256=digest.hexdigest(), audio_bytes=audio_bytes(size))

    async def inspect(self, relative: str) -> FileFacts | None:
        """Measure and hash the file in a thread (a long call is ~1 MB/min of audio)."""
        return await asyncio.to_thread(self._inspect, relative)

    def _delete(self, relative: str) -> bool:
        path = Path(self.absolute(relative))
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()  # only succeeds when empty
            except OSError:
                break
            parent = parent.parent
        return True

    async def delete(self, relative: str) -> bool:
        """Delete the file and any folders it leaves empty; False if it was already gone."""
        return await asyncio.to_thread(self._delete, relative)

    def _delete_tree(self, tenant: str) -> int:
        top = self.root / check_tenant(tenant)
        if not top.exists():
            return 0
        count = sum(1 for p in top.rglob("*") if p.is_file() or p.is_symlink())
        shutil.rmtree(top)
        return count

    async def delete_tree(self, tenant: str) -> int:
        """Delete a tenant's whole folder (off-boarding); return the files removed."""
        return await asyncio.to_thread(self._delete_tree, tenant)
