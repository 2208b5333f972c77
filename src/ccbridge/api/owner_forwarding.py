"""Forward requests only the PBX owner can serve from a standby to the owner (ADR 0031).

With several nodes behind one load balancer, a call-control POST or a seat command may land on
a standby, which has no AMI session and no live calls. The routes that need the owner declare
:data:`AT_PBX_OWNER` (or :data:`AT_PBX_OWNER_STREAM` for an event stream); on the owner, and
on a single node, that dependency does nothing. On a standby it sends the request as received
(method, path, query, headers, body) to the owner's published address, once, and answers with
the owner's answer. The owner authenticates and authorises it as any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from ccbridge.api.problems import problem
from ccbridge.domain.ha.forwarding import (
    ForwardTo,
    NoOwner,
    OwnerAddress,
    ServeHere,
    route_owner_request,
)
from ccbridge.errors import AsteriskUnavailableError, CcbridgeError, ErrorCode

log = structlog.get_logger(__name__)

FORWARDED_BY_HEADER = "x-ccbridge-forwarded-by"
"""Set on a forwarded request: the node that forwarded it (never forwarded twice)."""
SERVED_BY_HEADER = "x-ccbridge-served-by"
"""Set on a forwarded answer: the owner node that served it."""
TENANT_ID_MAX = 64
"""A longer ``tenant`` is no tenant's id: not looked up (the route refuses it)."""
MAX_FORWARDED_BODY = 1 << 20
"""Owner-only requests are small JSON commands; a larger body is refused, not relayed."""
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        FORWARDED_BY_HEADER,
    }
)
_NOT_RELAYED_BACK = _HOP_BY_HOP | {"content-encoding"}

OwnerLookup = Callable[[str], Awaitable[OwnerAddress | None]]
"""The live owner of a PBX by its lease row (``None``: nobody holds it now)."""
PlacementLookup = Callable[[str], Awaitable[str | None]]
"""The PBX a tenant is placed on (``None``: no such tenant; ADR 0033)."""


class NoPbxOwnerError(AsteriskUnavailableError):
    """No node can serve an owner-only request now: a takeover is under way, or the owner
    did not answer the forwarded request."""

    title = "PBX owner unavailable"


class PbxOwnerTimeoutError(CcbridgeError):
    """The owner took the forwarded request but did not answer in time: it may have acted."""

    code = ErrorCode.PBX_OWNER_TIMEOUT
    status = 504
    title = "PBX owner timed out"


class _Forwarded(Exception):
    """Carries the owner's answer out of the route's dependencies."""

    def __init__(self, response: Response) -> None:
        super().__init__("forwarded")
        self.response = response


