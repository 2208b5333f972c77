"""An AmiClient wired to a local fake PBX for tests: fast timeouts, run and stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig

TEST_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "username": "ccbridge",
    "secret": "secret",
    "connect_timeout": 0.5,
    "action_timeout": 2.0,
    "ping_interval": 60.0,
    "backoff_initial": 0.02,
    "backoff_max": 0.1,
}


def fake_pbx_client(
    port: int, tick: Callable[[float], Awaitable[None]] = asyncio.sleep, **overrides: Any
) -> AmiClient:
    """A client for the fake PBX on ``port``; keyword arguments override the fast defaults."""
    return AmiClient(AmiConfig(**{**TEST_DEFAULTS, "port": port, **overrides}), tick=tick)


@contextlib.asynccontextmanager
async def running(client: AmiClient, synced_within: float = 5.0) -> AsyncIterator[AmiClient]:
    """Run the client until it is logged in and resynced; stop it on the way out."""
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(synced_within)
        yield client
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
