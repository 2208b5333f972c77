"""Map any connection exception to the fixed failure vocabulary tenants may see."""

from __future__ import annotations

import ftplib
import socket
import ssl

import httpx

from ccbridge.domain.egress import EgressError, EgressFailure


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_of(exc: BaseException, default: str = EgressFailure.CONNECT_FAILED) -> str:
    """The tenant-safe reason for *exc* (the exception text itself is for our logs only)."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, EgressError):
            return item.failure
    for item in chain:
        if isinstance(item, TimeoutError | socket.timeout | httpx.TimeoutException):
            return EgressFailure.TIMEOUT
        if isinstance(item, ssl.SSLError | ssl.CertificateError):
            return EgressFailure.TLS_ERROR
        if isinstance(item, ftplib.error_perm) and str(item)[:3] in ("530", "532"):
            return EgressFailure.AUTH_FAILED
        if isinstance(item, ftplib.Error | httpx.ProtocolError | EOFError):
            return EgressFailure.PROTOCOL_ERROR
        if isinstance(item, httpx.TransportError | OSError):
            return EgressFailure.CONNECT_FAILED
    return default
