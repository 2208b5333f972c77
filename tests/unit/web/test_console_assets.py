"""The console is served by ccbridge itself: pages, ES modules and the flow schema, no CDN."""

from __future__ import annotations

import re
from typing import cast

import httpx
import pytest

from ccbridge.api.app import create_app, openapi_document
from ccbridge.api.security import JwtCodec
from ccbridge.ivr_format.parse import json_schema
from ccbridge.observability.health import Readiness
from ccbridge.services.ports import CallStore
from ccbridge.services.tenants import AccessService
from ccbridge.web.console import PAGES, STATIC_DIR


async def _get(path: str) -> httpx.Response:
    app = create_app(
        call_store=cast(CallStore, None),
        readiness=Readiness(),
        access=cast(AccessService, None),
        jwt=JwtCodec("console-test-secret"),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return await client.get(path)


@pytest.mark.parametrize("url", sorted(PAGES))
async def test_each_page_is_html_with_a_strict_content_security_policy(url: str) -> None:
    response = await _get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert '<script type="module" src="/console/js/' in response.text


async def test_modules_and_styles_are_served_from_the_package() -> None:
    script = await _get("/console/js/api.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "export async function api" in script.text
    style = await _get("/console/css/console.css")
    assert style.status_code == 200
    assert (await _get("/console/js/missing.js")).status_code == 404


async def test_the_flow_editor_gets_the_flow_json_schema() -> None:
    response = await _get("/console/ivr-flow.schema.json")
    assert response.status_code == 200
    assert response.json() == json_schema()


def test_no_asset_loads_anything_from_another_origin() -> None:
    """No CDN at run time: every src/href/import in the assets is same-origin."""
    remote = re.compile(
        r"""(src|href)=["']https?://|import[^;]*["']https?://|url\(["']?https?://"""
    )
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            assert not remote.search(path.read_text(encoding="utf-8")), path


def test_pages_stay_out_of_the_api_contract() -> None:
    paths = openapi_document()["paths"]
    assert not any(p in paths for p in PAGES)
    assert not any(p.startswith("/console") for p in paths)
