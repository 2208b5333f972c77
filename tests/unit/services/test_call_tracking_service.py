"""The call-tracking use case: live events, resync after loss, nothing duplicated."""

from __future__ import annotations

from datetime import UTC, datetime

from ccbridge.asterisk.ami.normalize import normalize
from ccbridge.domain.calls.events import ChannelHungUp, TelephonyEvent
from ccbridge.domain.calls.model import CallState
from ccbridge.services.calls import CallTrackingService
from tests.fakes.calls import MemoryCallStore
from tests.support.captures import capture_messages

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _events() -> list[TelephonyEvent]:
    return [e for m in capture_messages("queue-call-and-sip") for e in normalize(m, lambda: NOW)]


def test_live_events_reach_the_sink_with_rising_versions() -> None:
    store = MemoryCallStore()
    service = CallTrackingService(store)
    service.handle(_events())
    call = store.records["1795433123.29"]
    assert call.state is CallState.ENDED
    versions = [r.version for r in store.submitted if r.call_id == "1795433123.29"]
    assert versions == sorted(versions)
    assert len(versions) == len(set(versions))


def test_resync_closes_calls_lost_during_a_disconnect_once() -> None:
    store = MemoryCallStore()
    service = CallTrackingService(store)
    events = [e for e in _events() if e.linkedid == "1795433123.29"]
    service.handle([e for e in events if not isinstance(e, ChannelHungUp)])
    assert [c.call_id for c in service.open_calls()] == ["1795433123.29"]
    closed = service.resync([], NOW)
    assert [c.end_reason for c in closed] == ["reconciled"]
    assert service.resync([], NOW) == []
    assert service.reconciled_total == 1
    assert store.records["1795433123.29"].end_reason == "reconciled"
