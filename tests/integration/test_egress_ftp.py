"""The ftplib egress adapter against a real pyftpdlib server on 127.0.0.1: refused unless
allow-listed, connects to the checked address, ignores a PASV reply naming another host,
survives DNS rebinding and reports failures with one fixed word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ccbridge.domain.egress import EgressError
from ccbridge.domain.recordings.model import ExportTarget
from ccbridge.egress.resolve import ResolvingHostChecker
from ccbridge.ftp.push import FtplibTransport
from tests.integration.test_recording_export import ClientServer

LOOPBACK = ["127.0.0.1/32"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClientServer]:
    root = tmp_path / "client"
    root.mkdir()
    srv = ClientServer(root)
    yield srv
    srv.kill()


def _target(
    server: ClientServer, host: str = "127.0.0.1", password: str = "client-pw"
) -> ExportTarget:
    return ExportTarget(host, server.port, "client", password, tls=False, directory="/in")


async def _push(transport: FtplibTransport, target: ExportTarget, tmp_path: Path) -> None:
    local = tmp_path / "a.wav"
    local.write_bytes(b"RIFF" + b"\0" * 4000)
    session = await transport.connect(target, LOOPBACK)
    try:
        await session.upload(str(local), "/in/a.wav", 0, lambda n: None)
        assert await session.remote_size("/in/a.wav") == 4004
    finally:
        await session.close()


async def test_loopback_is_refused_unless_allow_listed(
    server: ClientServer, tmp_path: Path
) -> None:
    transport = FtplibTransport(timeout=5)
    with pytest.raises(EgressError) as err:
        await transport.connect(_target(server))
    assert err.value.failure == "refused_address"
    assert transport.connected == []
    await _push(transport, _target(server), tmp_path)
    assert transport.connected == ["127.0.0.1"]
    assert (server.root / "in" / "a.wav").stat().st_size == 4004


async def test_a_pasv_reply_naming_another_address_is_ignored(
    server: ClientServer, tmp_path: Path
) -> None:
    server.server.handler.masquerade_address = "10.9.9.9"  # an internal host, say
    transport = FtplibTransport(timeout=5)
    await _push(transport, _target(server), tmp_path)  # data went to the control peer
    assert (server.root / "in" / "a.wav").stat().st_size == 4004


async def test_the_connection_goes_to_the_checked_address_under_dns_rebinding(
    server: ClientServer,
) -> None:
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"] if len(calls) == 1 else ["127.0.0.1"]

    await ResolvingHostChecker(rebinding).check_host("ftp.example", server.port, [])  # passes
    transport = FtplibTransport(timeout=5, resolver=rebinding)
    with pytest.raises(EgressError) as err:
        await transport.connect(_target(server, host="ftp.example"))
    assert err.value.failure == "refused_address"
    assert calls == ["ftp.example", "ftp.example"]
    assert transport.connected == []


async def test_failures_are_reported_with_one_word(server: ClientServer) -> None:
    transport = FtplibTransport(timeout=5)
    with pytest.raises(EgressError) as auth:
        await transport.connect(_target(server, password="wrong"), LOOPBACK)
    assert auth.value.failure == "auth_failed"
    server.kill()
    with pytest.raises(EgressError) as gone:
        await transport.connect(_target(server), LOOPBACK)
    assert gone.value.failure == "connect_failed"
    assert str(gone.value) == "connect_failed"  # no errno text, no address
