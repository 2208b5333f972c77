"""Request id, access log line and HTTP metrics for every request, as one pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so SSE and long-poll responses stream untouched and the
cost per request stays a few dictionary operations.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccbridge.observability.metrics import HttpMetrics

log = structlog.get_logger("ccbridge.http")

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is a plain token: it ends up in logs and a response header.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Probes and scrapes every few seconds would drown the access log; they log at debug.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED_ROUTE = "<unmatched>"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` when it is a safe token, else a fresh random id."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SAFE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Give each HTTP request an id bound to its log lines, one access line and its metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        response: dict[str, object] = {"status": 500, "streaming": False}
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = [*message.get("headers", ()), header]
                response["streaming"] = any(
                    n == b"content-type" and v.startswith(b"text/event-stream") for n, v in headers
                )
                message = {**message, "headers": headers}
            await send(message)

        started = self._clock()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._app(scope, receive, send_with_id)
            finally:
                self._record(scope, state, response, self._clock() - started)

    def _record(
        self, scope: Scope, state: dict[str, object], response: dict[str, object], seconds: float
    ) -> None:
        route = route_template(scope)
        status = response["status"]
        assert isinstance(status, int)
        self._metrics.requests.labels(route, scope["method"], f"{status // 100}xx").inc()
        if not response["streaming"]:  # a stream's duration is its subscription, not latency
            self._metrics.latency.labels(route).observe(seconds)
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "tenant": state.get("tenant_id"),
            "client": client[0] if client else None,
        }
        if scope["path"] in _QUIET_PATHS and status < 500:
            log.debug("http_request", **fields)
        else:
            log.info("http_request", **fields)
