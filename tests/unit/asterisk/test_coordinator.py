"""The PBX coordinator: one event sink, one batch per socket read, a fixed handler order,
and the login sequence in order (docs/adr/0020-pbx-coordinator.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Sequence

import pytest
from structlog.testing import capture_logs

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import AmiFields, EventFrame
from ccbridge.asterisk.coordinator import PbxCoordinator
from tests.support.mini_ami import MiniAmi, frame

Log = list[tuple[str, str, str]]


class Recorder:
    """A handler that notes (handler, event, Uniqueid) and the size of each batch."""

    def __init__(self, name: str, events: Collection[str], log: Log) -> None:
        self.name = name
        self.events = frozenset(events)
        self.log = log
        self.batches: list[int] = []
        self.resyncs = 0
        self.fail_on: str | None = None

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        self.batches.append(len(frames))
        for f in frames:
            if f.get("Uniqueid") == self.fail_on:
                raise RuntimeError("handler bug")
            self.log.append((self.name, f.event or "", f.get("Uniqueid") or ""))

    async def resync(self, client: AmiClient) -> None:
        self.resyncs += 1
        self.log.append((self.name, "resync", ""))


def config(port: int) -> AmiConfig:
    return AmiConfig(
        host="127.0.0.1",
        port=port,
        username="ccbridge",
        secret="ccbridge-secret",
        connect_timeout=1.0,
        action_timeout=1.0,
        backoff_initial=0.01,
        backoff_max=0.05,
    )


@pytest.fixture
async def server() -> AsyncIterator[MiniAmi]:
    srv = await MiniAmi().start()
    yield srv
    await srv.close()


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[None]:
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(2)
        yield
    finally:
        await client.stop()
        async with asyncio.timeout(3):
            await task


async def wait_for(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(3):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def rig(client: AmiClient, log: Log) -> tuple[PbxCoordinator, Recorder, Recorder, Recorder]:
    calls = Recorder("calls", {"Newchannel", "AgentConnect", "Hangup"}, log)
    seats = Recorder("seats", {"AgentConnect"}, log)
    recordings = Recorder("recordings", {"AgentConnect", "Hangup"}, log)
    pbx = PbxCoordinator(client, calls=calls, seats=seats, recordings=recordings)
    pbx.attach()
    return pbx, calls, seats, recordings


async def test_one_read_is_one_batch_handed_to_calls_then_seats_then_recordings(
    server: MiniAmi,
) -> None:
    client = AmiClient(config(server.port))
    log: Log = []
    pbx, calls, seats, recordings = rig(client, log)
    async with running(client):
        log.clear()
        server.push(
            frame(("Event", "Newchannel"), ("Uniqueid", "1"))
            + frame(("Event", "VarSet"), ("Variable", "noise"), ("Uniqueid", "1"))
            + frame(("Event", "AgentConnect"), ("Uniqueid", "1"))
            + frame(("Event", "Hangup"), ("Uniqueid", "1"))
        )
        await wait_for(lambda: len(log) == 6)
    assert log == [
        ("calls", "Newchannel", "1"),
        ("calls", "AgentConnect", "1"),
        ("calls", "Hangup", "1"),
        ("seats", "AgentConnect", "1"),
        ("recordings", "AgentConnect", "1"),
        ("recordings", "Hangup", "1"),
    ]
    assert (calls.batches[-1], seats.batches[-1], recordings.batches[-1]) == (3, 1, 2)
    assert pbx.event_names == {"Newchannel", "AgentConnect", "Hangup"}
    assert client.status.events_skipped >= 1  # the VarSet no handler reads: never parsed


async def test_a_failing_handler_is_logged_and_the_others_still_run(server: MiniAmi) -> None:
    client = AmiClient(config(server.port))
    log: Log = []
    pbx, calls, _seats, _recordings = rig(client, log)
    calls.fail_on = "bad"
    with capture_logs() as logs:
        async with running(client):
            log.clear()
            server.push(
                frame(("Event", "AgentConnect"), ("Uniqueid", "bad"))
                + frame(("Event", "Hangup"), ("Uniqueid", "2"))
            )
            await wait_for(lambda: ("recordings", "Hangup", "2") in log)
            server.push(frame(("Event", "Newchannel"), ("Uniqueid", "3")))
            await wait_for(lambda: ("calls", "Newchannel", "3") in log)
            assert client.status.reconnects == 0
    assert ("seats", "AgentConnect", "bad") in log
    assert pbx.failures == 1
    assert [e["handler"] for e in logs if e["event"] == "pbx_handler_failed"] == ["Recorder"]


async def test_the_login_sequence_runs_the_calls_resync_then_each_step_in_order(
    server: MiniAmi,
) -> None:
    client = AmiClient(config(server.port))
    log: Log = []
    order: list[str] = []
    pbx, calls, _seats, _recordings = rig(client, log)

    def step(name: str) -> Callable[[AmiClient], asyncio.Future[None]]:
        async def run(_client: AmiClient) -> None:
            order.append(f"{name} after {calls.resyncs} resync")

        return run  # type: ignore[return-value]

    pbx.add_login_step(step("queue-config"))
    pbx.add_login_step(step("seat-restore"))
    async with running(client):
        assert order == ["queue-config after 1 resync", "seat-restore after 1 resync"]


def test_a_client_has_one_event_sink() -> None:
    client = AmiClient(config(1))
    PbxCoordinator(client).attach()
    with pytest.raises(RuntimeError, match="already has an event sink"):
        PbxCoordinator(client).attach()


def test_handlers_read_lazy_frames_like_parsed_messages() -> None:
    log: Log = []
    calls = Recorder("calls", {"Hangup"}, log)
    pbx = PbxCoordinator(AmiClient(config(1)), calls=calls)
    pbx.attach()
    pbx.on_events([EventFrame(b"Event: Hangup\r\nUniqueid: 7\r\nCause-txt: Normal", "Hangup")])
    assert log == [("calls", "Hangup", "7")]


async def test_a_sink_that_raises_is_logged_and_the_link_stays_up(server: MiniAmi) -> None:
    client = AmiClient(config(server.port))
    got: list[str] = []

    def sink(frames: list[EventFrame]) -> None:
        ids = [f.get("Uniqueid") or "" for f in frames]
        got.extend(ids)
        if "boom" in ids:
            raise RuntimeError("sink bug")

    client.set_event_sink({"Hangup"}, sink)
    with capture_logs() as logs:
        async with running(client):
            server.push(frame(("Event", "Hangup"), ("Uniqueid", "boom")))
            await wait_for(lambda: got == ["boom"])
            server.push(frame(("Event", "Hangup"), ("Uniqueid", "next")))
            await wait_for(lambda: got == ["boom", "next"])
            assert client.status.reconnects == 0
    assert [e["events"] for e in logs if e["event"] == "ami_event_sink_failed"] == [1]
