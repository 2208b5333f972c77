"""Pure recording rules: retention horizon, names, FTP confinement, throttling, signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccbridge.domain.recordings.model import (
    BadRecordingNameError,
    RecordingPolicy,
    audio_bytes,
    recording_path,
)
from ccbridge.domain.recordings.passwords import hash_password, verify_password
from ccbridge.domain.recordings.retention import (
    kept_through,
    purge_after,
    started_before_for_purge,
)
from ccbridge.domain.recordings.signing import (
    BadSignatureError,
    DownloadGrant,
    LinkSigner,
    sign_report,
    verify_report,
)
from ccbridge.domain.recordings.throttle import LoginThrottle
from ccbridge.domain.recordings.wav import parse_data_size, tone, wav_header
from ccbridge.ftp.confinement import refused_reason


@pytest.mark.parametrize(
    ("started", "through", "after"),
    [
        ("2026-01-15T10:00", "2026-02-15", "2026-02-16T00:00"),
        ("2026-01-31T23:59", "2026-02-28", "2026-03-01T00:00"),
        ("2028-01-31T00:00", "2028-02-29", "2028-03-01T00:00"),
        ("2026-03-31T12:00", "2026-04-30", "2026-05-01T00:00"),
        ("2026-12-31T12:00", "2027-01-31", "2027-02-01T00:00"),
    ],
)
def test_one_calendar_month_clamped(started: str, through: str, after: str) -> None:
    at = datetime.fromisoformat(started).replace(tzinfo=UTC)
    assert kept_through(at, 1).isoformat() == through
    assert purge_after(at, 1) == datetime.fromisoformat(after).replace(tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),  # noqa: DTZ001
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),  # noqa: DTZ001
    st.integers(min_value=1, max_value=24),
)
def test_cutoff_agrees_with_purge_after(started: datetime, now: datetime, months: int) -> None:
    s, n = started.replace(tzinfo=UTC), now.replace(tzinfo=UTC)
    eligible = purge_after(s, months) <= n
    assert eligible == (s < started_before_for_purge(n, months))


def test_paths_are_generated_from_validated_ids_only() -> None:
    at = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    assert recording_path("t1", "1768000000.12", at) == "t1/2026/01/05/1768000000.12.wav"
    assert recording_path("t1", "1768000000.12", at, 2).endswith("1768000000.12-2.wav")
    for call_id in ("pbx-a-1768000000.12", "ccb-ivr-4f2a9c1e0b7d", "3f6c8a2e-1b7d-4c9e-a0f2-9d8e"):
        # systemname-prefixed Linkedids and Originate ChannelIds are recordable too
        assert recording_path("t1", call_id, at) == f"t1/2026/01/05/{call_id}.wav"
    bad = [
        ("../t2", "1.2"),
        ("t1", "../../etc/passwd"),
        ("t1", "1.2\r\nX: y"),
        ("t1", ".hidden"),
        ("t1", "a/b"),
        ("t1", "x" * 65),  # wider than the call_id columns
        ("t1", ""),
    ]
    for tenant, call_id in bad:
        with pytest.raises(BadRecordingNameError):
            recording_path(tenant, call_id, at)


def test_policy_records_only_listed_groups() -> None:
    assert RecordingPolicy("t1").records("t1-sales")
    only = RecordingPolicy("t1", auto_record_groups=("t1-vip",))
    assert only.records("t1-vip")
    assert not only.records("t1-sales")
    assert not RecordingPolicy("t1", auto_record=False).records("t1-vip")


def test_header_only_wav_has_no_audio() -> None:
    assert audio_bytes(0) == 0
    assert audio_bytes(44) == 0
    pcm = tone(0.5)
    assert len(pcm) == 8000
    assert parse_data_size(wav_header(len(pcm))) == len(pcm)
    assert tone(0.1, silent=True) == b"\x00" * 1600


@pytest.mark.parametrize(
    "arg",
    ["../x", "a/../../b", "..", "%2e%2e/x", "..%2fx", "%c0%ae%c0%ae/x", "..\\x", "a\x00b", "a\nb"],
)
def test_traversal_arguments_are_refused(arg: str) -> None:
    assert refused_reason(arg) is not None


@pytest.mark.parametrize("arg", ["/2026/01/10/1.2.wav", "2026", "/", "x..wav", "a.b"])
def test_ordinary_paths_pass(arg: str) -> None:
    assert refused_reason(arg) is None


def test_throttle_locks_after_failures_and_expires() -> None:
    t = [0.0]
    throttle = LoginThrottle(lambda: t[0], max_failures=3, window=60, lockout=120)
    for _ in range(3):
        assert not throttle.locked("user:a")
        throttle.failed("user:a", "ip:1")
    assert throttle.locked("user:a")
    assert throttle.locked("ip:1")
    assert not throttle.locked("user:b")
    t[0] = 121
    assert not throttle.locked("user:a")


def test_signed_links_bind_tenant_recording_and_expiry() -> None:
    signer = LinkSigner(b"k" * 32)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    grant = DownloadGrant("t1", "abc", int((now + timedelta(minutes=5)).timestamp()))
    sig = signer.sign(grant)
    signer.verify(grant, sig, now)
    for forged in (
        DownloadGrant("t2", "abc", grant.expires),
        DownloadGrant("t1", "abd", grant.expires),
    ):
        with pytest.raises(BadSignatureError):
            signer.verify(forged, sig, now)
    with pytest.raises(BadSignatureError, match="expired"):
        signer.verify(grant, sig, now + timedelta(minutes=5))


@pytest.mark.parametrize("forged", ["é" * 43, "\u00a0", "签名", "\udcff"])
def test_a_non_ascii_signature_is_refused_not_a_crash(forged: str) -> None:
    signer = LinkSigner(b"k" * 32)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    grant = DownloadGrant("t1", "abc", int((now + timedelta(minutes=5)).timestamp()))
    with pytest.raises(BadSignatureError):
        signer.verify(grant, forged, now)


def test_report_signature_and_passwords() -> None:
    manifest = {"tenant": "t9", "recordings": [{"id": "a", "sha256": "00"}], "n": 1}
    sig = sign_report(b"key", manifest)
    assert verify_report(b"key", dict(reversed(list(manifest.items()))), sig)
    assert not verify_report(b"key", {**manifest, "n": 2}, sig)
    assert not verify_report(b"other", manifest, sig)
    stored = hash_password("s3cret-pw")
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret-pw", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("s3cret-pw", "garbage")
