"""Phone numbers to E.164 with Google's libphonenumber rules (``phonenumbers``); the original text
is always kept.

``phonenumbers`` is a pure library (data tables and parsing, no I/O), so the domain uses it
directly rather than behind a port (ADR 0014). A number is read in the tenant's region
(default ``CN``): ``13800138000`` → ``+8613800138000``, ``02087654321`` → ``+862087654321``,
``00`` or ``+`` for international numbers. A number libphonenumber does not consider valid
(extensions, short codes such as ``95588`` or ``110``, anonymous) has no E.164 form: ``e164`` is
``None`` and consumers use the original.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

DEFAULT_REGION = "CN"
E164_CACHE = 65_536
"""Distinct (number, region) pairs whose E.164 form is kept (a few MB at most)."""
REGION_RE = re.compile(r"^[A-Z]{2}$")
_ALLOWED = re.compile(r"^\+?[0-9\s\-().]{1,40}$")
CN_MOBILE_DIGITS = re.compile(r"1(?:[3-689][0-9]|7[0-8])[0-9]{8}")
"""Eleven plain digits of a Chinese mobile number, which read in CN parse to themselves."""


class NumberKind(StrEnum):
    """What sort of line a number reaches, as far as the dial policy cares."""

    FIXED = "fixed"
    MOBILE = "mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    OTHER = "other"


_KINDS = {
    phonenumbers.PhoneNumberType.FIXED_LINE: NumberKind.FIXED,
    phonenumbers.PhoneNumberType.MOBILE: NumberKind.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberKind.FIXED,
    phonenumbers.PhoneNumberType.TOLL_FREE: NumberKind.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE: NumberKind.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.SHARED_COST: NumberKind.SHARED_COST,
}


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number as the PBX gave it and, when parseable, its E.164 form."""

    original: str
    e164: str | None

    @property
    def best(self) -> str:
        """E.164 if known, else the original text."""
        return self.e164 or self.original


@dataclass(frozen=True, slots=True)
class DialledNumber:
    """A number an agent asked to dial, parsed in the tenant's region."""

    original: str
    e164: str
    national: str
    """The digits the tenant's trunk dials for a call in its own country (``0`` trunk prefix
    kept for fixed lines), or ``00`` + E.164 digits for an international call."""
    international: bool
    kind: NumberKind


def check_region(region: str) -> str:
    """Return *region* if it is an ISO 3166 alpha-2 code libphonenumber knows, else raise."""
    if not REGION_RE.fullmatch(region) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"not a region libphonenumber knows: {region!r}")
    return region


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    text = raw.strip()
    if region == "CN" and CN_MOBILE_DIGITS.fullmatch(text):
        # What ``phonenumbers.parse`` makes of these digits (nothing to strip: no ``+``, no
        # ``00``, no ``0``, no carrier code 11xx/12xx/179xx), without its five-fold cost;
        # most callers of a Chinese call centre are such numbers (docs/benchmarks.md, B8).
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(text))
        return parsed if phonenumbers.is_valid_number(parsed) else None
    if not text or not _ALLOWED.fullmatch(text):
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


@functools.lru_cache(maxsize=E164_CACHE)
def to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """Return the E.164 form of *raw* read in *region*, or ``None`` when it is not valid.

    Memoised: every journal event of a call carries its caller and callee, and parsing with
    libphonenumber took three quarters of deriving the events (docs/benchmarks.md, B8)."""
    parsed = _parse(raw, region)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_number(raw: str | None, region: str = DEFAULT_REGION) -> PhoneNumber | None:
    """Wrap *raw* (``None`` stays ``None``)."""
    if raw is None:
        return None
    return PhoneNumber(original=raw, e164=to_e164(raw, region))


def dialled_number(raw: str, region: str = DEFAULT_REGION) -> DialledNumber | None:
    """Parse a number to dial out; ``None`` when libphonenumber does not consider it valid."""
    parsed = _parse(raw, region)
    if parsed is None:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    home = phonenumbers.country_code_for_region(region)
    international = parsed.country_code != home
    if international:
        digits = "00" + e164[1:]
    else:
        digits = phonenumbers.national_significant_number(parsed)
        prefix = phonenumbers.ndd_prefix_for_region(region, True) or ""
        kind = phonenumbers.number_type(parsed)
        if prefix and kind == phonenumbers.PhoneNumberType.FIXED_LINE:
            digits = prefix + digits
    return DialledNumber(
        original=raw,
        e164=e164,
        national=digits,
        international=international,
        kind=_KINDS.get(phonenumbers.number_type(parsed), NumberKind.OTHER),
    )
