"""Resync of live calls whole (issue 14 item 2): the agent leg in the caller's bridge is
attached from ``CoreShowChannels`` + ``QueueStatus``; the backfill runs first and may fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ccbridge.asterisk.ami.codec import AmiMessage, EventFrame
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.asterisk.resync_snapshot import agent_legs, member_interfaces, members_of
from ccbridge.domain.calls.events import AgentAnswered, CallerJoinedQueue, ChannelCreated
from ccbridge.domain.calls.model import CallRecord
from ccbridge.services.calls import CallTrackingService
from tests.support.captures import capture_messages

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def msg(**fields: str) -> AmiMessage:
    return AmiMessage(headers=dict(fields), fields=list(fields.items()))


def channel(name: str, uid: str, linked: str, bridge: str = "", duration: str = "00:00:10") -> Any:
    return msg(
        Event="CoreShowChannel",
        Channel=name,
        ChannelStateDesc="Up",
        CallerIDNum="13800138000",
        Exten="4008001234",
        Uniqueid=uid,
        Linkedid=linked,
        BridgeId=bridge,
        Duration=duration,
    )


def member(queue: str, name: str, location: str, in_call: bool) -> AmiMessage:
    return msg(
        Event="QueueMember",
        Queue=queue,
        Name=name,
        Location=location,
        InCall="1" if in_call else "0",
    )


CHANNELS = [
    channel("PJSIP/trunk-00000001", "1.1", "1.1", "b-1", "00:01:00"),
    channel("Local/2001@agents-00000001;1", "1.2", "1.1", "b-1", "00:00:30"),
    channel("Local/2001@agents-00000001;2", "1.3", "1.1", "b-2"),
    channel("PJSIP/2001-00000002", "1.4", "1.1", "b-2"),
    channel("PJSIP/trunk-00000003", "2.1", "2.1"),  # waiting in a queue: no bridge
    channel("PJSIP/conf-a-00000004", "3.1", "3.1", "b-3"),  # two non-members bridged
    channel("PJSIP/conf-b-00000005", "3.2", "3.1", "b-3"),
]
QUEUE_ITEMS = [
    msg(Event="QueueParams", Queue="t1-sales"),
    member("t1-sales", "1001 张伟", "Local/2001@agents", in_call=False),
    member("t1-support", "1001 张伟", "Local/2001@agents", in_call=True),
    member("t1-sales", "1002 李娜", "Local/2002@agents", in_call=False),
]


def test_the_agent_leg_in_the_callers_bridge_is_attached() -> None:
    members = members_of(QUEUE_ITEMS)
    (event,) = agent_legs(CHANNELS, members, lambda: NOW)
    assert isinstance(event, AgentAnswered)
    assert (event.linkedid, event.uniqueid, event.channel) == ("1.1", "1.1", "PJSIP/trunk-00000001")
    # The member is in two queues; the one it is in a call for is the call's.
    assert (event.queue, event.member_interface, event.member_name) == (
        "t1-support",
        "Local/2001@agents",
        "1001 张伟",
    )
    assert event.at == NOW - timedelta(seconds=30)
    assert member_interfaces(members) == {
        "1001 张伟": "Local/2001@agents",
        "1002 李娜": "Local/2002@agents",
    }


def test_nothing_is_attached_without_a_member_in_the_bridge() -> None:
    assert agent_legs(CHANNELS, [], lambda: NOW) == []


class Sink:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def submit(self, record: CallRecord) -> None:
        self.records.append(record)


class ListClient:
    """Answers the two list actions of a resync with canned items."""

    async def send_list_action(self, action: Any) -> tuple[None, list[AmiMessage]]:
        return None, CHANNELS if action.name == "CoreShowChannels" else QUEUE_ITEMS


class BrokenBackfill:
    def __init__(self) -> None:
        self.members: dict[str, str] | None = None

    async def run(self, members: dict[str, str]) -> None:
        self.members = members
        raise OSError("queue log unreadable")


async def test_resync_attaches_the_agent_even_when_the_backfill_fails() -> None:
    sink = Sink()
    service = CallTrackingService(sink)  # type: ignore[arg-type]
    backfill = BrokenBackfill()
    feed = AmiCallFeed(service, lambda: NOW, backfill)
    await feed.resync(ListClient())  # type: ignore[arg-type]
    assert backfill.members == {"1001 张伟": "Local/2001@agents", "1002 李娜": "Local/2002@agents"}
    assert (feed.backfill_failures, feed.resyncs) == (1, 1)
    rec = service.get("1.1")
    assert rec is not None
    assert (rec.agent_no, rec.agent_interface, rec.skill_group) == (
        "1001",
        "Local/2001@agents",
        "t1-support",
    )
    assert rec.answered_at == NOW - timedelta(seconds=30)
    assert rec.learned_at == NOW


async def test_the_queue_log_file_is_read_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    (tmp_path / "queue_log.1").write_text(
        "1796000000|1.1|q|NONE|ENTERQUEUE||1|1\n1796000100|1.1|q|NONE|ABANDON|1|1|100\n",
        encoding="utf-8",
    )
    log.write_text("1796000200|2.1|q|NONE|ENTERQUEUE||2|1\ngarbage\n", encoding="utf-8")
    since = datetime.fromtimestamp(1796000100, UTC)
    got = await QueueLogFile(log).read_since(since)
    assert [(e.callid, e.event) for e in got] == [("1.1", "ABANDON"), ("2.1", "ENTERQUEUE")]
    assert await QueueLogFile(tmp_path / "absent").read_since(since) == []


def test_the_captured_live_call_gets_its_agent_leg() -> None:
    """Asterisk 22.10.1's own ``CoreShowChannels`` during a queue call (call-centre-scenarios)
    and its ``QueueStatus``: the agent leg shares the caller's ``BridgeId``."""
    frames = capture_messages("call-centre-scenarios")
    channels = [m for m in frames if m.event == "CoreShowChannel"]
    members = members_of(m for m in frames if m.event == "QueueMember")
    (event,) = agent_legs(channels, members, lambda: NOW)
    assert isinstance(event, AgentAnswered)
    assert (event.linkedid, event.channel) == ("1795433102.17", "Local/sales@queue-in-00000008;2")
    assert (event.queue, event.member_interface, event.member_name) == (
        "sales",
        "Local/2001@agents",
        "T001 Zhang Wei",
    )


