"""Refuse FTP path arguments that try to leave the tenant root, before the filesystem sees them."""

from __future__ import annotations

_BAD_CHARS = ("\x00", "\\", "%")


def refused_reason(arg: str) -> str | None:
    """Why a raw path argument is refused (``None``: acceptable).

    Refused: any ``..`` segment, percent-encoding (``%2e%2e``, ``%2f``, overlong ``%c0%ae``),
    backslashes (``..\\``), NUL and other control characters. Plain absolute paths are
    virtual (``/`` is the tenant root); symlinks are checked against the real path later.
    """
    if any(ch in arg for ch in _BAD_CHARS):
        return "encoded_or_escaped"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in arg):
        return "control_character"
    if any(part == ".." for part in arg.split("/")):
        return "dot_dot"
    return None
