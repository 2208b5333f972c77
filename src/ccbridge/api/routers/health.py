"""Liveness and readiness probes for Docker and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ccbridge.observability.health import Readiness
from ccbridge.observability.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Answer as long as the event loop runs."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="AMI logged in and synced, database reachable, FastAGI listening",
    responses={503: {"description": "A dependency is not ready; see checks"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Report each dependency; 200 only when all are ready."""
    readiness: Readiness = request.app.state.readiness
    ok, checks = await readiness.run()
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Metrics in text format"}},
)
async def metrics(request: Request) -> Response:
    """Expose the process's registry for a Prometheus scrape (no authentication: bind privately)."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
