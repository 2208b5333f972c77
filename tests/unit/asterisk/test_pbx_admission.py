"""The AMI client's admission check and the PBX identity it runs (ADR 0033 step 4).

Right after login the node reads the PBX's system name; until the check passes the sink's
events wait, and when it refuses the PBX they are dropped with the session, no login hook runs
and nothing else is sent, and the client tries again later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage, EventFrame
from ccbridge.asterisk.ami.errors import AmiRefused
from ccbridge.asterisk.pbx_identity import PbxIdentity
from ccbridge.domain.ha.system_names import SystemNameClaim
from tests.support.mini_ami import MiniAmi, MiniConn, frame
from tests.unit.asterisk.test_ami_client import make_config, running, wait_for

NEWCHANNEL = frame(("Event", "Newchannel"), ("Uniqueid", "ast1-1795433102.18"))


def core_settings(system_name: str, *, before: bytes = b"", ok: bool = True) -> MiniAmi:
    """A PBX answering CoreSettings with *system_name*, sending *before* just ahead of it."""
    server = MiniAmi()

    def answer(conn: MiniConn, msg: AmiMessage) -> None:
        conn.send(before)
        if ok:
            conn.reply(msg, ("SystemName", system_name), ("AsteriskVersion", "22.10.1"))
        else:
            conn.reply(msg, ("Message", "Permission denied"), ok=False)

    server.handlers["CoreSettings"] = answer
    return server


@contextlib.asynccontextmanager
async def started(server: MiniAmi) -> AsyncIterator[MiniAmi]:
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class Names:
    """The lease rows' system names, in memory."""

    def __init__(self, taken: dict[str, str] | None = None, others: int = 0) -> None:
        self.taken = dict(taken or {})
        self.others = others
        self.claims: list[tuple[str, str | None]] = []

    async def claim_system_name(self, pbx: str, system_name: str | None) -> SystemNameClaim:
        self.claims.append((pbx, system_name))
        holder = next((p for p, n in self.taken.items() if n == system_name and p != pbx), None)
        if holder is None and system_name is not None:
            self.taken[pbx] = system_name
        return SystemNameClaim(holder, self.others)


def sink_into(client: AmiClient, seen: list[str]) -> None:
    def sink(batch: list[EventFrame]) -> None:
        seen.extend(f.name for f in batch)

    client.set_event_sink(["Newchannel"], sink)


async def test_events_wait_for_the_admission_and_then_reach_the_sink_in_order() -> None:
    async with started(core_settings("ast1", before=NEWCHANNEL)) as server:
        client = AmiClient(make_config(server.port))
        seen: list[str] = []
        sink_into(client, seen)

        async def admit(c: AmiClient) -> None:
            await c.send_action({"Action": "CoreSettings"})
            await asyncio.sleep(0.05)  # the Newchannel has been read by now
            seen.append("admitted")

        hooks: list[str] = []

        async def hook(c: AmiClient) -> None:
            hooks.append(",".join(seen))

        client.set_admission(admit)
        client.add_login_hook(hook)
        async with running(client):
            await client.wait_synced(2)
        assert seen == ["admitted", "Newchannel"]
        assert hooks == ["admitted,Newchannel"]  # the login hooks see the PBX's events applied


async def test_a_refused_pbx_gets_no_events_applied_no_hook_and_no_action() -> None:
    async with started(core_settings("ast1", before=NEWCHANNEL)) as server:
        client = AmiClient(make_config(server.port))
        seen: list[str] = []
        sink_into(client, seen)
        hooks: list[int] = []

        async def refuse(c: AmiClient) -> None:
            await c.send_action({"Action": "CoreSettings"})
            await asyncio.sleep(0.05)
            raise AmiRefused("PBX 'b' has the same systemname as PBX 'a'")

        async def hook(c: AmiClient) -> None:
            hooks.append(1)

        client.set_admission(refuse)
        client.add_login_hook(hook)
        with capture_logs() as logs:
            async with running(client):
                await wait_for(lambda: server.logins >= 2)  # it keeps trying, backing off
                assert not client.status.synced
                assert "same systemname" in (client.status.last_error or "")
        assert seen == []
        assert hooks == []
        sent = {m.get("Action") for m in server.received}
        assert sent <= {"Challenge", "Login", "CoreSettings", "Logoff"}
        refused = [e for e in logs if e["event"] == "ami_pbx_refused"]
        assert len(refused) == 1  # once per outage, repeats at debug
        assert refused[0]["log_level"] == "error"


