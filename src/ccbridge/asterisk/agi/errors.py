"""FastAGI errors, one class per failure an AGI handler must handle differently."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccbridge.asterisk.agi.result import AgiResult


class AgiError(Exception):
    """Root of every FastAGI error, so a handler can catch them all at once."""


class AgiHangup(AgiError):
    """Raised when the channel is gone: Asterisk sent ``HANGUP``, answered 511, or closed.

    When ``HANGUP`` arrived while a command was in flight, that command's reply (read to keep
    the stream in step) is kept in ``reply``.
    """

    def __init__(self, message: str, reply: AgiResult | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiInjectionError(AgiError, ValueError):
    """Raised before anything is written when an argument holds CR, LF or NUL."""


class AgiTimeoutError(AgiError, TimeoutError):
    """Raised when Asterisk does not answer a command in time; the session is then unusable."""


class AgiProtocolError(AgiError):
    """Raised when Asterisk's reply is not an AGI result line."""


class AgiCommandError(AgiError):
    """Raised when Asterisk rejects a command (510 unknown command, 520 bad syntax)."""

    def __init__(self, code: int, message: str, command: str = "") -> None:
        super().__init__(f"{command or 'AGI command'} rejected ({code}): {message}")
        self.code = code
        self.message = message
        self.command = command
