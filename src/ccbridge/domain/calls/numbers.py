"""Phone numbers to E.164 where the form is unambiguous; the original text is always kept.

Rules (CN-first, no external data; documented in docs/events.md):

- ``+`` followed by 8-15 digits is already E.164 (kept, separators removed).
- ``00`` international prefix: ``00`` + country code … → ``+`` … .
- ``86`` + 11-digit mobile (``86 1XXXXXXXXXX``) → ``+861XXXXXXXXXX``.
- 11-digit mobile ``1[3-9]XXXXXXXXX`` → ``+86`` + number.
- 400/800 service numbers (10 digits, ``400…``/``800…``) → ``+86`` + number.
- Fixed lines with trunk prefix ``0`` + area code (``010``, ``02X``, ``0[3-9]XX``) and a
  7- or 8-digit subscriber number (10–12 digits in all) → ``+86`` without the ``0``.
- Anything else (extensions, short codes such as ``95588`` or ``110``, anonymous) has no
  E.164 form: ``e164`` is ``None`` and consumers use the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_CN_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_CN_SERVICE = re.compile(r"^[48]00[0-9]{7}$")
_CN_FIXED = re.compile(r"^0(10|2[0-9]|[3-9][0-9]{2})[0-9]{7,8}$")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number as the PBX gave it and, when parseable, its E.164 form."""

    original: str
    e164: str | None

    @property
    def best(self) -> str:
        """E.164 if known, else the original text."""
        return self.e164 or self.original


def to_e164(raw: str) -> str | None:
    """Return the E.164 form of *raw* under the module's rules, or ``None``."""
    digits = _SEPARATORS.sub("", raw.strip())
    if not digits:
        return None
    if digits.startswith("+"):
        return digits if _E164.match(digits) else None
    if not digits.isdigit():
        return None
    if digits.startswith("00"):
        candidate = "+" + digits[2:]
        return candidate if _E164.match(candidate) else None
    if digits.startswith("86") and _CN_MOBILE.match(digits[2:]):
        return "+" + digits
    if _CN_MOBILE.match(digits) or _CN_SERVICE.match(digits):
        return "+86" + digits
    if _CN_FIXED.match(digits):
        return "+86" + digits[1:]
    return None


def phone_number(raw: str | None) -> PhoneNumber | None:
    """Wrap *raw* (``None`` stays ``None``)."""
    if raw is None:
        return None
    return PhoneNumber(original=raw, e164=to_e164(raw))