async def test_a_second_admission_check_is_a_wiring_error() -> None:
    client = AmiClient(make_config(1))

    async def admit(c: AmiClient) -> None:
        return None

    client.set_admission(admit)
    with pytest.raises(RuntimeError, match="already has an admission check"):
        client.set_admission(admit)


# ----------------------------------------------------------------------------- identity


async def identity_run(server: MiniAmi, identity: PbxIdentity) -> AmiClient:
    client = AmiClient(make_config(server.port))
    client.set_admission(identity)
    return client


@pytest.mark.parametrize(("name", "others"), [("", 0), ("ast1", 0), ("", 2), ("ast 1", 0)])
async def test_the_identity_admits_a_lone_pbx_or_a_unique_name(name: str, others: int) -> None:
    names = Names({"pbx-a": "ast1"} if name == "" else {}, others=others)
    identity = PbxIdentity("pbx-b", names)
    async with started(core_settings(name)) as server:
        client = await identity_run(server, identity)
        async with running(client):
            await client.wait_synced(2)
    assert identity.system_name == name
    assert identity.refused is None
    assert names.claims == [("pbx-b", name)]


async def test_the_identity_refuses_a_name_another_pbx_has() -> None:
    names = Names({"pbx-a": "ast1"}, others=1)
    identity = PbxIdentity("pbx-b", names)
    async with started(core_settings("ast1")) as server:
        client = await identity_run(server, identity)
        with capture_logs() as logs:
            async with running(client):
                await wait_for(lambda: server.logins >= 3)
                assert not client.status.synced
    assert identity.refused is not None
    assert [e["event"] for e in logs].count("pbx_identity_refused") == 1  # once per reason
    assert "'pbx-a'" in identity.refused
    assert "ccbridge pbx forget pbx-a" in identity.refused


async def test_with_several_pbxs_a_name_that_cannot_prefix_call_ids_is_refused() -> None:
    identity = PbxIdentity("pbx-b", Names(others=1))
    async with started(core_settings("ast 1")) as server:
        client = await identity_run(server, identity)
        async with running(client):
            await wait_for(lambda: identity.refused is not None)
    assert "cannot prefix call ids" in (identity.refused or "")


async def test_an_unreadable_name_is_a_warning_alone_and_a_refusal_beside_other_pbxs() -> None:
    alone = PbxIdentity("pbx-a", Names(others=0))
    async with started(core_settings("", ok=False)) as server:
        client = await identity_run(server, alone)
        with capture_logs() as logs:
            async with running(client):
                await client.wait_synced(2)
    assert alone.system_name is None
    assert any(e["event"] == "pbx_identity_unusual" for e in logs)
    names = Names(others=1)
    beside = PbxIdentity("pbx-b", names)
    async with started(core_settings("", ok=False)) as server:
        client = await identity_run(server, beside)
        async with running(client):
            await wait_for(lambda: beside.refused is not None)
    assert "write = system" in (beside.refused or "")
    assert names.claims[0] == ("pbx-b", None)  # nothing written for a name never read


async def test_a_fixed_pbx_is_admitted_at_the_next_login() -> None:
    names = Names({"pbx-a": "ast1"}, others=1)
    identity = PbxIdentity("pbx-b", names)
    server = core_settings("ast1")
    async with started(server):
        client = await identity_run(server, identity)
        async with running(client):
            await wait_for(lambda: identity.refused is not None)
            # the operator sets systemname = ast2 and restarts that Asterisk
            server.handlers["CoreSettings"] = lambda conn, msg: conn.reply(
                msg, ("SystemName", "ast2")
            )
            await client.wait_synced(3)
    assert identity.refused is None
    assert names.taken["pbx-b"] == "ast2"


class Unreachable(Names):
    """The database is away."""

    async def claim_system_name(self, pbx: str, system_name: str | None) -> SystemNameClaim:
        raise ConnectionRefusedError("database down")


async def test_a_database_outage_at_login_drives_the_pbx_unchecked_and_says_so() -> None:
    """The PBX's calls must not be lost as well: it is driven, and the next login checks."""
    identity = PbxIdentity("pbx-a", Unreachable())
    async with started(core_settings("ast1")) as server:
        client = await identity_run(server, identity)
        with capture_logs() as logs:
            async with running(client):
                await client.wait_synced(2)
    assert identity.refused is None
    (unchecked,) = [e for e in logs if e["event"] == "pbx_identity_unchecked"]
    assert "database down" in unchecked["error"]
