"""Real-PBX inbound numbers: a DID assigned over the API routes the very next real call into
the tenant's queue, and a change of its target takes effect on the next call, no restart.

Needs, besides the CCBRIDGE_TEST_AMI_* variables, ``CCBRIDGE_TEST_GENERATED_DIR`` (the PBX
includes the queues ccbridge writes there; docs/asterisk.md §5 step 10) and the tier's
``[ivr-test-inbound]`` context, which runs ``AGI(agi://127.0.0.1:4591/inbound)`` and then
``Queue(${CCB_QUEUE})`` when ccbridge set one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from pathlib import Path

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.config.queues import reload_queues, sync_queue_config
from tests.asterisk.real_service import serving

AGI_PORT = int(os.environ.get("CCBRIDGE_TEST_IVR_AGI_PORT", "4591"))


async def _call(ami: AmiClient, did: str, joins: asyncio.Queue[AmiMessage]) -> AmiMessage | None:
    """Place a real call to *did*; the queue it joined, or ``None`` if it joined none."""
    channel_id = f"ccb-did-{uuid.uuid4().hex[:12]}"
    await ami.send_action(
        act.originate(
            f"Local/{did}@ivr-test-inbound",
            application="Wait",
            data="6",
            caller_id='"did test" <13800138000>',
            channel_id=channel_id,
        )
    )
    try:
        async with asyncio.timeout(8):
            while True:
                joined = await joins.get()
                if (joined.get("Channel") or "").startswith(f"Local/{did}@ivr-test-inbound"):
                    await ami.send_action(act.hangup(joined.get("Channel") or ""))
                    return joined
    except TimeoutError:
        return None


async def test_a_did_assigned_over_the_api_routes_the_next_real_call(
    real_ami: AmiClient, pbx_generated_dir: Path, tmp_path: Path
) -> None:
    tenant = f"rt{secrets.token_hex(4)}"
    did = f"40080{secrets.randbelow(10**5):05d}"
    joins: asyncio.Queue[AmiMessage] = asyncio.Queue()
    unsubscribe = real_ami.subscribe("QueueCallerJoin", joins.put_nowait)
    try:
        async with serving(tmp_path, pbx_generated_dir, tenant, agi_port=AGI_PORT) as (
            _service,
            client,
            admin,
            platform,
        ):
            resp = await client.post(
                f"/api/v1/tenants/{tenant}/skill-groups", json={"name": "sales"}, headers=admin
            )
            assert resp.status_code == 201, resp.text

            # Not assigned yet: the call joins no queue.
            assert await _call(real_ami, did, joins) is None

            # The platform admin assigns the number, the tenant admin points it at a group.
            resp = await client.put(f"/api/v1/tenants/{tenant}/numbers/{did}", headers=platform)
            assert resp.status_code == 201, resp.text
            resp = await client.patch(
                f"/api/v1/tenants/{tenant}/numbers/{did}",
                json={"target": {"type": "group", "id": "sales"}},
                headers=admin,
            )
            assert resp.status_code == 200, resp.text

            joined = await _call(real_ami, did, joins)
            assert joined is not None, "the assigned number's call joined no queue"
            assert joined.get("Queue") == f"{tenant}-sales"

            resp = await client.patch(
                f"/api/v1/tenants/{tenant}/numbers/{did}", json={"target": None}, headers=admin
            )
            assert resp.status_code == 200, resp.text
            assert await _call(real_ami, did, joins) is None  # effective at the next call
    finally:
        unsubscribe()
        sync_queue_config(pbx_generated_dir, [])
        await reload_queues(real_ami)
