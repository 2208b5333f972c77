"""AmiQueueControl against the fake Asterisk over TCP: the frames the PBX actually receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.config.queues import reload_queues
from ccbridge.asterisk.queue_control import AmiQueueControl, member_from_item
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import MemberSpec, QueueSpec
from tests.support.captures import capture_bytes, capture_messages

SCENARIO = "call-centre-scenarios"
QUEUES = ["t1-sales", "t1-support"]


def _capture_actions() -> dict[str, AmiMessage]:
    """The actions ccbridge's reference session sent to the real Asterisk 22, by ActionID."""
    data = capture_bytes(SCENARIO, "ami-to-asterisk.txt")
    return {m.action_id or "": m for m in FrameDecoder().feed_messages(data)}


CAPTURED = _capture_actions()


def _keys(msg: AmiMessage) -> list[str]:
    return [k for k, _ in msg.fields if k not in ("Action", "ActionID")]


@dataclass
class Rig:
    pbx: FakeAsterisk
    client: AmiClient
    control: AmiQueueControl
    received: list[AmiMessage]

    def actions(self, name: str) -> list[AmiMessage]:
        return [m for m in self.received if m.get("Action") == name]

    def queue_actions(self) -> list[AmiMessage]:
        return [m for m in self.received if (m.get("Action") or "").startswith("Queue")]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    queues = [QueueSpec(q) for q in QUEUES]
    queues.append(QueueSpec("admin-q", members=[MemberSpec("PJSIP/9000", "static one")]))
    pbx = FakeAsterisk(queues=queues, agi_url=None, seed=3, auth_fail_delay=0)
    await pbx.start()
    received: list[AmiMessage] = []
    dispatch = pbx.ami._dispatch

    async def recording(session, req):  # type: ignore[no-untyped-def]
        received.append(req.msg)
        await dispatch(session, req)

    pbx.ami._dispatch = recording  # type: ignore[method-assign]
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=pbx.ami_port,
            username="ccbridge",
            secret="secret",
            action_timeout=2.0,
            ping_interval=60,
        )
    )
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(3)
        yield Rig(pbx, client, AmiQueueControl(client), received)
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
        await pbx.stop()


def member(rig: Rig, queue: str, iface: str):  # type: ignore[no-untyped-def]
    return rig.pbx.model.queue(queue).members.get(iface)


async def test_sign_in_adds_paused_with_reason_then_unpauses(rig: Rig) -> None:
    spec = QueueMemberSpec("t1-sales", "Local/2001@agents", "T001 Zhang Wei", penalty=1)
    await rig.control.add_member(spec)
    add, unpause = rig.queue_actions()
    # QueueAdd: the same fields, in the same order and spelling, as the real capture (cap-6).
    ref = CAPTURED["cap-6"]
    assert _keys(add) == _keys(ref)
    for key in _keys(ref):
        got, want = add.get(key), ref.get(key)
        assert got == want.replace("sales", "t1-sales") if key == "Queue" else got == want, key
    assert (add.get("Paused"), add.get("Reason")) == ("true", "signing-in")
    # QueuePause false for the one queue: the capture's per-queue syntax (cap-9) minus Reason.
    assert _keys(unpause) == ["Queue", "Interface", "Paused"]
    assert _keys(unpause) == _keys(CAPTURED["cap-9"])[:3]
    assert (unpause.get("Queue"), unpause.get("Interface"), unpause.get("Paused")) == (
        "t1-sales",
        "Local/2001@agents",
        "false",
    )
    m = member(rig, "t1-sales", "Local/2001@agents")
    assert m is not None
    assert not m.paused
    assert m.paused_reason == ""
    assert (m.member_name, m.penalty, m.state_interface) == (
        "T001 Zhang Wei",
        1,
        "Local/2001@agents",
    )


async def test_paused_sign_in_is_added_paused_with_its_own_reason(rig: Rig) -> None:
    spec = QueueMemberSpec("t1-sales", "PJSIP/1002", "1002 李娜", paused=True, reason="小休 break")
    await rig.control.add_member(spec)
    [add] = rig.queue_actions()
    assert (add.get("Paused"), add.get("Reason")) == ("true", "小休 break")
    m = member(rig, "t1-sales", "PJSIP/1002")
    assert m.paused
    assert m.paused_reason == "小休 break"


async def test_pause_with_a_chinese_reason_matches_the_capture(rig: Rig) -> None:
    await rig.control.add_member(QueueMemberSpec("t1-sales", "Local/2002@agents", "T002 李娜"))
    rig.received.clear()
    await rig.control.set_paused("t1-sales", "Local/2002@agents", True, "小休 break")
    [pause] = rig.actions("QueuePause")
    ref = CAPTURED["cap-9"]
    assert _keys(pause) == _keys(ref)
    assert pause.get("Reason") == ref.get("Reason") == "小休 break"
    assert pause.get("Paused") == "true"
    m = member(rig, "t1-sales", "Local/2002@agents")
    assert m.paused
    assert m.paused_reason == "小休 break"
    [snap] = await rig.control.snapshot(["t1-sales"])
    assert snap == QueueMemberSpec(
        "t1-sales", "Local/2002@agents", "T002 李娜", 0, True, "小休 break"
    )


