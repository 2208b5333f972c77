"""Supervisor listen, whisper and barge on an agent's call (Asterisk ``ChanSpy``; pure)."""

from __future__ import annotations

import re
from enum import StrEnum


class SpyMode(StrEnum):
    """What the supervisor does on the call."""

    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


CHANSPY_OPTIONS: dict[SpyMode, str] = {
    SpyMode.LISTEN: "q",
    SpyMode.WHISPER: "qw",
    SpyMode.BARGE: "qB",
}
"""``q``: no beep or channel announcement; ``w``: the agent hears the supervisor (whisper);
``B``: both parties hear the supervisor (barge)."""

CHANNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/@;:+]{0,127}$")
"""An Asterisk channel name (``PJSIP/1101-0000001a``, ``Local/1101@ccbridge-agents-00000003;1``):
no comma, pipe, space, parenthesis or CR/LF, so it cannot add a ``ChanSpy`` argument."""


def check_channel(name: str) -> str:
    """Return *name* if it can only be read as one channel name, else raise ValueError."""
    if not CHANNEL_RE.fullmatch(name):
        raise ValueError(f"not a channel name ChanSpy can take: {name!r}")
    return name


def chanspy_data(channel: str, mode: SpyMode) -> str:
    """The ``ChanSpy`` application data: the spied channel (as a prefix) and the options."""
    return f"{check_channel(channel)},{CHANSPY_OPTIONS[mode]}"
