"""The error root and stable error codes that the HTTP API documents."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable codes; part of the public API."""

    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    VALIDATION = "VALIDATION"
    ASTERISK_UNAVAILABLE = "ASTERISK_UNAVAILABLE"
    PBX_CONFIG_MISMATCH = "PBX_CONFIG_MISMATCH"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    PBX_OWNER_TIMEOUT = "PBX_OWNER_TIMEOUT"
    INTERNAL = "INTERNAL"


class CcbridgeError(Exception):
    """Raised for every expected failure; maps to an RFC 9457 problem response."""

    code: ErrorCode = ErrorCode.INTERNAL
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFoundError(CcbridgeError):
    """Raised when an object does not exist or belongs to another tenant."""

    code = ErrorCode.NOT_FOUND
    status = 404
    title = "Not found"


class ConflictError(CcbridgeError):
    """Raised when a request conflicts with the current state."""

    code = ErrorCode.CONFLICT
    status = 409
    title = "Conflict"


class AsteriskUnavailableError(CcbridgeError):
    """Raised when the PBX cannot be reached for a telephony action."""

    code = ErrorCode.ASTERISK_UNAVAILABLE
    status = 503
    title = "Asterisk unavailable"


class PbxConfigMismatchError(CcbridgeError):
    """Raised when the PBX, after a reload, does not report a queue ccbridge just configured."""

    code = ErrorCode.PBX_CONFIG_MISMATCH
    status = 502
    title = "PBX configuration mismatch"


class InvalidRequestError(CcbridgeError):
    """Raised when a request value is wrong in a way the schema cannot say (422, field named)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"