async def test_sign_out_removes_and_is_idempotent(rig: Rig) -> None:
    await rig.control.add_member(QueueMemberSpec("t1-sales", "PJSIP/1001", "1001"))
    rig.received.clear()
    await rig.control.remove_member("t1-sales", "PJSIP/1001")
    await rig.control.remove_member("t1-sales", "PJSIP/1001")  # "Not there": success
    await rig.control.remove_member("no-such-queue", "PJSIP/1001")  # "Unable to remove"
    first = rig.actions("QueueRemove")[0]
    assert _keys(first) == _keys(CAPTURED["cap-26"])
    assert member(rig, "t1-sales", "PJSIP/1001") is None


async def test_removing_a_static_member_fails_loudly(rig: Rig) -> None:
    with pytest.raises(AmiActionError, match="not dynamic"):
        await rig.control.remove_member("admin-q", "PJSIP/9000")


async def test_duplicate_add_is_idempotent_and_fixes_the_pause_state(rig: Rig) -> None:
    spec = QueueMemberSpec("t1-sales", "PJSIP/1001", "1001")
    await rig.control.add_member(spec)
    rig.pbx.ami.pause_member_behind_back("t1-sales", "PJSIP/1001", True, "phone DND")
    rig.received.clear()
    await rig.control.add_member(spec)  # "Already there" → unpause to match the spec
    assert [m.get("Action") for m in rig.queue_actions()] == ["QueueAdd", "QueuePause"]
    m = member(rig, "t1-sales", "PJSIP/1001")
    assert not m.paused
    assert len(rig.pbx.model.queue("t1-sales").members) == 1


async def test_snapshot_reads_dynamic_members_of_the_asked_queues_only(rig: Rig) -> None:
    await rig.control.add_member(QueueMemberSpec("t1-sales", "PJSIP/1001", "1001 张伟", 2))
    await rig.control.add_member(
        QueueMemberSpec("t1-support", "PJSIP/1001", "1001 张伟", 0, True, "lunch")
    )
    got = sorted(
        await rig.control.snapshot(["t1-sales", "t1-support", "admin-q"]), key=lambda m: m.key
    )
    assert got == [
        QueueMemberSpec("t1-sales", "PJSIP/1001", "1001 张伟", 2, False, ""),
        QueueMemberSpec("t1-support", "PJSIP/1001", "1001 张伟", 0, True, "lunch"),
    ]
    assert await rig.control.snapshot(["t1-sales"]) == [got[0]]
    assert await rig.control.snapshot([]) == []


@pytest.mark.parametrize("bad", ["x\r\nAction: Hangup", "x\ny", "x\0"])
async def test_cr_lf_nul_are_refused_before_anything_is_sent(rig: Rig, bad: str) -> None:
    before = len(rig.received)
    spec = QueueMemberSpec("t1-sales", "PJSIP/1001", "1001", paused=False)
    for call in (
        rig.control.add_member(QueueMemberSpec("t1-sales", "PJSIP/1001", bad)),
        rig.control.add_member(QueueMemberSpec("t1-sales", "PJSIP/1001", "n", 0, True, bad)),
        rig.control.set_paused("t1-sales", spec.interface, True, bad),
        rig.control.remove_member("t1-sales", bad),
        rig.control.set_penalty(bad, "PJSIP/1001", 1),
    ):
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            await call
    assert len(rig.received) == before
    assert member(rig, "t1-sales", "PJSIP/1001") is None


def test_capture_queue_member_items_parse_to_specs() -> None:
    items = [m for m in capture_messages(SCENARIO) if m.event == "QueueMember"]
    specs = [member_from_item(m) for m in items]
    assert (
        QueueMemberSpec("sales", "Local/2002@agents", "T002 李娜", 0, True, "小休 break") in specs
    )
    assert QueueMemberSpec("sales", "Local/2001@agents", "T001 Zhang Wei", 1, False, "") in specs


async def test_penalty_change_and_queue_reload_reach_the_pbx(rig: Rig) -> None:
    spec = QueueMemberSpec("t1-sales", "PJSIP/1001", "1001 张伟", penalty=0)
    await rig.control.add_member(spec)
    await rig.control.set_penalty("t1-sales", "PJSIP/1001", 4)
    assert member(rig, "t1-sales", "PJSIP/1001").penalty == 4
    (action,) = rig.actions("QueuePenalty")
    assert (action.get("Queue"), action.get("Interface"), action.get("Penalty")) == (
        "t1-sales",
        "PJSIP/1001",
        "4",
    )
    await reload_queues(rig.client)
    (reload,) = rig.actions("QueueReload")
    assert reload.get("Members") == "no"
