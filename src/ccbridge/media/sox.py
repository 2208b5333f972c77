"""Convert uploaded audio to what Asterisk plays: 8 kHz, 16-bit, mono WAV, via sox.

sox runs with an argument list (never a shell) under a timeout; files get generated names in
the tenant's prompts directory, so an uploaded file name never reaches the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

from ccbridge.errors import CcbridgeError, ErrorCode

ALLOWED_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".flac", ".gsm", ".au", ".aiff"})
WAV_HEADER_BYTES = 44
BYTES_PER_SECOND = 8000 * 2


class PromptConversionError(CcbridgeError):
    """The audio could not be converted (not audio, unsupported format, sox failed)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Audio not converted"


class SoxPromptConverter:
    """The ``PromptConverter`` port over the ``sox`` command."""

    def __init__(self, root: Path, *, sox: str = "sox", timeout: float = 30.0) -> None:
        self._root = root
        self._sox = sox
        self._timeout = timeout

    async def convert(self, tenant_id: str, data: bytes, suffix: str) -> tuple[str, int, int]:
        """Store ``data`` converted; return (file name, bytes, duration in ms)."""
        suffix = suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            kinds = ", ".join(sorted(ALLOWED_SUFFIXES))
            raise PromptConversionError(
                f"unsupported audio type {suffix[:10]!r}; use {kinds}", field="file"
            )
        folder = self._root / tenant_id
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"p{secrets.token_hex(8)}"
        source = folder / f".{stem}.upload{suffix}"
        target = folder / f"{stem}.wav"
        source.write_bytes(data)
        try:
            proc = await asyncio.create_subprocess_exec(
                self._sox,
                "-q",
                str(source),
                "-r",
                "8000",
                "-b",
                "16",
                "-c",
                "1",
                "-e",
                "signed-integer",
                str(target),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                async with asyncio.timeout(self._timeout):
                    _, err = await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise PromptConversionError("audio conversion timed out", field="file") from None
            if proc.returncode != 0 or not target.exists():
                reason = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["failed"]
                raise PromptConversionError(
                    f"sox could not convert the audio: {reason[0][:200]}", field="file"
                )
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
        finally:
            with contextlib.suppress(OSError):
                source.unlink()
        size = target.stat().st_size
        duration = max(0, size - WAV_HEADER_BYTES) * 1000 // BYTES_PER_SECOND
        return target.name, size, duration

    def remove(self, tenant_id: str, file_name: str) -> None:
        """Delete a stored prompt file (when its record could not be saved)."""
        with contextlib.suppress(OSError):
            (self._root / tenant_id / Path(file_name).name).unlink()
