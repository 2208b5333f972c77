"""The recordings handler keeps the PBX's MixMonitor starts, stops and answers in order."""

from __future__ import annotations

import asyncio
import contextlib

from ccbridge.asterisk.ami.codec import EventFrame
from ccbridge.asterisk.recording_control import AmiRecordingFeed

CALLER = "PJSIP/trunk-00000001"


def _frame(event: str, *fields: tuple[str, str]) -> EventFrame:
    lines = [f"Event: {event}", f"Channel: {CALLER}", "Linkedid: 1768000000.12"]
    lines += [f"{key}: {value}" for key, value in fields]
    return EventFrame("\r\n".join(lines).encode(), event)


def _start(take: str) -> EventFrame:
    written = f"/srv/rec/t1/2026/12/03/1768000000.12{take}.wav"
    return _frame(
        "MixMonitorStart",
        ("ChanVariable", "CCB_TENANT=t1"),
        ("ChanVariable", f"MIXMONITOR_FILENAME={written}"),
    )


async def test_a_stop_never_overtakes_a_held_start_of_the_same_channel() -> None:
    """A recorded caller queued again: start (take 1), answer, stop, start (take q2), answer.
    While they wait (the database was away), the stop waits behind the first start, so the
    next take's start finds the channel free, and its answer finds it recorded."""
    seen: list[str] = []

    async def answer(call_id: str, channel: str) -> None:
        seen.append(f"answer {call_id}")

    async def pbx(call_id: str, channel: str, written: str, tenant: str | None) -> None:
        seen.append(f"pbx {written.rsplit('/', 1)[1]} {tenant}")

    feed = AmiRecordingFeed(
        answer,
        lambda channel: seen.append("stopped"),
        on_pbx_recording=pbx,
        on_hangup=lambda channel: seen.append("hung up"),
    )
    feed.on_events(
        [
            _start(""),
            _frame("AgentConnect"),
            _frame("MixMonitorStop"),
            _start("-q2"),
            _frame("AgentConnect"),
        ]
    )
    assert seen == []  # all held: nothing overtook the first start
    runner = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(2):
            while len(seen) < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        feed.on_events([_frame("Hangup")])
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert seen == [
        "pbx 1768000000.12.wav t1",
        "answer 1768000000.12",
        "stopped",
        "pbx 1768000000.12-q2.wav t1",
        "answer 1768000000.12",
        "hung up",
    ]


async def test_a_stop_with_nothing_held_is_told_at_once() -> None:
    stopped: list[str] = []

    async def answer(call_id: str, channel: str) -> None:
        return None

    feed = AmiRecordingFeed(answer, stopped.append)
    feed.on_events([_frame("MixMonitorStop")])
    assert stopped == [CALLER]


def _owner_up(sticky_file: str) -> EventFrame:
    """The owner's leg of the sticky ring going up, with the variables it inherited."""
    lines = [
        "Event: Newstate",
        "Channel: PJSIP/1101-00000002",
        "ChannelState: 6",
        "ChannelStateDesc: Up",
        "Uniqueid: 1768000000.13",
        "Linkedid: 1768000000.12",
        "Timestamp: 1768000000.500000",
        "ChanVariable: CCB_STICKY_AGENT=1101",
        "ChanVariable: CCB_STICKY_INTERFACE=PJSIP/1101",
        "ChanVariable: CCB_STICKY_QUEUE=t1-sales",
        f"ChanVariable: CCB_STICKY_FILE={sticky_file}",
    ]
    return EventFrame("\r\n".join(lines).encode(), "Newstate")


async def test_an_owners_leg_the_dialplan_records_starts_nothing_over_ami() -> None:
    """``CCB_STICKY_FILE`` on the leg: ``[ccbridge-record-answer]`` records it and its
    ``MixMonitorStart`` follows; without it, ccbridge records the leg on its answer."""
    answered: list[tuple[str, str]] = []

    async def answer(call_id: str, channel: str) -> None:
        answered.append((call_id, channel))

    feed = AmiRecordingFeed(answer, lambda channel: None)
    feed.on_events([_owner_up("/srv/rec/t1/2026/12/03/1768000000.12"), _owner_up("")])
    runner = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(2):
            while not answered:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert answered == [("1768000000.12", "PJSIP/1101-00000002")]
