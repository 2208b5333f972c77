"""Serve the console's pages and assets from the package (ADR 0023).

Every page is plain HTML + ES modules + CSS; the browser talks only to the public HTTP API and
its SSE streams with the signed-in user's own credential, so this module holds no logic beyond
file serving, the IVR flow schema the editor's forms are drawn from, and security headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from ccbridge.ivr_format.parse import json_schema

STATIC_DIR = Path(__file__).parent / "static"
PAGES: dict[str, str] = {
    "/": "index.html",
    "/seat": "seat.html",
    "/wallboard": "wallboard.html",
    "/flows": "flows.html",
    "/recordings": "recordings.html",
    "/reports": "reports.html",
}
"""URL path → page file: one page per role's task."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Nothing from another origin runs or loads: no CDN, no inline script."""

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page_route(router: APIRouter, url: str, filename: str) -> None:
    """Register one page: the HTML file with the console's security headers."""
    path = STATIC_DIR / filename

    async def page() -> FileResponse:
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    page.__name__ = f"console_{filename.removesuffix('.html')}"
    router.add_api_route(url, page, methods=["GET"], include_in_schema=False)


def console_router() -> APIRouter:
    """The pages and the flow schema; not part of the API contract (hidden from OpenAPI)."""
    router = APIRouter()
    for url, filename in PAGES.items():
        _page_route(router, url, filename)

    async def flow_schema() -> JSONResponse:
        schema: dict[str, Any] = json_schema()
        return JSONResponse(schema, headers={"Cache-Control": "no-cache"})

    router.add_api_route(
        "/console/ivr-flow.schema.json", flow_schema, methods=["GET"], include_in_schema=False
    )
    return router


def install_console(app: FastAPI) -> None:
    """Mount the pages and the ``/console`` assets (JS modules, CSS) on *app*."""
    app.include_router(console_router())
    app.mount("/console", StaticFiles(directory=STATIC_DIR), name="console")
