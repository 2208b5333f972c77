"""The AMI metrics read the client's own state: a dropped link shows as down, then a reconnect."""

from __future__ import annotations

import asyncio

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.observability.metrics import Metrics
from tests.support.mini_ami import MiniAmi
from tests.unit.asterisk.test_ami_client import make_config, running, wait_for


def _value(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_reconnects_and_link_state_follow_the_client() -> None:
    server = await MiniAmi().start()
    try:
        client = AmiClient(make_config(server.port))
        metrics = Metrics()
        metrics.ami.watch(lambda: client.status)
        client.action_observer = metrics.ami.observe_action
        assert _value(metrics, "ccbridge_ami_connected") == 0
        async with running(client):
            await client.wait_synced(2)
            assert _value(metrics, "ccbridge_ami_connected") == 1
            assert _value(metrics, "ccbridge_ami_reconnects_total") == 0

            server.drop_all()
            await wait_for(lambda: client.status.reconnects >= 1)
            await client.wait_synced(2)

            assert _value(metrics, "ccbridge_ami_reconnects_total") >= 1
            assert _value(metrics, "ccbridge_ami_logged_in") == 1
            logins = {"action": "Login", "outcome": "ok"}
            count = metrics.registry.get_sample_value("ccbridge_ami_action_seconds_count", logins)
            assert count is not None
            assert count >= 1
        await asyncio.sleep(0)
    finally:
        await server.close()
