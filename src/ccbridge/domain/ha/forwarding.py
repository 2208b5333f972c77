"""Where a request that only the PBX owner can serve goes: here, the owner, or nowhere yet.

Call control, seat commands and the live wallboard need the owner's AMI session and its
in-memory call state. Behind a load balancer any node receives them; a standby forwards each
one once to the address the owner wrote in its lease row (ADR 0031). A request that was
already forwarded is never forwarded again: ownership moved while it travelled, and the client
retries (with the same ``Idempotency-Key``) rather than the nodes passing it round.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class OwnerAddress:
    """The live owner of a PBX as its lease row names it."""

    node: str
    epoch: int
    url: str | None


@dataclass(frozen=True, slots=True)
class ServeHere:
    """This node owns the PBX: handle the request."""


@dataclass(frozen=True, slots=True)
class ForwardTo:
    """Another node owns the PBX: send the request there once."""

    owner: OwnerAddress
    url: str


@dataclass(frozen=True, slots=True)
class NoOwner:
    """Nobody can serve it now (a takeover is under way); ``reason`` says why, for the client."""

    reason: str


Route = ServeHere | ForwardTo | NoOwner


def route_owner_request(
    *,
    this_node: str,
    owns_pbx: bool,
    owner: OwnerAddress | None,
    forwarded_by: str | None,
) -> Route:
    """Decide where one owner-only request is served."""
    if owns_pbx:
        return ServeHere()
    if forwarded_by:
        return NoOwner(f"forwarded by {forwarded_by}, but this node no longer owns the PBX")
    if owner is None:
        return NoOwner("no node owns the PBX right now (a takeover is under way)")
    if owner.node == this_node:
        return NoOwner("this node's term has ended and no other node has taken the PBX yet")
    if not owner.url or not is_api_address(owner.url):
        return NoOwner(f"the owner {owner.node} has not published its API address")
    return ForwardTo(owner, owner.url.rstrip("/"))


def is_api_address(url: str) -> bool:
    """An absolute ``http``/``https`` URL with a host and no path, query or credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    del port  # parsed only to reject a bad one
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and parts.username is None
        and parts.password is None
    )