class OwnerForwarder:
    """This node's view of who owns its PBX, and the HTTP client that reaches the owner."""

    def __init__(
        self,
        *,
        node: str,
        pbx: str,
        owns_pbx: Callable[[], bool],
        lookup: OwnerLookup,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        placement: PlacementLookup | None = None,
    ) -> None:
        """``owns_pbx`` is true while this node is in a term; ``lookup`` reads the lease row;
        ``placement`` names the PBX of the request's tenant, whose owner serves it (a tenant
        of another PBX goes to that PBX's owner; without it, every tenant is on *pbx*)."""
        self.node = node
        self.pbx = pbx
        self._placement = placement
        self._owns_pbx = owns_pbx
        self._lookup = lookup
        self._timeout = timeout
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self.forwarded = 0
        """Requests this node forwarded to an owner and relayed the answer of (a metric)."""
        self.failed = 0
        """Owner-only requests answered 503/504 here instead (a metric)."""

    async def close(self) -> None:
        """Close the connections to the owner."""
        await self._client.aclose()

    async def answer(self, request: Request, *, stream: bool) -> Response | None:
        """``None`` when this node serves the request; else the owner's answer."""
        pbx = await self._pbx_of(request)
        owns = pbx == self.pbx and self._owns_pbx()
        route = route_owner_request(
            this_node=self.node,
            owns_pbx=owns,
            owner=None if owns else await self._lookup(pbx),
            forwarded_by=request.headers.get(FORWARDED_BY_HEADER),
        )
        if isinstance(route, ServeHere):
            return None
        if isinstance(route, NoOwner):
            self.failed += 1
            raise NoPbxOwnerError(route.reason)
        try:
            return await self._forward(request, route, stream=stream)
        except CcbridgeError:
            self.failed += 1
            raise

    async def _pbx_of(self, request: Request) -> str:
        """The PBX of the tenant the request names (path, else ``?tenant=``); this node's
        PBX when it names none or an unknown one (the route then answers for itself)."""
        tenant = request.path_params.get("tenant_id") or request.query_params.get("tenant")
        if self._placement is None or not tenant or len(tenant) > TENANT_ID_MAX:
            return self.pbx
        return await self._placement(tenant) or self.pbx

    async def _forward(self, request: Request, route: ForwardTo, *, stream: bool) -> Response:
        body = await request.body()
        if len(body) > MAX_FORWARDED_BODY:
            return problem(
                413,
                "Request too large",
                f"an owner-only request body may hold at most {MAX_FORWARDED_BODY} bytes",
                code="HTTP_413",
                instance=request.url.path,
            )
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in _HOP_BY_HOP]
        headers.append((FORWARDED_BY_HEADER.encode(), self.node.encode()))
        target = f"{route.url}{request.url.path}"
        if request.url.query:
            target += f"?{request.url.query}"
        read = None if stream else self._timeout
        outgoing = self._client.build_request(
            request.method,
            target,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(self._timeout, read=read),
        )
        owner = route.owner.node
        try:
            reply = await self._client.send(outgoing, stream=True)
        except httpx.TimeoutException as exc:
            log.warning("owner_forward_timeout", owner=owner, path=request.url.path)
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise NoPbxOwnerError(f"the owner {owner} did not accept the request") from exc
            raise PbxOwnerTimeoutError(
                f"the owner {owner} did not answer within {self._timeout:g} s; it may have "
                "acted: retry with the same Idempotency-Key"
            ) from exc
        except httpx.HTTPError as exc:
            log.warning("owner_forward_failed", owner=owner, error=type(exc).__name__)
            raise NoPbxOwnerError(f"the owner {owner} could not be reached") from exc
        self.forwarded += 1
        log.info("owner_request_forwarded", owner=owner, path=request.url.path)
        relayed = {k: v for k, v in reply.headers.items() if k.lower() not in _NOT_RELAYED_BACK}
        relayed[SERVED_BY_HEADER] = owner
        if stream:
            return StreamingResponse(_relay(reply), status_code=reply.status_code, headers=relayed)
        try:
            content = await reply.aread()
        except httpx.TimeoutException as exc:
            raise PbxOwnerTimeoutError(
                f"the owner {owner} stopped answering; it may have acted: retry with the same "
                "Idempotency-Key"
            ) from exc
        finally:
            await reply.aclose()
        return Response(content, status_code=reply.status_code, headers=relayed)


async def _relay(reply: httpx.Response) -> AsyncIterator[bytes]:
    """The owner's stream, chunk by chunk, closed when the client goes."""
    try:
        async for chunk in reply.aiter_raw():
            yield chunk
    finally:
        await reply.aclose()


async def _at_owner(request: Request) -> None:
    await _route(request, stream=False)


async def _at_owner_stream(request: Request) -> None:
    await _route(request, stream=True)


async def _route(request: Request, *, stream: bool) -> None:
    forwarder: OwnerForwarder | None = getattr(request.app.state, "owner_forwarder", None)
    if forwarder is None:
        return
    answer = await forwarder.answer(request, stream=stream)
    if answer is not None:
        raise _Forwarded(answer)


AT_PBX_OWNER = Depends(_at_owner)
"""A route that needs the PBX owner (AMI, live calls): forwarded there from a standby."""
AT_PBX_OWNER_STREAM = Depends(_at_owner_stream)
"""The same for an event stream: relayed as it comes, without a read timeout."""


async def _send_forwarded(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Forwarded)
    return exc.response


def install_owner_forwarding(app: FastAPI, forwarder: OwnerForwarder | None) -> None:
    """Make this app forward owner-only routes (``None``: one node, nothing to forward)."""
    app.state.owner_forwarder = forwarder
    app.add_exception_handler(_Forwarded, _send_forwarded)
