"""Which PBX a tenant is placed on (issue 20 item 4, ADR 0033).

Every tenant's queues, members, numbers and calls live on one Asterisk server, named by the
PBX id its nodes are configured with (``CCBRIDGE_HA__PBX_ID``). A tenant can only be placed on
a PBX the database knows: the PBX of the node serving the request, or one with a lease row.
A placement that names no known PBX (a PBX id renamed in the settings, or tenants created
before placements existed) is an orphan; the serving node adopts orphans, so a database with
one PBX keeps every tenant on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ccbridge.errors import InvalidRequestError

PBX_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""A PBX id: safe in a lease row, a log line and a NOTIFY payload."""
PBX_ID_MAX_LENGTH = 64
DEFAULT_PBX_ID = "default"
"""The PBX of a node that does not name one."""
CLUSTER_LEASE = "*cluster"
"""The lease row of the work done once per database, whatever the PBX (retention, reports,
exports, webhooks); no PBX id can be it (``*`` is outside the pattern)."""

_PBX_ID_RE = re.compile(PBX_ID_PATTERN)


def is_pbx_id(value: str) -> bool:
    """True for a well-formed PBX id."""
    return 0 < len(value) <= PBX_ID_MAX_LENGTH and _PBX_ID_RE.fullmatch(value) is not None


def require_known_pbx(pbx_id: str, known: Iterable[str], *, field: str) -> str:
    """Return *pbx_id* when the database knows that PBX; 422 naming *field* and the known ones."""
    names = sorted(set(known))
    if not is_pbx_id(pbx_id) or pbx_id not in names:
        raise InvalidRequestError(
            f"unknown PBX {pbx_id!r}: a tenant can be placed on {', '.join(names)} "
            "(a PBX is known once a node serving it has started)",
            field=field,
        )
    return pbx_id


def pbx_leases(rows: Iterable[str]) -> frozenset[str]:
    """The PBX ids among lease rows (the cluster lease is no PBX)."""
    return frozenset(rows) - {CLUSTER_LEASE}


def default_placement(home: str | None, known: Iterable[str]) -> str | None:
    """Where a tenant goes when the request names no PBX: the serving node's own PBX; on a
    node that serves none (``ccbridge api``), the database's only PBX; else nowhere."""
    if home is not None:
        return home
    names = set(known)
    return names.pop() if len(names) == 1 else None


def orphaned_placements(in_use: Iterable[str], known: Iterable[str]) -> frozenset[str]:
    """The PBX ids tenants are placed on that name no known PBX (the serving node adopts them)."""
    return frozenset(in_use) - frozenset(known)


def forget_refusal(pbx: str, *, live_node: str | None, tenants: int) -> str | None:
    """Why the lease row of *pbx* must stay (``None``: it may be forgotten). A PBX is forgotten
    only once no node serves it and no tenant is placed on it: its row keeps it known, and
    keeps its system name from a new PBX (ADR 0033)."""
    if pbx == CLUSTER_LEASE:
        return f"{CLUSTER_LEASE} is the cluster lease, not a PBX"
    if live_node is not None:
        return f"node {live_node!r} serves PBX {pbx!r} now: stop its nodes first"
    if tenants:
        return (
            f"{tenants} tenant(s) are placed on PBX {pbx!r}: move them first "
            "(PATCH /api/v1/tenants/{tenant_id} with pbx_id)"
        )
    return None


@dataclass(frozen=True, slots=True)
class TenantActivity:
    """What a tenant has live on its PBX now, as the database records it."""

    seats_signed_in: int
    open_calls: int


def move_refusal(tenant_id: str, to_pbx: str, activity: TenantActivity) -> str | None:
    """Why the tenant cannot move to *to_pbx* now (``None``: it can). Its queue members and
    calls live on its current PBX, whose owner stops managing them at the move (ADR 0033)."""
    live = []
    if activity.seats_signed_in:
        live.append(f"{activity.seats_signed_in} seat(s) signed in")
    if activity.open_calls:
        live.append(f"{activity.open_calls} call(s) not ended")
    if not live:
        return None
    return (
        f"tenant {tenant_id!r} has {' and '.join(live)} on its current PBX: sign its seats out "
        f"and let its calls end before moving it to PBX {to_pbx!r}"
    )
