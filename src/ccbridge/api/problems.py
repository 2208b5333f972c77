"""RFC 9457 problem+json responses for every error the API returns."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccbridge.errors import AsteriskUnavailableError, CcbridgeError, ErrorCode
from ccbridge.resilience.db_errors import is_database_unavailable

PROBLEM_JSON = "application/problem+json"
DB_RETRY_AFTER_SECONDS = 1
PBX_RETRY_AFTER_SECONDS = 5
log = structlog.get_logger(__name__)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build one problem response."""
    body: dict[str, Any] = {
        "type": f"https://ccbridge.dev/problems/{code.lower()}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Render a pydantic location as ``query.limit`` or ``body.nodes[3].next``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


async def _on_ccbridge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CcbridgeError)
    errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    # An error may list several faults itself (e.g. every fault of an IVR flow, by JSON path).
    listed = getattr(exc, "errors", None)
    if isinstance(listed, list) and listed:
        errors = listed
    # A domain refusal (e.g. SEAT_LIMIT_REACHED) says which rule refused, as a stable code.
    reason = getattr(exc, "reason", None)
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        code=exc.code,
        instance=request.url.path,
        errors=errors,
        extra={"reason": str(reason)} if reason is not None else None,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors)
    return problem(
        422,
        "Invalid request",
        f"invalid value for {fields}",
        code=ErrorCode.VALIDATION,
        instance=request.url.path,
        errors=errors,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = ErrorCode.NOT_FOUND if exc.status_code == 404 else f"HTTP_{exc.status_code}"
    return problem(
        exc.status_code,
        str(exc.detail),
        str(exc.detail),
        code=code,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _on_database_busy(request: Request, exc: Exception) -> JSONResponse:
    """A locked SQLite file or a dropped PostgreSQL link is transient: say so, and when to retry.

    Nothing was written (the transaction rolled back), so the client may safely repeat.
    """
    log.warning("api_database_busy", path=request.url.path, error=str(exc).splitlines()[0])
    return problem(
        503,
        "Database unavailable",
        "the database is busy or unreachable; nothing was changed, retry shortly",
        code=ErrorCode.DATABASE_UNAVAILABLE,
        instance=request.url.path,
        headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)},
    )


async def _on_pbx_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Not logged in, no answer in time, or an action refused: the PBX could not do it now."""
    assert isinstance(exc, AsteriskUnavailableError)
    log.warning("api_pbx_unavailable", path=request.url.path, error=type(exc).__name__)
    return problem(
        503,
        exc.title,
        f"the PBX could not carry out the request ({exc.detail}); retry shortly",
        code=exc.code,
        instance=request.url.path,
        headers={"Retry-After": str(PBX_RETRY_AFTER_SECONDS)},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):  # a driver's own error type, a reset, a full pool
        return await _on_database_busy(request, exc)
    log.exception("api_unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem(
        500,
        "Internal error",
        "an unexpected error occurred; it has been logged",
        code=ErrorCode.INTERNAL,
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error leave the API as problem+json."""
    app.add_exception_handler(CcbridgeError, _on_ccbridge_error)
    app.add_exception_handler(AsteriskUnavailableError, _on_pbx_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(OperationalError, _on_database_busy)
    app.add_exception_handler(Exception, _on_unexpected)


class ProblemError(BaseModel):
    """One faulty input: where it is and what is wrong with it."""

    field: str = Field(description="Where: `query.limit`, `body.nodes[3].next`, `path.year`, …")
    message: str
    code: str | None = Field(default=None, description="A stable fault code, where one exists")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: the body of every 4xx and 5xx answer (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="Short, the same for every occurrence of this kind")
    status: int = Field(ge=400, le=599, description="The HTTP status code, repeated")
    detail: str = Field(description="What went wrong this time, for a human")
    code: str = Field(description="A stable machine-readable code (`NOT_FOUND`, `VALIDATION`, …)")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[ProblemError] | None = Field(
        default=None, description="Every faulty input, by field (validation problems)"
    )
    reason: str | None = Field(
        default=None, description="Which rule refused (a stable code, e.g. SEAT_LIMIT_REACHED)"
    )
