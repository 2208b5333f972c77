"""ADR 0022: ``ccbridge serve`` and ``ccbridge api`` run on uvloop unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from ccbridge.event_loop import loop_factory, run
from ccbridge.settings import Settings


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(("kind", "expected"), [("auto", uvloop.Loop), ("uvloop", uvloop.Loop)])
def test_auto_and_uvloop_run_on_uvloop(kind: str, expected: type) -> None:
    assert issubclass(run(_loop_type(), kind), expected)  # type: ignore[arg-type]


def test_asyncio_keeps_the_standard_loop() -> None:
    assert loop_factory("asyncio") is None
    assert not issubclass(run(_loop_type(), "asyncio"), uvloop.Loop)


def test_the_setting_defaults_to_auto_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().api.event_loop == "auto"
    monkeypatch.setenv("CCBRIDGE_API__EVENT_LOOP", "asyncio")
    assert Settings().api.event_loop == "asyncio"
