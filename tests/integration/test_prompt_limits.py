"""Prompt upload limits: upload size (413 while streaming), decoded duration (422, probed
before converting), converted size (sox stopped at the cap, partial file deleted) and the
per-tenant storage quota (413), each named in the answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from ccbridge.media.sox import SoxPromptConverter
from ccbridge.services.ivr_ports import PromptLimits, PromptTooLargeError, PromptTooLongError
from tests.integration.test_ivr_api import BASE, World
from tests.integration.test_ivr_api import world as world

MIB = 1024 * 1024


@pytest.fixture(scope="session")
def ten_hours_of_silence(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A ~1 MB FLAC that decodes to 10 h of 8 kHz audio (576 MB as 16-bit WAV)."""
    sox = shutil.which("sox")
    if sox is None:
        pytest.skip("sox is not installed")
    path = tmp_path_factory.mktemp("audio") / "silence.flac"
    subprocess.run(
        [sox, "-n", "-r", "8000", "-c", "1", str(path), "trim", "0", "36000"], check=True
    )
    assert path.stat().st_size < 1.2 * MIB
    return path.read_bytes()


@pytest.fixture
def tone(tmp_path: Path, sox: str) -> bytes:
    """Half a second of 440 Hz at 44.1 kHz stereo (8 044 bytes once converted)."""
    path = tmp_path / "tone.wav"
    cmd = [sox, "-n", "-r", "44100", "-c", "2", "-b", "16", str(path)]
    subprocess.run([*cmd, "synth", "0.5", "sine", "440"], check=True)
    return path.read_bytes()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def _upload(world: World, prompt_id: str, name: str, data: bytes) -> httpx.Response:
    return await world.client.post(
        f"{BASE}/prompts",
        data={"prompt_id": prompt_id},
        files={"file": (name, data, "application/octet-stream")},
        headers=world.t1,
    )


async def test_a_small_flac_of_ten_hours_is_refused_and_writes_nothing(
    world: World, ten_hours_of_silence: bytes
) -> None:
    resp = await _upload(world, "silence", "silence.flac", ten_hours_of_silence)
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["errors"][0]["field"] == "file"
    assert "the limit is 600 s" in problem["detail"]
    assert _files(world.prompts_dir) == []


async def test_the_converted_size_is_capped_while_sox_runs(
    tmp_path: Path, ten_hours_of_silence: bytes
) -> None:
    converter = SoxPromptConverter(tmp_path / "prompts", timeout=120)
    with pytest.raises(PromptTooLargeError, match=f"exceed {MIB} bytes"):
        await converter.convert(
            "t1",
            ten_hours_of_silence,
            ".flac",
            max_duration_seconds=36_000,  # the probe lets it through: the pipe cap must hold
            max_output_bytes=MIB,
        )
    assert 0 < converter.peak_output_bytes <= MIB
    assert _files(tmp_path / "prompts") == []  # the partial WAV is deleted


async def test_a_header_that_lies_about_the_duration_is_trimmed_at_the_limit(
    tmp_path: Path, ten_hours_of_silence: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    converter = SoxPromptConverter(tmp_path / "prompts", timeout=120)

    async def one_second(source: Path) -> float:
        return 1.0

    monkeypatch.setattr(converter, "probe_seconds", one_second)
    _, size, duration_ms = await converter.convert(
        "t1",
        ten_hours_of_silence,
        ".flac",
        max_duration_seconds=30,
        max_output_bytes=20 * MIB,
    )
    assert duration_ms == 30_000  # sox's trim stops decoding at the limit
    assert size == 44 + 30 * 16_000
    assert converter.peak_output_bytes == size


async def test_an_upload_over_the_input_limit_is_refused_naming_it(
    world: World, tone: bytes
) -> None:
    world.service.prompt_limits = PromptLimits(max_input_bytes=4096)
    resp = await _upload(world, "big", "big.wav", tone)
    assert resp.status_code == 413, resp.text
    assert "4096 bytes" in resp.json()["detail"]
    assert _files(world.prompts_dir) == []
    # A body far over the limit is refused from its Content-Length, before it is read.
    huge = await _upload(world, "huge", "huge.wav", b"\0" * (4096 + 70 * 1024))
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["field"] == "file"


async def test_the_tenants_storage_quota_is_enforced(world: World, tone: bytes) -> None:
    world.service.prompt_limits = PromptLimits(quota_bytes=12_000)
    assert (await _upload(world, "one", "one.wav", tone)).status_code == 201
    second = await _upload(world, "two", "two.wav", tone)  # 8 044 + 8 044 > 12 000
    assert second.status_code == 413, second.text
    assert "quota of 12000 bytes" in second.json()["detail"]
    assert len(_files(world.prompts_dir)) == 1  # the refused conversion left nothing
    listed = (await world.client.get(f"{BASE}/prompts", headers=world.t1)).json()
    assert [p["prompt_id"] for p in listed] == ["one"]
    # The platform operator's per-tenant override raises it.
    world.service.prompt_limits = PromptLimits(quota_bytes=12_000, quota_overrides={"t1": 10**6})
    assert (await _upload(world, "two", "two.wav", tone)).status_code == 201


async def test_a_too_long_prompt_is_refused_before_conversion(tmp_path: Path, tone: bytes) -> None:
    converter = SoxPromptConverter(tmp_path / "prompts")
    with pytest.raises(PromptTooLongError, match="the limit is 0 s"):
        await converter.convert("t1", tone, ".wav", max_duration_seconds=0, max_output_bytes=MIB)
    assert converter.peak_output_bytes == 0
    assert _files(tmp_path / "prompts") == []
