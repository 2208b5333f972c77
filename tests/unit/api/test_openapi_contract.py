"""The committed OpenAPI document is the API contract: a change to it must be reviewed.

It must also be one a client generator is happy with: readable unique operation ids, every
problem answer declared with the body the API really sends, an example on every body.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema_rs
import pytest
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request

from ccbridge.api import routers
from ccbridge.api.app import openapi_document
from ccbridge.api.problems import PROBLEM_JSON, _on_validation_error, problem
from ccbridge.api.tenant_scope import API_ROOT, TENANT_ROOT, base_operation

COMMITTED = Path(__file__).parents[3] / "docs" / "api" / "openapi.json"
DOC = openapi_document()
OPERATIONS = [
    (path, method, op) for path, ops in DOC["paths"].items() for method, op in ops.items()
]
BINARY_MEDIA = ("audio/", "application/vnd.openxmlformats")


def _validator(name: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": DOC["components"]}
    )


def _request(path: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    return Request(scope)


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == DOC, (
        "The API changed. Review the change, then run "
        "`.venv/bin/ccbridge openapi > docs/api/openapi.json` and commit it."
    )


def test_operation_ids_are_the_handler_names_unique_and_snake_case() -> None:
    handlers = {
        route.endpoint.__name__
        for module in vars(routers).values()
        if isinstance(module, ModuleType)
        for router in vars(module).values()
        if isinstance(router, APIRouter)
        for route in router.routes
        if isinstance(route, APIRoute)
    }
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    assert {base_operation(i) for i in ids} <= handlers


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_every_problem_answer_is_declared_as_problem_json(
    path: str, method: str, op: dict[str, Any]
) -> None:
    statuses = {int(s) for s in op["responses"]}
    assert 500 in statuses
    if op.get("security"):
        assert {401, 403} <= statuses
    if op.get("parameters") or "requestBody" in op:
        assert 422 in statuses
    for status, answer in op["responses"].items():
        if int(status) < 400 or (path == "/readyz" and status == "503"):
            continue
        content = answer["content"]
        assert list(content) == [PROBLEM_JSON], (path, method, status)
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
        assert not list(_validator("ProblemDetails").iter_errors(content[PROBLEM_JSON]["example"]))
    assert "HTTPValidationError" not in DOC["components"]["schemas"]


async def test_problem_details_is_the_body_problems_py_sends() -> None:
    validator = _validator("ProblemDetails")
    sent = [
        problem(404, "Not found", "no such agent", code="NOT_FOUND", instance="/api/v1/x"),
        problem(
            409,
            "Conflict",
            "seat limit",
            code="CONFLICT",
            errors=[{"field": "body.agent_no", "message": "taken"}],
            extra={"reason": "SEAT_LIMIT_REACHED"},
        ),
        await _on_validation_error(
            _request("/api/v1/calls"),
            RequestValidationError(
                [{"loc": ("query", "limit"), "msg": "too big", "type": "less_than_equal"}]
            ),
        ),
    ]
    for response in sent:
        body = json.loads(bytes(response.body))
        assert response.media_type == PROBLEM_JSON
        assert not [e.message for e in validator.iter_errors(body)], body
    assert json.loads(bytes(sent[2].body))["errors"] == [
        {"field": "query.limit", "message": "too big"}
    ]
    assert not validator.is_valid({"type": "x", "title": "t", "status": 200, "detail": "d"})


def _bodies(op: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    if "requestBody" in op:
        found += [("request", m, c) for m, c in op["requestBody"]["content"].items()]
    for status, answer in op["responses"].items():
        found += [(status, m, c) for m, c in answer.get("content", {}).items()]
    return found


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_every_request_and_response_body_has_a_valid_example(
    path: str, method: str, op: dict[str, Any]
) -> None:
    for where, media, content in _bodies(op):
        if media.startswith(BINARY_MEDIA):
            continue
        assert "example" in content, (op["operationId"], where, media)
        schema = content.get("schema")
        if media.endswith("json") and schema:
            validator = jsonschema_rs.validator_for({**schema, "components": DOC["components"]})
            errors = [e.message for e in validator.iter_errors(content["example"])]
            assert not errors, (op["operationId"], where, errors[:3])


def test_every_schema_example_is_valid() -> None:
    shown = {n: s["examples"] for n, s in DOC["components"]["schemas"].items() if "examples" in s}
    assert len(shown) > 60
    for name, examples in shown.items():
        for example in examples:
            errors = [e.message for e in _validator(name).iter_errors(example)]
            assert not errors, (name, errors[:3])


def test_tenant_scope_is_the_path_segment_and_query_forms_are_deprecated_aliases() -> None:
    current = {(p, m) for p, m, op in OPERATIONS if not op.get("deprecated")}
    for path, method, op in OPERATIONS:
        tenant_query = [
            p for p in op.get("parameters", []) if p["in"] == "query" and p["name"] == "tenant"
        ]
        if not tenant_query or op["operationId"] == "download":  # a signed link names its tenant
            continue
        assert tenant_query[0]["deprecated"] is True, op["operationId"]
        canonical = TENANT_ROOT + path.removeprefix(API_ROOT)
        assert (canonical, method) in current, (op["operationId"], canonical)
        twin = DOC["paths"][canonical][method]
        assert twin["operationId"] == base_operation(op["operationId"])
        assert twin["responses"].keys() >= {"200", "201", "202", "204"} & op["responses"].keys()
        if not op["operationId"].endswith("_all_tenants"):
            assert op.get("deprecated") is True, op["operationId"]
    assert ("/api/v1/tenants/{tenant_id}/webhooks", "post") in current
    assert ("/api/v1/webhooks", "post") not in current
