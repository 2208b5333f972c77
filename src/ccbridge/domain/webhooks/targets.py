"""The form of a webhook URL; which addresses it may reach is ``domain.egress``'s decision."""

from __future__ import annotations

from urllib.parse import urlsplit

from ccbridge.domain.egress import EgressRefusedError

TargetRefusedError = EgressRefusedError
"""Kept for callers: a refused webhook URL or address."""


def check_url(url: str, *, allow_http: bool) -> tuple[str, int]:
    """Validate the URL's form; return ``(host, port)``. HTTPS only unless *allow_http*."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        raise TargetRefusedError("webhook URLs must use https", category="scheme")
    if not parts.hostname:
        raise TargetRefusedError("webhook URL has no host", category="form")
    if parts.username or parts.password:
        raise TargetRefusedError("webhook URL must not carry credentials", category="form")
    if any(ch in url for ch in "\r\n\x00"):
        raise TargetRefusedError("webhook URL contains control characters", category="form")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefusedError("webhook URL has a bad port", category="form") from None
    return parts.hostname, port
