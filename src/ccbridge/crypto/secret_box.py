"""AES-256-GCM for secrets stored in the database (export passwords), with key rotation.

A token is ``v1.<kid>.<base64url(nonce | ciphertext | tag)>``: ``kid`` names the key (the first
8 hex digits of SHA-256 of the derived key), so old keys can stay in the ring for decryption
while every new write uses the current one. The caller's *context* (e.g. the tenant) is the
associated data, so a token copied into another tenant's row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1"
_NONCE = 12


class SecretDecryptError(ValueError):
    """A stored token that no key of the ring opens (unknown key, tampered, wrong context)."""


def _derive(secret: str) -> bytes:
    """A 256-bit AES key from the configured secret string (any length, 32+ in prod)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ccbridge", info=b"secrets-at-rest")
    return hkdf.derive(secret.encode())


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    """Implements ``services.recording_ports.SecretCipher``: encrypt with the current key,
    decrypt with any key of the ring."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        """*current* encrypts; *old* keys (rotation) only decrypt."""
        if not current:
            raise ValueError("the secrets key must not be empty")
        keys = [_derive(s) for s in (current, *old) if s]
        self._current = keys[0]
        self._kid = _kid(self._current)
        self._ring = {_kid(k): AESGCM(k) for k in reversed(keys)}

    @staticmethod
    def is_token(value: str) -> bool:
        """Say whether *value* looks like one of our tokens (not legacy plain text)."""
        parts = value.split(".")
        return len(parts) == 3 and parts[0] == PREFIX and len(parts[1]) == 8

    def is_current(self, token: str) -> bool:
        """Say whether *token* was written with the current key (else: re-encrypt it)."""
        return self.is_token(token) and token.split(".")[1] == self._kid

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt *plaintext* bound to *context*; a fresh random nonce every time."""
        nonce = os.urandom(_NONCE)
        sealed = self._ring[self._kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}.{self._kid}.{_b64(nonce + sealed)}"

    def decrypt(self, token: str, context: str) -> str:
        """Open *token*; raise :class:`SecretDecryptError` when no key of the ring can."""
        if not self.is_token(token):
            raise SecretDecryptError("not an encrypted secret")
        _, kid, body = token.split(".")
        aead = self._ring.get(kid)
        if aead is None:
            raise SecretDecryptError(
                f"encrypted with an unknown key {kid}; add it to CCBRIDGE_SECRETS_OLD_KEYS"
            )
        try:
            raw = _unb64(body)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretDecryptError("the encrypted secret does not open (tampered?)") from exc
