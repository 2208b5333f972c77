"""The one place request-body size limits are enforced (IVR flow documents, prompt audio).

A declared ``Content-Length`` over the limit is refused before a byte is read; otherwise the
body is counted while it streams and refused (413) the moment it passes the limit, so a
chunked upload cannot fill the disk or memory either. Nothing is parsed before the check.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

from ccbridge.errors import CcbridgeError, ErrorCode

MULTIPART_SLACK = 64 * 1024
"""Room for the multipart envelope and small form fields around a capped file part."""


class UploadTooLargeError(CcbridgeError):
    """A request body over its limit (the message names the limit)."""

    code = ErrorCode.VALIDATION
    status = 413
    title = "Upload too large"


class UploadMalformedError(CcbridgeError):
    """A multipart body that cannot be parsed."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Upload not readable"


TooLarge = Callable[[int], Exception]
"""Builds the error for a body of at least this many bytes."""


def too_large(limit: int, what: str, field: str | None = None) -> TooLarge:
    """The default 413: '<what> is at least N bytes; the limit is M bytes'."""

    def build(size: int) -> Exception:
        return UploadTooLargeError(
            f"{what} is at least {size} bytes; the limit is {limit} bytes", field=field
        )

    return build


async def capped_stream(
    request: Request, limit: int, error: TooLarge
) -> AsyncGenerator[bytes, None]:
    """The body's chunks; raise ``error(size)`` once more than *limit* bytes arrive."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise error(int(declared))
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise error(size)
        yield chunk


async def read_capped(request: Request, limit: int, error: TooLarge) -> bytes:
    """The whole body, at most *limit* bytes."""
    return b"".join([chunk async for chunk in capped_stream(request, limit, error)])


async def read_multipart(
    request: Request, limit: int, error: TooLarge, *, max_fields: int = 8
) -> FormData:
    """A ``multipart/form-data`` body of at most *limit* bytes with at most one file."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadMalformedError("send the upload as multipart/form-data", field="file")
    parser = MultiPartParser(
        request.headers,
        capped_stream(request, limit, error),
        max_files=1,
        max_fields=max_fields,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise UploadMalformedError(f"the multipart body is not readable: {exc.message}") from None
