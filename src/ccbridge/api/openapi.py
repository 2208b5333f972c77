"""The OpenAPI document a client generator can rely on, finished in one place.

FastAPI describes each route's success answer; everything else every route shares is added
here, once: readable operation ids (the handler's name), the RFC 9457 problem answers each
operation can give (`application/problem+json`, :class:`ProblemDetails`), and the examples
(:mod:`ccbridge.api.openapi_examples`) on every request and response body.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from ccbridge.api.openapi_examples import OPERATION_EXAMPLES, SCHEMA_EXAMPLES
from ccbridge.api.problems import PROBLEM_JSON, ProblemDetails
from ccbridge.api.tenant_scope import base_operation
from ccbridge.errors import ErrorCode
from ccbridge.ivr_format.parse import json_schema as ivr_flow_schema

Document = dict[str, Any]
_REF = "#/components/schemas/"
_PROBLEM_REF = {"$ref": f"{_REF}ProblemDetails"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_WRITES = frozenset({"post", "put", "patch", "delete"})

# What each problem status means when the route does not say more.
_DEFAULT_DESCRIPTIONS = {
    401: "No credential, or one that is unknown, expired or revoked (`WWW-Authenticate: Bearer`)",
    403: "The credential lacks the scope or role this needs",
    404: "No such object (or another tenant's: the answer is the same)",
    409: "The request conflicts with the current state (taken, stale or busy); `detail` says how",
    422: "A parameter or body field is invalid; `errors[].field` names each one",
    500: "An unexpected error; it has been logged",
    503: "The database or the PBX is unavailable; nothing was changed, retry after `Retry-After`",
}
_CODES = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: ErrorCode.NOT_FOUND.value,
    409: ErrorCode.CONFLICT.value,
    422: ErrorCode.VALIDATION.value,
    500: ErrorCode.INTERNAL.value,
    503: ErrorCode.DATABASE_UNAVAILABLE.value,
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _inline_flow_schema(doc: Document, schemas: Document) -> None:
    """Serve the IVR flow schema inside the document: a generator cannot fetch its ``$id``."""
    flow = ivr_flow_schema()
    external = flow.pop("$id")
    flow.pop("$schema", None)
    for name, sub in flow.pop("$defs", {}).items():
        schemas[name] = sub
    schemas["IvrFlowDocument"] = flow
    local = f"{_REF}IvrFlowDocument"

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") == external:
                node["$ref"] = local
            elif isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
                node["$ref"] = _REF + node["$ref"].removeprefix("#/$defs/")
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(flow)
    for sub in schemas.values():
        rewrite(sub)
    rewrite(doc.get("paths", {}))


def operation_id(route: APIRoute) -> str:
    """The handler's name (`get_calendar`, `list_agents`): stable, readable, unique (tested)."""
    return route.name


def problem_example(status: int, path: str) -> dict[str, Any]:
    """A problem body as :mod:`ccbridge.api.problems` sends it for *status*."""
    code = _CODES.get(status, f"HTTP_{status}")
    example: dict[str, Any] = {
        "type": f"https://ccbridge.dev/problems/{code.lower()}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": _DEFAULT_DESCRIPTIONS.get(status, HTTPStatus(status).description),
        "code": code,
        "instance": path,
    }
    if status == 422:
        example["title"] = "Invalid request"
        example["detail"] = "invalid value for query.limit"
        example["errors"] = [
            {"field": "query.limit", "message": "Input should be less than or equal to 500"}
        ]
    return example


def _problem_statuses(path: str, method: str, operation: Document) -> set[int]:
    """The problems this operation can answer with, from what it takes and who may call it."""
    statuses = {500}
    if path not in _HEALTH_PATHS:
        statuses.add(503)  # every other operation reads the database
    params = operation.get("parameters", [])
    if params or "requestBody" in operation:
        statuses.add(422)
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p["in"] == "path" or p["name"] == "tenant" for p in params):
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)  # a write can conflict with the current state (taken, stale, busy)
    return statuses


def _declare_problems(path: str, method: str, operation: Document) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    if path == "/readyz":
        declared.discard(503)  # a readiness report, not a problem
    for status in sorted(declared | _problem_statuses(path, method, operation)):
        answer = responses.setdefault(str(status), {})
        if status == 503 and path == "/readyz":
            continue
        description = answer.get("description")
        if not description or description in ("None", "Validation Error"):
            answer["description"] = _DEFAULT_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
        answer["content"] = {
            PROBLEM_JSON: {"schema": _PROBLEM_REF, "example": problem_example(status, path)}
        }
        if status == 503:
            answer["headers"] = _RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def _example_for(schema: Document) -> Any:
    """The example of a (possibly referenced, possibly array) schema; None if there is none."""
    if "$ref" in schema:
        return SCHEMA_EXAMPLES.get(schema["$ref"].removeprefix(_REF))
    if schema.get("type") == "array" and "items" in schema:
        item = _example_for(schema["items"])
        return None if item is None else [item]
    if "examples" in schema:
        return schema["examples"][0]
    for option in schema.get("anyOf", []):  # an optional body: the example of what it may be
        if option.get("type") != "null":
            return _example_for(option)
    return None


def _attach_examples(operation: Document) -> None:
    own = OPERATION_EXAMPLES.get(base_operation(operation["operationId"]), {})
    bodies: list[tuple[str, Document]] = []
    if "requestBody" in operation:
        bodies.append(("request", operation["requestBody"]))
    for status, answer in operation.get("responses", {}).items():
        if status.startswith("2"):
            bodies.append((status, answer))
    for key, body in bodies:
        for media_type, content in body.get("content", {}).items():
            if "example" in content or "examples" in content:
                continue
            example = own.get(key, own.get(media_type))
            if example is None:
                example = _example_for(content.get("schema", {}))
            if example is not None:
                content["example"] = example


def _attach_schema_examples(schemas: Document) -> None:
    for name, example in SCHEMA_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]


def complete(document: Document) -> Document:
    """Return *document* with the problem answers and the examples every operation shares."""
    doc = copy.deepcopy(document)
    schemas: Document = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    problem_schema = ProblemDetails.model_json_schema(ref_template=_REF + "{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["ProblemDetails"] = problem_schema
    _inline_flow_schema(doc, schemas)
    _attach_schema_examples(schemas)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            _declare_problems(path, method, operation)
            _attach_examples(operation)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""
    build: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
