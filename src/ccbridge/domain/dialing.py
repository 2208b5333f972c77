"""Outbound dialling rights of a tenant: its seat kinds and its dial policy (pure, stdlib only).

Only inbound+outbound seats may dial out or transfer out (SEAT-01/02); where they may dial is the
tenant's dial policy (SEAT-19: no personal calls; SEC-01: no resold telecom services). A policy
is two prefix lists; the longest matching prefix decides, and a tie goes to ``deny``. A number
that matches no prefix is refused: the allow list is an allow list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ccbridge.domain.agents.policy import RefusalCode, Refused
from ccbridge.domain.leases.model import CAPABILITIES, Capability, SeatKind

PREFIX_RE = re.compile(r"^\+?[0-9]{1,15}$|^\+$")
"""A dial prefix: digits, optionally after ``+`` (``+`` alone matches every E.164 number)."""
MAX_PREFIXES = 100

DEFAULT_ALLOW: tuple[str, ...] = ("0", "1", "400", "800")
"""National numbers: fixed lines with the trunk 0, mobiles and short codes (1…), 400/800."""
DEFAULT_DENY: tuple[str, ...] = ("00", "+", "160", "168")
"""International (``00`` and ``+``) and premium-rate information services (160…, 168…)."""


@dataclass(frozen=True, slots=True)
class DialPolicy:
    """Where a tenant's calls may be dialled out to: allowed and denied number prefixes."""

    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = DEFAULT_DENY

    def __post_init__(self) -> None:
        """Refuse a malformed prefix or an oversized list (the API checks first, with paths)."""
        for prefixes in (self.allow, self.deny):
            if len(prefixes) > MAX_PREFIXES:
                raise ValueError(f"at most {MAX_PREFIXES} prefixes per list")
            bad = [p for p in prefixes if not PREFIX_RE.fullmatch(p)]
            if bad:
                raise ValueError(f"not a dial prefix: {bad[0]!r}")

    def refusal(self, number: str) -> Refused | None:
        """Say why ``number`` may not be dialled under this policy, or ``None`` when it may."""
        allowed = _longest(self.allow, number)
        denied = _longest(self.deny, number)
        if denied is not None and (allowed is None or len(denied) >= len(allowed)):
            return Refused(
                RefusalCode.NUMBER_NOT_ALLOWED,
                f"{number} starts with {denied!r}, which the tenant's dial policy denies",
            )
        if allowed is None:
            return Refused(
                RefusalCode.NUMBER_NOT_ALLOWED,
                f"{number} matches no prefix the tenant's dial policy allows",
            )
        return None


def _longest(prefixes: tuple[str, ...], number: str) -> str | None:
    matching = [p for p in prefixes if number.startswith(p)]
    return max(matching, key=len) if matching else None


@dataclass(frozen=True, slots=True)
class OutboundRights:
    """What a tenant may dial now: its dial policy and the seats it leases by kind."""

    policy: DialPolicy
    seats: Mapping[SeatKind, int]

    def seat_refusal(self) -> Refused | None:
        """Refuse any transfer out when no leased seat kind includes it (inbound-only tenant)."""
        if any(n > 0 and Capability.TRANSFER_OUT in CAPABILITIES[k] for k, n in self.seats.items()):
            return None
        return Refused(
            RefusalCode.CAPABILITY_NOT_LEASED,
            "transfer to an external number needs inbound+outbound seats; "
            "the tenant's lease in force has none",
        )

    def refusal(self, number: str) -> Refused | None:
        """Say why the tenant may not transfer a call out to ``number`` now, or ``None``."""
        return self.seat_refusal() or self.policy.refusal(number)


NO_OUTBOUND = OutboundRights(DialPolicy(), {})
"""A tenant without a lease in force: nothing may be dialled out."""
