"""Every integer path and query parameter refuses 2**63 with 422 (it used to reach the DB: 500).

The cases are found by walking the app's own OpenAPI document, so a parameter added later is
covered without touching this test.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from ccbridge.api.app import create_app
from ccbridge.api.schemas.bounds import INT64_MAX
from ccbridge.api.security import JwtCodec, principal
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.observability.health import Readiness
from ccbridge.services.ports import CallStore
from ccbridge.services.tenants import AccessService

TOO_BIG = str(INT64_MAX + 1)
PLATFORM = Principal(actor="key:test", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ALL_SCOPES)


def _app() -> Any:
    """Every router, no services: validation answers before any handler (or store) runs."""
    app = create_app(
        call_store=cast(CallStore, None),
        readiness=Readiness(),
        access=cast(AccessService, None),
        jwt=cast(JwtCodec, None),
        all_routes=True,
    )
    app.dependency_overrides[principal] = lambda: PLATFORM
    return app


def _is_integer(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "integer" for option in options)


def _integer_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    doc = _app().openapi()
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] in ("path", "query") and _is_integer(param["schema"]):
                    found.append((method.upper(), path, param))
    return found


CASES = _integer_parameters()


def _url(path: str, target: dict[str, Any]) -> str:
    """The path with every path parameter filled (the target with 2**63, others valid)."""
    out = path
    for segment in path.split("/"):
        if segment.startswith("{"):
            name = segment[1:-1]
            value = TOO_BIG if target["in"] == "path" and target["name"] == name else "1"
            out = out.replace(segment, value)
    return out


def test_the_walk_finds_the_known_integer_parameters() -> None:
    names = {(path, param["name"]) for _, path, param in CASES}
    assert ("/api/v1/tenants/{tenant_id}/ivr/flows/{flow_id}/revisions/{revision}", "revision") in (
        names
    )
    assert ("/api/v1/recordings/{recording_id}/file", "expires") in names
    assert ("/api/v1/webhooks/{webhook_id}/deliveries", "before") in names
    assert len(CASES) >= 20


@pytest.mark.parametrize(
    ("method", "path", "param"), CASES, ids=[f"{m} {p} {q['name']}" for m, p, q in CASES]
)
async def test_an_integer_beyond_int64_answers_422_naming_it(
    method: str, path: str, param: dict[str, Any]
) -> None:
    assert param["schema"].get("maximum", INT64_MAX) <= INT64_MAX or any(
        o.get("maximum", INT64_MAX) <= INT64_MAX for o in param["schema"].get("anyOf", [])
    )
    params = {param["name"]: TOO_BIG} if param["in"] == "query" else {}
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.request(method, _url(path, param), params=params)
    assert resp.status_code == 422, resp.text
    fields = [e["field"] for e in resp.json()["errors"]]
    assert f"{param['in']}.{param['name']}" in fields


@pytest.mark.parametrize("cursor", [TOO_BIG, "9" * 19, "²"])
async def test_an_event_cursor_beyond_int64_answers_422(cursor: str) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        polled = await client.get("/api/v1/events", params={"tenant": "t1", "after": cursor})
    assert polled.status_code == 422, polled.text
    assert [e["field"] for e in polled.json()["errors"]] == ["query.after"]
