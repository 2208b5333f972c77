"""Which PBX made a call id, and which Asterisk ``systemname`` may join a database (ADR 0033).

Asterisk names every channel ``<epoch>.<n>``, prefixed with ``<systemname>-`` when
``asterisk.conf`` sets one, and a call's id is its ``Linkedid``. Several PBXs on one database
therefore need distinct system names, or their call ids collide; at most one PBX may have
none (plain ids never carry a ``-`` prefix, so they cannot collide with prefixed ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM_NAME_MAX_LENGTH = 40
"""Room for ``-<epoch>.<n>`` (up to 24 characters) within a 64-character call id."""
_SYSTEM_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PBX_SERIAL_RE = re.compile(r"\d+\.\d+")


@dataclass(frozen=True, slots=True)
class SystemNameClaim:
    """What the database said when a PBX's owner wrote the system name it read."""

    holder: str | None
    """Another PBX id that already has this system name (the claim failed), or ``None``."""
    other_pbxs: int
    """How many other PBXs the database knows (lease rows, the cluster's aside)."""


def made_by(system_name: str, call_id: str) -> bool:
    """True when a PBX with *system_name* names its channels like *call_id* (a call ccbridge
    placed with its own ``ChannelId`` is made by no PBX)."""
    if system_name:
        prefix = f"{system_name}-"
        if not call_id.startswith(prefix):
            return False
        call_id = call_id[len(prefix) :]
    return _PBX_SERIAL_RE.fullmatch(call_id) is not None


def shape_problem(system_name: str) -> str | None:
    """Why *system_name* cannot prefix ccbridge's call ids, or ``None`` (empty is fine)."""
    if not system_name:
        return None
    if len(system_name) > SYSTEM_NAME_MAX_LENGTH or not _SYSTEM_NAME_RE.fullmatch(system_name):
        return (
            f"the PBX's systemname {system_name!r} cannot prefix call ids: use up to "
            f"{SYSTEM_NAME_MAX_LENGTH} letters, digits, '.', '_' or '-', starting with a letter "
            "or a digit (asterisk.conf [options] systemname)"
        )
    return None


def describe(system_name: str) -> str:
    """A system name as an operator reads it in a log line or a readiness reason."""
    return repr(system_name) if system_name else "none (no systemname in asterisk.conf)"


def clash_reason(pbx: str, system_name: str, other_pbx: str) -> str:
    """Why PBX *pbx* may not act: PBX *other_pbx* of the same database has its system name."""
    return (
        f"PBX {pbx!r} has the same Asterisk systemname as PBX {other_pbx!r} on this database, "
        f"{describe(system_name)}, so their call ids would collide: give each PBX its own "
        "systemname in asterisk.conf and restart that Asterisk (docs/ha.md, 'Several PBXs'); "
        f"if PBX {other_pbx!r} is retired, remove it with `ccbridge pbx forget {other_pbx}`"
    )
