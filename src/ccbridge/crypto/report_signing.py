"""Ed25519 signatures of purge reports: the client verifies with our public key alone.

The signed bytes are ``b"purge-report|" + canonical_json(manifest)`` (sorted keys, no spaces,
UTF-8); the signature is base64 (standard alphabet) of the 64 raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ccbridge.domain.recordings.signing import report_bytes

ALGORITHM = "Ed25519"


def _private_key(secret: str) -> Ed25519PrivateKey:
    """A PEM private key as given, or one derived from any secret string (SHA-256 seed)."""
    if secret.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(secret.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the report signing key must be an Ed25519 private key")
        return key
    seed = hashlib.sha256(b"ccbridge-purge-report|" + secret.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_pem_of(key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM, what ``openssl pkey -pubin`` and every library read."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id_of(key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 of the raw public key (names the key in reports)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Ed25519ReportSigner:
    """Implements ``services.recording_ports.ReportSigner`` with one private key."""

    algorithm = ALGORITHM

    def __init__(self, secret: str) -> None:
        """*secret*: an Ed25519 private key in PEM, or a secret string to derive one from."""
        self._key = _private_key(secret)
        self._public = self._key.public_key()
        self.key_id = key_id_of(self._public)

    def public_key_pem(self) -> str:
        """The public key clients verify reports with."""
        return public_key_pem_of(self._public)

    def sign(self, manifest: dict[str, Any]) -> str:
        """Base64 Ed25519 signature over the report bytes of *manifest*."""
        return base64.b64encode(self._key.sign(report_bytes(manifest))).decode()

    def verify(self, manifest: dict[str, Any], signature: str) -> bool:
        """Say whether *signature* is ours over *manifest*."""
        return verify_with_public_key(self.public_key_pem(), manifest, signature)


def verify_with_public_key(public_key_pem: str, manifest: dict[str, Any], signature: str) -> bool:
    """Check a report with nothing but the public key (what a client does)."""
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), report_bytes(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
