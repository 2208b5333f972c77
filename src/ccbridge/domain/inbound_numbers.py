"""Inbound numbers (DIDs): which dialled numbers a tenant owns and where each one's calls go.

The platform admin assigns a number to one tenant (unique across tenants); the tenant's admin
maps it to an IVR flow or a skill group. Numbers are checked here, once, so nothing that is not
a plain dialled number reaches the database, the FastAGI route lookup or a channel variable.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ccbridge.domain.acd.membership import NAME_PATTERN

MAX_NUMBER_LENGTH = 16
"""``+`` and the 15 digits E.164 allows at most."""
_DIGITS = re.compile(r"^\+?[0-9]+$")
_TARGET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class NumberKind(StrEnum):
    """What kind of access number it is (licences differ: 400/800 vs 95xxx/96xxx vs a DID)."""

    TOLL_FREE_400 = "400"
    TOLL_FREE_800 = "800"
    SERVICE_95 = "95xxx"
    SERVICE_96 = "96xxx"
    DID = "did"


class TargetType(StrEnum):
    """Where a tenant admin sends a number's calls."""

    FLOW = "flow"
    """An IVR flow of the tenant (its active revision runs)."""
    GROUP = "group"
    """A skill group of the tenant (its routing policy, if any, applies)."""


class InvalidNumberError(ValueError):
    """Raised when a string is not an inbound number ccbridge can route; ``field`` names it."""

    def __init__(self, message: str, field: str = "number") -> None:
        super().__init__(message)
        self.field = field


def classify_number(number: str) -> NumberKind:
    """Return the kind of a valid number, else raise :class:`InvalidNumberError`.

    - 400 and 800 numbers: 10 digits, ``400…``/``800…`` (national form, no trunk prefix);
    - 95xxx and 96xxx service numbers: 5 to 8 digits starting ``95``/``96``;
    - any other DID: 3 to 15 digits, optionally E.164 with a leading ``+``.
    """
    if len(number) > MAX_NUMBER_LENGTH or not _DIGITS.fullmatch(number):
        raise InvalidNumberError(
            f"an inbound number is digits, optionally after a '+', at most "
            f"{MAX_NUMBER_LENGTH} characters; got {number[:20]!r}"
        )
    digits = number.removeprefix("+")
    if number.startswith("+"):
        if not 8 <= len(digits) <= 15 or digits.startswith("0"):
            raise InvalidNumberError("an E.164 number has 8-15 digits after '+', no leading 0")
        return NumberKind.DID
    if digits.startswith(("400", "800")) and len(digits) >= 7:
        if len(digits) != 10:
            raise InvalidNumberError(f"a {digits[:3]} number has 10 digits, got {len(digits)}")
        return NumberKind.TOLL_FREE_400 if digits.startswith("4") else NumberKind.TOLL_FREE_800
    if digits.startswith(("95", "96")) and len(digits) <= 8:
        if len(digits) < 5:
            raise InvalidNumberError(f"a {digits[:2]}xxx number has 5-8 digits")
        return NumberKind.SERVICE_95 if digits.startswith("95") else NumberKind.SERVICE_96
    if not 3 <= len(digits) <= 15:
        raise InvalidNumberError(f"a DID has 3-15 digits, got {len(digits)}")
    return NumberKind.DID


@dataclass(frozen=True, slots=True)
class NumberTarget:
    """A flow or a skill group of the number's tenant."""

    type: TargetType
    id: str

    def __post_init__(self) -> None:
        """Only plain ids: a group id becomes part of a queue name and a channel variable."""
        pattern = NAME_PATTERN if self.type is TargetType.GROUP else _TARGET_ID
        if not pattern.fullmatch(self.id) or len(self.id) > 64:
            raise InvalidNumberError(
                f"a {self.type.value} id is 1-64 letters, digits, '_' or '-'", "target.id"
            )


@dataclass(frozen=True, slots=True)
class InboundNumber:
    """A number assigned to a tenant, and where the tenant sends its calls (``None``: nowhere
    chosen yet; the tenant's IVR flow listing the number, if any, answers it)."""

    number: str
    tenant_id: str
    kind: NumberKind
    target: NumberTarget | None
    description: str
    assigned_at: datetime
    assigned_by: str
    updated_at: datetime
    updated_by: str
