"""Every request gets an id bound to its log lines, one access line, and HTTP metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import structlog
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from structlog.testing import capture_logs

from ccbridge.api.request_context import RequestContextMiddleware, request_id_from
from ccbridge.observability.metrics import Metrics

log = structlog.get_logger("test")


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        log.info("inside_handler")
        return {"item_id": item_id}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"data: {n}\n\n".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/event-stream")

    app.add_middleware(RequestContextMiddleware, metrics=metrics.http)
    return app


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


def test_a_safe_caller_id_is_kept_and_an_unsafe_one_replaced() -> None:
    assert request_id_from([(b"x-request-id", b"crm-42.a_b:c")]) == "crm-42.a_b:c"
    for bad in (b"a\r\nInjected: 1", b"", b"x" * 65, "工号".encode()):
        replaced = request_id_from([(b"x-request-id", bad)])
        assert replaced != bad.decode("utf-8", "replace")
        assert len(replaced) == 32
        assert replaced.isalnum()


async def test_request_id_is_echoed_bound_to_log_lines_and_access_logged() -> None:
    metrics = Metrics()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await _get(_app(metrics), "/items/7", {"X-Request-ID": "crm-1"})

    assert response.headers["x-request-id"] == "crm-1"
    inside = next(e for e in logs if e["event"] == "inside_handler")
    assert inside["request_id"] == "crm-1"
    access = next(e for e in logs if e["event"] == "http_request")
    assert access["request_id"] == "crm-1"
    assert access["route"] == "/items/{item_id}"  # the template, not /items/7
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert access["log_level"] == "info"


async def test_a_generated_id_is_returned_when_none_is_sent() -> None:
    response = await _get(_app(Metrics()), "/items/1")

    assert len(response.headers["x-request-id"]) == 32


async def test_metrics_count_by_route_template_and_status_class() -> None:
    metrics = Metrics()
    app = _app(metrics)
    await _get(app, "/items/1")
    await _get(app, "/items/2")
    await _get(app, "/items/not-a-number")
    await _get(app, "/nowhere")

    text = metrics.exposition().decode()
    assert (
        'ccbridge_http_requests_total{method="GET",route="/items/{item_id}",status="2xx"} 2.0'
        in text
    )
    assert (
        'ccbridge_http_requests_total{method="GET",route="/items/{item_id}",status="4xx"} 1.0'
        in text
    )
    assert 'ccbridge_http_requests_total{method="GET",route="<unmatched>",status="4xx"} 1.0' in text
    assert 'ccbridge_http_request_seconds_count{route="/items/{item_id}"} 3.0' in text


async def test_an_event_stream_streams_through_and_is_not_a_latency_sample() -> None:
    metrics = Metrics()
    response = await _get(_app(metrics), "/stream")

    assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert "x-request-id" in response.headers
    text = metrics.exposition().decode()
    assert 'route="/stream",status="2xx"} 1.0' in text
    assert 'ccbridge_http_request_seconds_count{route="/stream"}' not in text