class LiveDuringResync:
    """Answers the resync's list actions; while the PBX computes the channel list, a new
    call starts on the live stream (and reaches the feed before the answer)."""

    def __init__(self, feed: AmiCallFeed) -> None:
        self.feed = feed

    async def send_list_action(self, action: Any) -> tuple[None, list[AmiMessage]]:
        if action.name == "CoreShowChannels":
            self.feed.on_events(
                [
                    EventFrame(
                        b"Event: Newchannel\r\nChannel: PJSIP/trunk-00000009\r\n"
                        b"Uniqueid: 9.1\r\nLinkedid: 9.1\r\nCallerIDNum: 13900139000\r\n"
                        b"Exten: 4008001234\r\n",
                        "Newchannel",
                    )
                ]
            )
        return None, CHANNELS if action.name == "CoreShowChannels" else QUEUE_ITEMS


async def test_a_call_that_starts_during_the_resync_is_not_reconciled_away() -> None:
    """Live events held during the resync are applied after it: the new call is not in the
    snapshot, so applied first it would be closed by the resync's reconcile."""
    service = CallTrackingService(Sink())  # type: ignore[arg-type]
    feed = AmiCallFeed(service, lambda: NOW)
    await feed.resync(LiveDuringResync(feed))  # type: ignore[arg-type]
    rec = service.get("9.1")
    assert rec is not None
    assert not rec.state.is_final
    assert rec.caller is not None
    assert "13900139000" in rec.caller
    # After the resync, live events go straight to the tracker again.
    feed.on_events([EventFrame(b"Event: Hangup\r\nUniqueid: 9.1\r\nLinkedid: 9.1\r\n", "Hangup")])
    ended = service.get("9.1")
    assert ended is not None
    assert ended.state.is_final


class RecordsAfterTheSnapshot:
    """A backfill that reads the queue log after the channel list was made: it finds one
    call that began in between (open, so not in the list) and one that ended in the gap."""

    def __init__(self, service: CallTrackingService) -> None:
        self.service = service

    async def run(self, members: dict[str, str]) -> None:
        at = NOW - timedelta(seconds=1)
        self.service.reconstruct(
            [
                ChannelCreated(at, "8.1", "8.1", "PJSIP/trunk-8", "13700137000", None, "400", None),
                CallerJoinedQueue(at, "8.1", "8.1", "PJSIP/trunk-8", "t1-sales", None, None),
            ],
            NOW,
        )


async def test_a_call_the_records_show_after_the_snapshot_is_not_reconciled_away() -> None:
    """The reconcile closes only calls held when the snapshot was asked for: one learned
    from the records read after it may have begun in between."""
    service = CallTrackingService(Sink())  # type: ignore[arg-type]
    service.restore(
        [CallRecord(call_id="7.1", started_at=NOW - timedelta(minutes=5), version=3)]
    )  # left open by the last owner; the PBX no longer has it
    feed = AmiCallFeed(service, lambda: NOW, RecordsAfterTheSnapshot(service))  # type: ignore[arg-type]
    await feed.resync(ListClient())  # type: ignore[arg-type]
    learned = service.get("8.1")
    assert learned is not None
    assert not learned.state.is_final
    gone = service.get("7.1")
    assert gone is not None
    assert gone.state.is_final
    assert gone.end_reason == "reconciled"


async def test_a_new_term_holds_live_events_from_before_the_login_to_the_resync() -> None:
    """A node taking over holds from before it connects: an agent's answer read right
    after the login, ahead of the resync, does not make a record of a call's middle (it
    waits, and the resync's snapshot and records come first)."""
    service = CallTrackingService(Sink())  # type: ignore[arg-type]
    feed = AmiCallFeed(service, lambda: NOW)
    feed.hold_until_resync()
    feed.on_events(
        [
            EventFrame(
                b"Event: Newchannel\r\nChannel: PJSIP/trunk-00000009\r\n"
                b"Uniqueid: 9.1\r\nLinkedid: 9.1\r\nCallerIDNum: 13900139000\r\n",
                "Newchannel",
            )
        ]
    )  # read between the login and the resync
    assert service.get("9.1") is None
    await feed.resync(ListClient())  # type: ignore[arg-type]
    rec = service.get("9.1")
    assert rec is not None
    assert not rec.state.is_final  # applied after the reconcile, not closed by it
