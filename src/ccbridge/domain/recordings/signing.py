"""HMAC-signed download links; the bytes purge reports are signed over (stdlib only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class BadSignatureError(Exception):
    """A link or report whose signature, binding or expiry does not hold."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    """What a signed link allows: one recording of one tenant until ``expires`` (epoch s)."""

    tenant: str
    recording_id: str
    expires: int


class LinkSigner:
    """Signs ``tenant|recording|expires`` so a link works without an auth header, briefly."""

    def __init__(self, key: bytes) -> None:
        """Keep the key; it never leaves this object."""
        if len(key) < 16:
            raise ValueError("the link signing key must be at least 16 bytes")
        self._key = key

    def _mac(self, grant: DownloadGrant) -> str:
        msg = f"rec-dl|{grant.tenant}|{grant.recording_id}|{grant.expires}".encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    def sign(self, grant: DownloadGrant) -> str:
        """Return the signature for *grant*."""
        return self._mac(grant)

    def verify(self, grant: DownloadGrant, signature: str, now: datetime) -> None:
        """Raise :class:`BadSignatureError` unless *signature* matches and has not expired."""
        # Bytes, not str: compare_digest refuses non-ASCII str (a TypeError, i.e. a 500).
        given = signature.encode("utf-8", "replace")
        if not hmac.compare_digest(self._mac(grant).encode(), given):
            raise BadSignatureError("the link signature is not valid")
        if now.timestamp() >= grant.expires:
            raise BadSignatureError("the link has expired")


def canonical_json(data: Any) -> bytes:
    """The exact bytes a report signature covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def report_bytes(manifest: dict[str, Any]) -> bytes:
    """What a purge-report signature covers: a domain prefix and the canonical JSON."""
    return b"purge-report|" + canonical_json(manifest)


def is_legacy_report_signature(signature: str) -> bool:
    """Say whether *signature* is an HMAC hex digest (reports signed before Ed25519)."""
    return len(signature) == 64 and all(c in "0123456789abcdef" for c in signature)


def sign_report(key: bytes, manifest: dict[str, Any]) -> str:
    """Legacy HMAC-SHA256 (hex) over the report bytes (reports signed before Ed25519)."""
    return hmac.new(key, report_bytes(manifest), hashlib.sha256).hexdigest()


def verify_report(key: bytes, manifest: dict[str, Any], signature: str) -> bool:
    """Say whether *signature* is the legacy HMAC report signature of *manifest* under *key*."""
    return hmac.compare_digest(sign_report(key, manifest), signature)
