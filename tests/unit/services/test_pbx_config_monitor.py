"""PbxConfigMonitor: publish, verify with QueueStatus, remember the outcome for /readyz."""

from __future__ import annotations

import pytest

from ccbridge.domain.acd.pbx_config import PbxInventory
from ccbridge.errors import AsteriskUnavailableError, PbxConfigMismatchError
from ccbridge.services.pbx_config import PbxConfigMonitor


class FakePublisher:
    """Records publishes; ``fail`` makes the reload fail."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.fail = False

    async def publish(self, *, force_reload: bool = False) -> bool:
        self.calls.append(force_reload)
        return not self.fail


class FakeInventory:
    """The PBX's queues and members; ``down`` makes QueueStatus fail."""

    def __init__(self) -> None:
        self.queues: set[str] = set()
        self.members: set[tuple[str, str]] = set()
        self.down = False

    async def inventory(self) -> PbxInventory:
        if self.down:
            raise AsteriskUnavailableError("not logged in")
        return PbxInventory(frozenset(self.queues), frozenset(self.members))


def monitor(
    pbx: FakeInventory, publisher: FakePublisher, members: list[tuple[str, str]] | None = None
) -> PbxConfigMonitor:
    async def queues() -> list[str]:
        return ["t1-sales"]

    async def expected_members() -> list[tuple[str, str]]:
        return members or []

    return PbxConfigMonitor(publisher, pbx, queues, expected_members, hint="see install.md")


async def test_a_missing_queue_fails_sync_and_readiness_by_name() -> None:
    pbx, publisher = FakeInventory(), FakePublisher()
    mon = monitor(pbx, publisher)
    with pytest.raises(PbxConfigMismatchError, match=r"t1-sales.*see install\.md"):
        await mon.sync()
    ok, detail = mon.readiness()
    assert not ok
    assert detail["missing_queues"] == ["t1-sales"]
    assert detail["hint"] == "see install.md"
    pbx.queues.add("t1-sales")
    await mon.recheck()
    assert publisher.calls == [False, True]  # the recheck after a failure reloads first
    assert mon.readiness()[0]


async def test_an_unreachable_pbx_does_not_fail_the_request_but_is_not_ready() -> None:
    pbx, publisher = FakeInventory(), FakePublisher()
    mon = monitor(pbx, publisher)
    publisher.fail = True
    await mon.sync()  # stored; the ami check and the next login take it from here
    assert mon.readiness() == (False, {"error": "queue reload failed"})
    publisher.fail, pbx.down = False, True
    await mon.sync()
    ok, detail = mon.readiness()
    assert not ok
    assert detail["error"].startswith("QueueStatus failed")


async def test_a_member_missing_twice_fails_readiness_but_not_a_group_change() -> None:
    pbx, publisher = FakeInventory(), FakePublisher()
    pbx.queues.add("t1-sales")
    mon = monitor(pbx, publisher, members=[("t1-sales", "PJSIP/1101")])
    await mon.sync()
    assert mon.readiness()[0]  # may have signed in a moment ago
    await mon.sync()  # a member-only mismatch is not the group change's fault
    ok, detail = mon.readiness()
    assert not ok
    assert detail["missing_members"] == ["t1-sales/PJSIP/1101"]
    pbx.members.add(("t1-sales", "PJSIP/1101"))
    await mon.on_login(object())
    assert mon.readiness()[0]
