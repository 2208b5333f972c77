"""Convert uploaded audio to what Asterisk plays: 8 kHz, 16-bit, mono WAV, via sox.

sox runs with an argument list (never a shell) under a timeout; files get generated names in
the tenant's prompts directory, so an uploaded file name never reaches the file system.

Limits hold before and during conversion: the decoded duration is probed first (``sox --i
-D``) and audio over the limit is refused; sox then decodes with ``trim 0 <limit>`` and writes
raw samples to a pipe, which is copied into the WAV file only while the output stays under
its byte cap. A small file that decodes to hours of audio (a FLAC of silence) is killed at
the cap and its partial output deleted, so it never fills the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import wave
from pathlib import Path

from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.services.ivr_ports import PromptTooLargeError, PromptTooLongError

ALLOWED_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".flac", ".gsm", ".au", ".aiff"})
WAV_HEADER_BYTES = 44
BYTES_PER_SECOND = 8000 * 2
PIPE_CHUNK = 64 * 1024


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
        self.peak_output_bytes = 0
        """The largest output file any conversion reached (the cap is checked before writing)."""

    async def probe_seconds(self, source: Path) -> float | None:
        """The decoded duration sox reads from the file's header, or ``None``."""
        proc = await asyncio.create_subprocess_exec(
            self._sox,
            "--i",
            "-D",
            str(source),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(self._timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None
        try:
            return float(out.decode().strip()) if proc.returncode == 0 else None
        except ValueError:
            return None

    async def convert(
        self,
        tenant_id: str,
        data: bytes,
        suffix: str,
        *,
        max_duration_seconds: int,
        max_output_bytes: int,
    ) -> tuple[str, int, int]:
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
            seconds = await self.probe_seconds(source)
            if seconds is None:
                raise PromptConversionError("the file is not audio sox can read", field="file")
            if seconds > max_duration_seconds:
                raise PromptTooLongError(
                    f"the audio lasts {seconds:.0f} s; the limit is {max_duration_seconds} s",
                    field="file",
                )
            samples = await self._convert(source, target, max_duration_seconds, max_output_bytes)
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
        finally:
            with contextlib.suppress(OSError):
                source.unlink()
        size = target.stat().st_size
        return target.name, size, samples * 1000 // BYTES_PER_SECOND

    async def _convert(
        self, source: Path, target: Path, max_seconds: int, max_output_bytes: int
    ) -> int:
        """Decode into *target* through a capped pipe; return the sample bytes written."""
        cap = max_output_bytes - WAV_HEADER_BYTES
        proc = await asyncio.create_subprocess_exec(
            self._sox,
            "-q",
            str(source),
            "-t",
            "raw",
            "-r",
            "8000",
            "-b",
            "16",
            "-c",
            "1",
            "-e",
            "signed-integer",
            "-",
            "trim",
            "0",
            str(max_seconds),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = proc.stdout, proc.stderr
        if stdout is None or stderr is None:  # pragma: no cover (PIPE was asked for)
            raise PromptConversionError("sox did not start", field="file")
        errors = asyncio.ensure_future(stderr.read(64 * 1024))
        written = 0
        try:
            async with asyncio.timeout(self._timeout):
                with wave.open(str(target), "wb") as out:
                    out.setnchannels(1)
                    out.setsampwidth(2)
                    out.setframerate(8000)
                    while chunk := await stdout.read(PIPE_CHUNK):
                        if written + len(chunk) > cap:
                            raise PromptTooLargeError(
                                f"the converted audio would exceed {max_output_bytes} bytes; "
                                f"that is the limit",
                                field="file",
                            )
                        out.writeframesraw(chunk)
                        written += len(chunk)
                        self.peak_output_bytes = max(
                            self.peak_output_bytes, WAV_HEADER_BYTES + written
                        )
                await proc.wait()
                err = await errors
        except TimeoutError:
            raise PromptConversionError("audio conversion timed out", field="file") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            errors.cancel()
        if proc.returncode != 0:
            reason = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["failed"]
            raise PromptConversionError(
                f"sox could not convert the audio: {reason[0][:200]}", field="file"
            )
        if written == 0:
            raise PromptConversionError("the audio is empty", field="file")
        return written

    def read(self, tenant_id: str, file_name: str) -> bytes | None:
        """The stored prompt's WAV (prompts are small: the output cap bounds them)."""
        try:
            return (self._root / tenant_id / Path(file_name).name).read_bytes()
        except OSError:
            return None

    def remove(self, tenant_id: str, file_name: str) -> None:
        """Delete a stored prompt file (when its record could not be saved)."""
        with contextlib.suppress(OSError):
            (self._root / tenant_id / Path(file_name).name).unlink()
