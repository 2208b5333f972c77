"""Against a real Asterisk 22: the admission check reads the PBX's systemname (``CoreSettings``
with the shipped AMI user) and refuses the PBX when another PBX has that name (ADR 0033).

The test PBX's name is whatever its asterisk.conf says (usually none); the other PBXs of the
database are an in-memory store here.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.pbx_identity import PbxIdentity
from tests.asterisk.conftest import running
from tests.unit.asterisk.test_pbx_admission import Names


def admitted_by(config: AmiConfig, identity: PbxIdentity) -> AbstractAsyncContextManager[AmiClient]:
    client = AmiClient(config)
    client.set_admission(identity)
    return running(client)


async def test_the_real_pbx_name_is_read_and_claimed(
    real_ami: AmiClient, ami_config: AmiConfig
) -> None:
    settings = await real_ami.send_action(act.core_settings())
    name = (settings.get("SystemName") or "").strip()
    names = Names(others=1)
    identity = PbxIdentity("pbx-real", names)
    async with admitted_by(ami_config, identity) as client:
        await client.wait_synced(10)
    assert identity.system_name == name
    assert identity.refused is None
    assert names.claims == [("pbx-real", name)]


async def test_the_real_pbx_is_refused_when_another_pbx_has_its_name(
    real_ami: AmiClient, ami_config: AmiConfig
) -> None:
    settings = await real_ami.send_action(act.core_settings())
    name = (settings.get("SystemName") or "").strip()
    identity = PbxIdentity("pbx-real", Names({"pbx-other": name}, others=1))
    async with admitted_by(ami_config, identity) as client:
        async with asyncio.timeout(10):
            while identity.refused is None:  # noqa: ASYNC110 (state, not an event)
                await asyncio.sleep(0.05)
        assert not client.status.synced
        assert "pbx-other" in (client.status.last_error or "")
    assert "'pbx-other'" in identity.refused
