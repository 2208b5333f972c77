"""Export passwords at rest across a key rotation: old keys decrypt, the start-up pass
re-encrypts under the new key, and an unreadable token never stops the other services."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.crypto.secret_box import SecretBox
from ccbridge.db.recording_tables import RecordingPolicyRow
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy

OLD = "old-secrets-key-0123456789abcdef0123"
NEW = "new-secrets-key-fedcba9876543210fedc"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def _token(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        token = await session.scalar(select(RecordingPolicyRow.export_password))
    assert token is not None
    return token


async def test_rotation_reencrypts_and_a_lost_key_degrades_to_one_failed_export(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    target = ExportTarget("ftp.example.com", 21, "acme", "client-pw", True, "/")
    await RecordingRepository(session_factory, cipher=SecretBox(OLD)).set_policy(
        RecordingPolicy("t1", retention_months=2, export_target=target), NOW
    )
    old_token = await _token(session_factory)

    rotating = RecordingRepository(session_factory, cipher=SecretBox(NEW, [OLD]))
    policy = await rotating.policy("t1")
    assert policy.export_target is not None
    assert policy.export_target.password == "client-pw"
    assert await rotating.reencrypt_secrets() == 1
    new_token = await _token(session_factory)
    assert new_token != old_token
    assert "client-pw" not in new_token
    assert await rotating.reencrypt_secrets() == 0  # all under the new key now

    rotated = RecordingRepository(session_factory, cipher=SecretBox(NEW))  # old key dropped
    policy = await rotated.policy("t1")
    assert policy.export_target is not None
    assert policy.export_target.password == "client-pw"

    lost = RecordingRepository(session_factory, cipher=SecretBox("some-other-key-entirely-0123"))
    assert await lost.reencrypt_secrets() == 0  # logged and kept, not raised
    assert await _token(session_factory) == new_token
    [still] = await lost.policies()  # retention keeps working for this tenant
    assert still.retention_months == 2
    assert still.export_target is not None
    assert still.export_target.password == ""
