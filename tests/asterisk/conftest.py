"""The real-PBX tier: runs only when CCBRIDGE_TEST_AMI_HOST points at an Asterisk 22."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig

ENV = ("CCBRIDGE_TEST_AMI_HOST", "CCBRIDGE_TEST_AMI_USER", "CCBRIDGE_TEST_AMI_SECRET")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything here `asterisk` and skip it, with the reason, when no PBX is configured."""
    missing = [name for name in ENV if not os.environ.get(name)]
    for item in items:
        if "tests/asterisk/" not in str(item.fspath).replace("\\", "/"):
            continue
        item.add_marker(pytest.mark.asterisk)
        if missing:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"real-PBX tier: set {', '.join(missing)} (see docs/asterisk.md)"
                )
            )


@pytest.fixture
def ami_config() -> AmiConfig:
    return AmiConfig(
        host=os.environ["CCBRIDGE_TEST_AMI_HOST"],
        port=int(os.environ.get("CCBRIDGE_TEST_AMI_PORT", "5038")),
        username=os.environ["CCBRIDGE_TEST_AMI_USER"],
        secret=os.environ["CCBRIDGE_TEST_AMI_SECRET"],
    )


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[AmiClient]:
    """Run *client* against the real PBX for the block, then stop it."""
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await task


@pytest.fixture
async def real_ami(ami_config: AmiConfig) -> AsyncIterator[AmiClient]:
    async with running(AmiClient(ami_config)) as client:
        await client.wait_synced(10)
        yield client


GENERATED_ENV = "CCBRIDGE_TEST_GENERATED_DIR"


@pytest.fixture
def pbx_generated_dir() -> Path:
    """The folder the test PBX includes ``queues.conf`` from (absolute)."""
    value = os.environ.get(GENERATED_ENV)
    if not value:
        pytest.skip(
            f"set {GENERATED_ENV} to the folder the test PBX #tryincludes queues.conf from "
            "(docs/asterisk.md §5, step 10)"
        )
    path = Path(value)
    assert path.is_absolute(), f"{GENERATED_ENV} must be absolute, got {value!r}"
    path.mkdir(parents=True, exist_ok=True)
    return path
