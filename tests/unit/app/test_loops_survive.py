"""Every background loop that touches the database survives its failure (issue 13, item 1).

Before, one query failing in the webhook dispatcher ended the service's TaskGroup and with
it the API, AMI and FastAGI. Each loop is checked here against a store that fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from structlog.testing import capture_logs

from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.coordinator import EventHandler
from ccbridge.asterisk.recording_control import AmiRecordingFeed
from ccbridge.asterisk.seat_feed import AmiSeatFeed
from ccbridge.bootstrap import Service
from ccbridge.domain.time import SystemClock
from ccbridge.jobs.runner import JobRunner
from ccbridge.services.egress import EgressPolicy
from ccbridge.services.event_hub import EventHub
from ccbridge.services.events import EventService
from ccbridge.services.webhooks import WebhookDispatcher


def is_outage(exc: BaseException, _component: str) -> bool:
    return isinstance(exc, ConnectionError)


async def no_wait() -> None:
    await asyncio.sleep(0)


async def until(cond: Callable[[], bool]) -> None:
    """Wait for another task's progress (a hang guard, no timing asserted)."""
    async with asyncio.timeout(5):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


class FakeAmi:
    """Delivers events to a coordinator handler, one per batch, as the coordinator does."""

    def __init__(self) -> None:
        self.handler: EventHandler | None = None

    def emit(self, event: str, **headers: str) -> None:
        assert self.handler is not None
        if event in self.handler.events:
            self.handler.on_events([AmiMessage({"Event": event, **headers})])


async def test_seat_events_are_held_through_an_outage_and_applied_in_order() -> None:
    ami = FakeAmi()
    down = True
    applied: list[tuple[str, bool]] = []

    async def call_event(interface: str, started: bool) -> None:
        if down:
            raise ConnectionResetError("database went away")
        applied.append((interface, started))

    feed = AmiSeatFeed(call_event, on_error=is_outage, wait_ready=no_wait)
    ami.handler = feed
    task = asyncio.create_task(feed.run())
    try:
        ami.emit("AgentConnect", Interface="PJSIP/1101")
        ami.emit("AgentComplete", Interface="PJSIP/1101")
        await until(lambda: feed.held.retries >= 3)
        assert not task.done()
        down = False
        await until(lambda: len(applied) == 2)
        assert applied == [("PJSIP/1101", True), ("PJSIP/1101", False)]
    finally:
        task.cancel()


async def test_a_held_recording_start_is_skipped_when_its_channel_hung_up_meanwhile() -> None:
    ami = FakeAmi()
    down = True
    started: list[str] = []
    gone: list[str] = []

    async def on_answer(call_id: str, channel: str) -> None:
        if down:
            raise ConnectionRefusedError("database unreachable")
        started.append(call_id)

    feed = AmiRecordingFeed(on_answer, gone.append, on_error=is_outage, wait_ready=no_wait)
    ami.handler = feed
    task = asyncio.create_task(feed.run())
    try:
        ami.emit("AgentConnect", Linkedid="c1", Channel="PJSIP/1101-1")
        ami.emit("AgentConnect", Linkedid="c2", Channel="PJSIP/1102-1")
        await until(lambda: feed.held.retries >= 2)
        ami.emit("Hangup", Channel="PJSIP/1101-1")  # c1 ended while the database was away
        down = False
        await until(lambda: len(feed.held) == 0)
        assert started == ["c2"]  # c2 still talking: recorded (late); c1 is not started
        assert feed.skipped_gone == 1
        assert gone == ["PJSIP/1101-1"]
    finally:
        task.cancel()


class FailingWebhookStore:
    """Subscriptions that cannot be read ``failures`` times (the database is away)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0

    async def list(self) -> list[Any]:
        self.reads += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("database went away")
        return []


async def test_the_webhook_dispatcher_outlives_a_failing_subscription_read() -> None:
    """The failure that used to end the whole process."""
    store = FailingWebhookStore(failures=3)
    reported: list[str] = []

    def on_error(exc: BaseException, component: str) -> bool:
        reported.append(component)
        return True

    async def fast_sleep(_seconds: float) -> None:
        await asyncio.sleep(0)

    dispatcher = WebhookDispatcher(
        cast(Any, store),
        cast(Any, None),
        cast(EventService, None),
        cast(Any, None),
        EventHub(),
        SystemClock(),
        sleep=fast_sleep,
        refresh=0.001,
        egress=cast(EgressPolicy, None),
        on_error=on_error,
    )
    task = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: store.reads >= 5)
        assert not task.done()
        assert dispatcher.storage_errors == 3
        assert reported == ["webhook-dispatcher"] * 3
    finally:
        task.cancel()


async def test_a_job_failing_on_an_outage_is_a_warning_without_traceback() -> None:
    runner = JobRunner(max_backoff=0.001, on_error=is_outage)
    runs = 0

    async def purge() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConnectionRefusedError("database unreachable")

    runner.add("recording-purge", 0.001, purge)
    with capture_logs() as logs:
        task = asyncio.create_task(runner.run())
        try:
            await until(lambda: runs >= 2)
        finally:
            task.cancel()
    failures = [e for e in logs if e["event"].startswith("job_failed")]
    assert [(e["event"], e["log_level"]) for e in failures] == [
        ("job_failed_database_unavailable", "warning")
    ]


class _Http:
    """Stands in for uvicorn: serves until told to stop."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()

    async def serve(self) -> None:
        await self.stop.wait()


class _Stoppable:
    pending = 0

    async def stop(self) -> None:
        return None

    async def run_final(self) -> None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()


async def test_a_crashing_background_loop_does_not_end_the_service() -> None:
    """Service.run supervises each loop: one raising is restarted, the HTTP server (and
    AMI, FastAGI) keep running until a clean stop."""
    runs = 0

    class CrashingFeed:
        async def run(self) -> None:
            nonlocal runs
            runs += 1
            if runs <= 2:
                raise ConnectionResetError("database went away")
            await asyncio.Event().wait()

    http = _Http()
    stub = _Stoppable()
    service = Service(
        ami=cast(Any, stub),
        agi=cast(Any, stub),
        writer=cast(Any, stub),
        calls=cast(Any, None),
        repo=cast(Any, None),
        access=cast(Any, None),
        jobs=cast(Any, stub),
        http=cast(Any, http),
        seat_feed=cast(Any, CrashingFeed()),
    )
    running = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            while runs < 3:  # noqa: ASYNC110 (restarted twice with back-off)
                await asyncio.sleep(0.01)
        assert not running.done()
    finally:
        http.stop.set()
        async with asyncio.timeout(5):
            await running
