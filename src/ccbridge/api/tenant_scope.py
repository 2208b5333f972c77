"""One convention for tenant scope: the path segment ``/api/v1/tenants/{tenant_id}/…``.

Most routes always named their tenant in the path; some (calls, events, webhooks, recordings,
the wallboard, the audit log) took ``?tenant=`` instead. Those handlers stay written once, with
an optional ``tenant`` parameter, and :func:`scope_by_path` registers each one twice:

* canonically under ``/api/v1/tenants/{tenant_id}`` + the old path, the tenant from the path
  (another tenant's answers 404, decided by ``require`` before the scope check);
* at the old path as a **deprecated** alias with ``?tenant=`` (also deprecated), unchanged for
  existing CRM clients: without it, a credential's own tenant. Where the unscoped path lists
  across tenants for the platform admin (calls, recordings, audit) it stays current; only its
  ``tenant`` parameter is deprecated.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.routing import APIRoute

API_ROOT = "/api/v1"
TENANT_ROOT = f"{API_ROOT}/tenants/{{tenant_id}}"
SCOPE_PARAMETER = "tenant"
TenantIdPath = Annotated[str, Path(max_length=64, description="The tenant (its id)")]
DeprecatedTenantQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        deprecated=True,
        description="Deprecated: name the tenant in the path, `/api/v1/tenants/{tenant_id}/…`",
    ),
]
Handler = Callable[..., Awaitable[Any]]
ALIAS_SUFFIXES = ("_legacy", "_all_tenants")
"""Operation-id suffixes of the unscoped twin of a path-scoped operation."""


def base_operation(operation_id: str) -> str:
    """The path-scoped operation an unscoped twin stands for (itself if it is one)."""
    for suffix in ALIAS_SUFFIXES:
        operation_id = operation_id.removesuffix(suffix)
    return operation_id


def _is_scoped(route: APIRoute) -> bool:
    """Whether the handler takes an optional ``tenant`` (a required one is part of a signed
    link, not a scope)."""
    param = inspect.signature(route.endpoint).parameters.get(SCOPE_PARAMETER)
    return param is not None and param.default is None


def _rebound(endpoint: Handler, tenant_in_path: bool) -> Handler:
    """*endpoint* with its ``tenant`` taken from the path (``tenant_id``) or a deprecated query."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    params = []
    for param in signature.parameters.values():
        if param.name != SCOPE_PARAMETER:
            params.append(param.replace(annotation=hints.get(param.name, param.annotation)))
        elif tenant_in_path:
            params.append(
                param.replace(name="tenant_id", annotation=TenantIdPath, default=param.empty)
            )
        else:
            params.append(param.replace(annotation=DeprecatedTenantQuery))
    # Keyword-only: a required path parameter may then follow parameters with defaults.
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    async def handler(**kwargs: Any) -> Any:
        if tenant_in_path:
            kwargs[SCOPE_PARAMETER] = kwargs.pop("tenant_id")
        return await endpoint(**kwargs)

    handler.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=hints.get("return", signature.return_annotation)
    )
    handler.__name__ = endpoint.__name__
    handler.__doc__ = endpoint.__doc__
    return handler


def _add(router: APIRouter, route: APIRoute, path: str, endpoint: Handler, **changes: Any) -> None:
    options: dict[str, Any] = {
        "response_model": route.response_model,
        "status_code": route.status_code,
        "tags": route.tags,
        "dependencies": route.dependencies,
        "summary": route.summary,
        "description": route.description,
        "response_description": route.response_description,
        "responses": route.responses,
        "deprecated": route.deprecated,
        "methods": route.methods,
        "operation_id": route.operation_id,
        "include_in_schema": route.include_in_schema,
        "response_class": route.response_class,
        "name": route.name,
        "openapi_extra": route.openapi_extra,
    }
    options.update(changes)
    router.add_api_route(path, endpoint, **options)


def scope_by_path(router: APIRouter, *, across_tenants: frozenset[str] = frozenset()) -> APIRouter:
    """Return *router* with every ``?tenant=`` route also under ``/api/v1/tenants/{tenant_id}``.

    *across_tenants* names the handlers whose unscoped path lists every tenant for the
    platform admin: that path stays current (operation id ``<name>_all_tenants``); every
    other old path becomes a deprecated alias (``<name>_legacy``).
    """
    scoped = APIRouter()
    for route in router.routes:
        if not isinstance(route, APIRoute) or not _is_scoped(route):
            scoped.routes.append(route)
            continue
        assert route.path.startswith(API_ROOT), route.path
        _add(
            scoped,
            route,
            TENANT_ROOT + route.path.removeprefix(API_ROOT),
            _rebound(route.endpoint, tenant_in_path=True),
        )
        kept = route.name in across_tenants
        suffix = ALIAS_SUFFIXES[1] if kept else ALIAS_SUFFIXES[0]
        _add(
            scoped,
            route,
            route.path,
            _rebound(route.endpoint, tenant_in_path=False),
            name=route.name + suffix,
            deprecated=route.deprecated or not kept,
        )
    return scoped
