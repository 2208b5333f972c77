"""Build the FastAPI application from already-constructed services."""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI

from ccbridge import __version__
from ccbridge.api.problems import install_problem_handlers
from ccbridge.api.routers import calls, health
from ccbridge.observability.health import Readiness
from ccbridge.services.ports import CallStore


def create_app(*, call_store: CallStore, readiness: Readiness) -> FastAPI:
    """Return the ASGI app; the composition root owns the services' lifetimes."""
    app = FastAPI(
        title="ccbridge",
        version=__version__,
        summary="A hosted, multi-tenant call centre on Asterisk",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.call_store = call_store
    app.state.readiness = readiness
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(calls.router)
    return app


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document without starting anything (docs and the contract test).

    Building the schema never touches the store, so none is wired.
    """
    return create_app(call_store=cast(CallStore, None), readiness=Readiness()).openapi()
