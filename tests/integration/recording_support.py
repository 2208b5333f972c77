"""Helpers for recording tests: a settable clock and real WAV files in a tenant tree."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ccbridge.crypto.secret_box import SecretBox
from ccbridge.domain.recordings.model import Recording, RecordingStatus, recording_path
from ccbridge.domain.recordings.wav import tone, wav_header
from ccbridge.storage.recording_files import LocalRecordingFiles

CIPHER = SecretBox("recording-tests-secrets-key-0123456789")
"""What the repositories of these tests encrypt export passwords with."""


@dataclass
class SettableClock:
    """A clock the test moves by hand."""

    at: datetime

    def now(self) -> datetime:
        return self.at


def write_wav(root: Path, relative: str, seconds: float = 1.0) -> bytes:
    """Write a real 8 kHz 16-bit mono WAV at *relative* under *root*; return its bytes."""
    samples = tone(seconds)
    data = wav_header(len(samples)) + samples
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


async def make_recording(
    files: LocalRecordingFiles,
    tenant: str,
    started_at: datetime,
    *,
    seconds: float = 1.0,
    agent_no: str = "1101",
    caller: str = "13800138000",
) -> Recording:
    """A finished, indexed-ready recording with a real file on disk."""
    call_id = f"{int(started_at.timestamp())}.{secrets.randbelow(10**6)}"
    rel = recording_path(tenant, call_id, started_at)
    write_wav(files.root, rel, seconds)
    facts = await files.inspect(rel)
    assert facts is not None
    return Recording(
        id=secrets.token_hex(16),
        tenant=tenant,
        call_id=call_id,
        path=rel,
        started_at=started_at,
        status=RecordingStatus.OK,
        agent_no=agent_no,
        skill_group=f"{tenant}-sales",
        caller=caller,
        callee="4008001234",
        ended_at=started_at,
        duration_ms=int(seconds * 1000),
        size_bytes=facts.size_bytes,
        sha256=facts.sha256,
    )
