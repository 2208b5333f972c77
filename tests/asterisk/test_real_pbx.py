"""Against a real Asterisk 22: login, resync lists, queue membership, and a tracked call.

Needs the snippets in asterisk/ and asterisk/test-tier/ (queue `ccbridge-test`, context
`ccbridge-test-agents`); docs/asterisk.md, section 5.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.domain.calls.model import CallState
from ccbridge.services.calls import CallTrackingService
from tests.fakes.calls import MemoryCallStore

QUEUE = "ccbridge-test"
MEMBER = "Local/2001@ccbridge-test-agents"


async def test_login_ping_and_resync_lists(real_ami: AmiClient) -> None:
    pong = await real_ami.send_action(act.ping())
    assert pong.get("Ping") == "Pong"
    _, channels = await real_ami.send_list_action(act.core_show_channels())
    assert isinstance(channels, list)
    _, items = await real_ami.send_list_action(act.queue_status(QUEUE))
    assert any(m.event == "QueueParams" and m.get("Queue") == QUEUE for m in items)


async def test_sign_in_paused_then_unpause_and_remove(real_ami: AmiClient) -> None:
    await real_ami.send_action(
        act.queue_add(QUEUE, MEMBER, member_name="9001 Test", paused=True, reason="signing-in")
    )
    try:
        _, items = await real_ami.send_list_action(act.queue_status(QUEUE, MEMBER))
        member = next(m for m in items if m.event == "QueueMember")
        assert (member.get("Paused"), member.get("PausedReason")) == ("1", "signing-in")
        await real_ami.send_action(act.queue_pause(MEMBER, paused=False, queue=QUEUE))
        _, items = await real_ami.send_list_action(act.queue_status(QUEUE, MEMBER))
        assert next(m for m in items if m.event == "QueueMember").get("Paused") == "0"
    finally:
        await real_ami.send_action(act.queue_remove(QUEUE, MEMBER))


async def test_a_real_call_is_tracked_under_its_linkedid(real_ami: AmiClient) -> None:
    store = MemoryCallStore()
    service = CallTrackingService(store)
    PbxCoordinator(real_ami, calls=AmiCallFeed(service, lambda: datetime.now(UTC))).attach()
    call_id = f"ccb-test-{uuid.uuid4().hex[:12]}"
    await real_ami.send_action(
        act.originate(
            "Local/2001@ccbridge-test-agents",
            application="Wait",
            data="2",
            caller_id='"ccbridge test" <13800138000>',
            channel_id=call_id,
        )
    )
    # Wait for *this* call (its linkedid is the ;1 leg's ChannelId), not any call that ends:
    # calls left over from an earlier test or run may hang up meanwhile.
    async with asyncio.timeout(20):
        while not ((rec := store.records.get(call_id)) and rec.state.is_final):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert rec is not None
    assert rec.state is CallState.ENDED
    assert rec.caller == "13800138000"
    assert rec.started_at <= (rec.ended_at or rec.started_at)
