"""AMI client errors, one class per failure a caller must handle differently.

Every one is an :class:`~ccbridge.errors.AsteriskUnavailableError`: services see only that
port-level error (they never import this package), and the API answers it once, as 503.
"""

from __future__ import annotations

from ccbridge.errors import AsteriskUnavailableError


class AmiError(AsteriskUnavailableError):
    """Root of every AMI client error, so callers can catch them all at once."""


class AmiNotConnected(AmiError):
    """Raised at once when an action is sent while not logged in (nothing is buffered)."""


class AmiDisconnected(AmiError):
    """Raised for an action in flight when the connection drops; it is never replayed."""


class AmiTimeout(AmiError, TimeoutError):
    """Raised when an action gets no (complete) answer within its timeout."""


class AmiAuthError(AmiError):
    """Raised when Asterisk rejects the login; the client backs off before retrying."""


class AmiProtocolError(AmiError):
    """Raised when the peer does not speak AMI (for example a wrong banner)."""


class AmiActionError(AmiError):
    """Raised when Asterisk answers ``Response: Error``; carries its ``Message``."""

    def __init__(self, message: str, action: str = "") -> None:
        super().__init__(f"{action or 'AMI action'} failed: {message}")
        self.message = message
        self.action = action


class AmiFenced(AmiNotConnected):
    """Raised at once when this node does not own the PBX (ADR 0026): nothing is written."""


class AmiRefused(AmiError):
    """Raised when the PBX answered but this node must not drive it (its identity check
    failed, ADR 0033): the session is closed, its events dropped, and login is retried."""
