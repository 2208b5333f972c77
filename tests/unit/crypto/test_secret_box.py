"""At-rest encryption of export passwords: round trip, tenant binding, tampering, rotation."""

from __future__ import annotations

import pytest

from ccbridge.crypto.secret_box import SecretBox, SecretDecryptError

OLD = "old-secrets-key-0123456789abcdef0123"
NEW = "new-secrets-key-fedcba9876543210fedc"


def test_round_trip_is_bound_to_its_context_and_never_shows_the_plaintext() -> None:
    box = SecretBox(NEW)
    token = box.encrypt("client-pw", "t1")
    assert "client-pw" not in token
    assert SecretBox.is_token(token)
    assert box.encrypt("client-pw", "t1") != token  # a fresh nonce every time
    assert box.decrypt(token, "t1") == "client-pw"
    with pytest.raises(SecretDecryptError):
        box.decrypt(token, "t2")  # copied into another tenant's row: does not open
    head, kid, body = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(SecretDecryptError, match="tampered"):
        box.decrypt(f"{head}.{kid}.{flipped}", "t1")
    assert not SecretBox.is_token("client-pw")


def test_rotation_old_keys_decrypt_new_key_encrypts() -> None:
    old_token = SecretBox(OLD).encrypt("client-pw", "t1")
    rotated = SecretBox(NEW, [OLD])
    assert rotated.decrypt(old_token, "t1") == "client-pw"
    assert not rotated.is_current(old_token)
    assert rotated.is_current(rotated.encrypt("client-pw", "t1"))
    with pytest.raises(SecretDecryptError, match="CCBRIDGE_SECRETS_OLD_KEYS"):
        SecretBox(NEW).decrypt(old_token, "t1")  # old key dropped too early: says what to do
