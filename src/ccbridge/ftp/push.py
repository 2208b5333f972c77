"""Push client: ftplib (explicit FTPS with AUTH TLS when asked) run in worker threads.

Connections go through the egress guard (``ccbridge.egress.ftp``): the tenant's host is
resolved once, checked, and connected to at that address; PASV data connections stay on the
control connection's peer. Every failure surfaces as an ``EgressError`` whose ``failure`` is
one word of the fixed vocabulary; details go to our log, never to the tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import io
import posixpath
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog

from ccbridge.domain.egress import EgressError, EgressFailure, parse_networks
from ccbridge.domain.recordings.model import ExportTarget
from ccbridge.egress.failures import failure_of
from ccbridge.egress.ftp import guarded_connect
from ccbridge.egress.resolve import Resolver, system_resolve

log = structlog.get_logger(__name__)
T = TypeVar("T")

TIMEOUT = 30.0
BLOCK = 64 * 1024


class ExportTlsError(ssl.SSLError):
    """The tenant's server failed TLS verification (untrusted or mismatched certificate)."""


def _guarded(call: Callable[[], T], what: str) -> T:
    """Run one ftplib step; any failure becomes an ``EgressError`` with a fixed reason."""
    try:
        return call()
    except EgressError:
        raise
    except (OSError, EOFError, ftplib.Error, ValueError) as exc:
        reason = failure_of(exc, EgressFailure.TRANSFER_FAILED)
        log.info("export_ftp_failed", step=what, reason=reason, error=repr(exc)[:300])
        raise EgressError(reason) from exc


class FtplibSession:
    """One connection to a tenant's server; every call runs in a thread (ftplib blocks)."""

    def __init__(self, ftp: ftplib.FTP, max_bytes_per_second: int | None = None) -> None:
        self._ftp = ftp
        self._made: set[str] = set()
        self._rate = max_bytes_per_second

    def _size(self, path: str) -> int | None:
        try:
            self._ftp.voidcmd("TYPE I")
            size = self._ftp.size(path)
        except ftplib.error_perm:
            return None
        return None if size is None else int(size)

    async def remote_size(self, path: str) -> int | None:
        """``SIZE`` of *path*, or ``None`` when the server has no such file."""
        return await asyncio.to_thread(_guarded, lambda: self._size(path), "size")

    def _mkdirs(self, directory: str) -> None:
        parts = [p for p in directory.split("/") if p]
        current = ""
        for part in parts:
            current += "/" + part
            if current in self._made:
                continue
            with contextlib.suppress(ftplib.error_perm):  # exists (or refused: STOR will tell)
                self._ftp.mkd(current)
            self._made.add(current)

    def _upload(self, local: str, path: str, offset: int, progress: Callable[[int], None]) -> None:
        self._mkdirs(posixpath.dirname(path))
        started = time.monotonic()
        moved = 0

        def sent(chunk: bytes) -> None:
            nonlocal moved
            moved += len(chunk)
            progress(len(chunk))
            if self._rate:  # a bandwidth cap so a nightly push never fills the tenant's link
                ahead = moved / self._rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

        block = min(BLOCK, max(1024, self._rate // 8)) if self._rate else BLOCK
        with open(local, "rb") as fh:
            fh.seek(offset)
            self._ftp.storbinary(f"STOR {path}", fh, block, callback=sent, rest=offset or None)

    async def upload(
        self, local: str, path: str, offset: int, progress: Callable[[int], None]
    ) -> None:
        """Send *local* from *offset* (``REST`` + ``STOR`` resumes a partial file)."""
        await asyncio.to_thread(
            _guarded, lambda: self._upload(local, path, offset, progress), "upload"
        )

    def _put_text(self, path: str, text: str) -> None:
        self._mkdirs(posixpath.dirname(path))
        self._ftp.storbinary(f"STOR {path}", io.BytesIO(text.encode()))

    async def put_text(self, path: str, text: str) -> None:
        """Write a small text file (manifest or report)."""
        await asyncio.to_thread(_guarded, lambda: self._put_text(path, text), "put_text")

    def _close(self) -> None:
        try:
            self._ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            self._ftp.close()

    async def close(self) -> None:
        """QUIT, or just close when the server is gone."""
        await asyncio.to_thread(self._close)


class FtplibTransport:
    """Implements ``services.recording_ports.ExportTransport``."""

    def __init__(
        self,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT,
        max_bytes_per_second: int | None = None,
        resolver: Resolver = system_resolve,
    ) -> None:
        """*tls_context* defaults to the system CA store with hostname checks."""
        self._context = tls_context
        self._timeout = timeout
        self._rate = max_bytes_per_second
        self._resolver = resolver
        self.connected: list[str] = []
        """Addresses control connections went to (for tests and debugging)."""

    def _tls_context(self, target: ExportTarget) -> ssl.SSLContext:
        """The target's own CA (e.g. its self-signed cert) when given, else the default."""
        if target.ca_pem:
            try:
                return ssl.create_default_context(cadata=target.ca_pem)
            except (ssl.SSLError, ValueError) as exc:
                raise ExportTlsError(f"the export target's ca_pem is not usable: {exc}") from None
        return self._context or ssl.create_default_context()

    def _connect(self, target: ExportTarget, allow: Sequence[str]) -> FtplibSession:
        # Plain FTP only when the tenant's target says so (tls=false); else AUTH TLS.
        ftp = (
            ftplib.FTP_TLS(context=self._tls_context(target))  # noqa: S321
            if target.tls
            else ftplib.FTP()  # noqa: S321
        )
        try:
            address = guarded_connect(
                ftp,
                target.host,
                target.port,
                timeout=self._timeout,
                allow=parse_networks(allow),
                resolver=self._resolver,
            )
            self.connected.append(address)
            ftp.login(target.username, target.password)  # FTP_TLS sends AUTH TLS first
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
        except ssl.SSLCertVerificationError as exc:
            ftp.close()
            raise ExportTlsError(
                f"TLS certificate of {target.host}:{target.port} not trusted "
                f"({exc.verify_message}); set the target's ca_pem to its CA or certificate"
            ) from None
        except BaseException:
            ftp.close()
            raise
        return FtplibSession(ftp, self._rate)

    async def connect(self, target: ExportTarget, allow: Sequence[str] = ()) -> FtplibSession:
        """Connect (only to an address the policy and *allow* permit) and log in, in a thread."""
        return await asyncio.to_thread(_guarded, lambda: self._connect(target, allow), "connect")
