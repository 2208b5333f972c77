"""Liveness and readiness probes for Docker and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ccbridge.observability.health import Readiness

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
