"""Off-boarding over the API: platform admin only, terminated tenants only, background job
with status and progress, a purge report the client verifies with the public key alone."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from tests.integration.test_recording_export import ClientServer
from tests.integration.test_recordings_api import World
from tests.integration.test_recordings_api import world as world


def client_side_verify(public_key_pem: str, manifest: dict[str, Any], signature: str) -> bool:
    """What a client does, with nothing of ours but the public key and docs/recordings.md."""
    key = load_pem_public_key(public_key_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        key.verify(base64.b64decode(signature), b"purge-report|" + body.encode())
    except Exception:
        return False
    return True


async def _wait_done(w: World, tenant: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            resp = await w.client.get(f"/api/v1/tenants/{tenant}/offboarding", headers=w.platform)
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            if body["status"] in ("done", "failed"):
                return body
            await asyncio.sleep(0.05)


async def test_offboarding_api_exports_purges_and_signs(world: World, tmp_path: Path) -> None:
    c, platform = world.client, world.platform
    root = tmp_path / "client"
    root.mkdir()
    server = ClientServer(root)
    try:
        target = ExportTarget("127.0.0.1", server.port, "client", "client-pw", tls=False)
        await world.store.set_policy(RecordingPolicy("t1", export_target=target), world.clock.now())
        url = "/api/v1/tenants/t1/offboarding"
        active = await c.post(url, json={}, headers=platform)
        assert active.status_code == 409  # t1 is still active
        assert active.json()["errors"][0]["field"] == "status"
        assert (await c.post(url, json={}, headers=world.t2)).status_code == 404
        assert (
            await c.post("/api/v1/tenants/t2/offboarding", json={}, headers=world.t2)
        ).status_code == 403
        resp = await c.patch("/api/v1/tenants/t1", json={"status": "terminated"}, headers=platform)
        assert resp.status_code == 200, resp.text

        started = await c.post(url, json={"skip_export": False}, headers=platform)
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "pending"
        done = await _wait_done(world, "t1")
    finally:
        server.kill()
    assert done["status"] == "done", done
    assert done["export"]["status"] == "done"
    assert (done["export"]["sent_files"], done["export"]["progress"]) == (3, 1.0)
    assert done["purge"] == {"done": 3, "total": 3}
    t1_recs = [r for r in world.recs if r.tenant == "t1"]
    for rec in t1_recs:  # returned to the client's server, byte for byte
        got = (root / rec.path.split("/", 1)[1]).read_bytes()
        assert hashlib.sha256(got).hexdigest() == rec.sha256
        assert not (world.files.root / rec.path).exists()  # and not kept
    assert (world.files.root / world.recs[3].path).exists()  # t2 untouched

    again = await c.post(url, json={}, headers=platform)
    assert again.status_code == 409

    report = await c.get(f"/api/v1/purge-reports/{done['report_id']}", headers=platform)
    assert report.status_code == 200, report.text
    assert (
        await c.get(f"/api/v1/purge-reports/{done['report_id']}", headers=world.t2)
    ).status_code == 403
    key = await c.get("/api/v1/purge-reports/public-key")  # no credentials needed
    assert key.status_code == 200
    assert key.json()["algorithm"] == "Ed25519"
    pem = key.json()["public_key_pem"]
    manifest, signature = report.json()["manifest"], report.json()["signature"]
    assert {r["id"] for r in manifest["recordings"]} == {r.id for r in t1_recs}
    assert manifest["key_id"] == key.json()["key_id"]
    assert client_side_verify(pem, manifest, signature)
    assert not client_side_verify(pem, {**manifest, "files_deleted": 0}, signature)


async def test_retention_purge_status_is_platform_only(world: World) -> None:
    c = world.client
    assert (await c.get("/api/v1/recording-purge", headers=world.t1)).status_code == 403
    before = await c.get("/api/v1/recording-purge", headers=world.platform)
    assert before.json() == {
        "running": False,
        "progress": {"done": 0, "total": 0},
        "last_deleted": None,
        "last_eligible": None,
    }
    world.clock.at += timedelta(days=62)
    transport = c._transport
    assert isinstance(transport, httpx.ASGITransport)
    await transport.app.state.retention.purge()  # type: ignore[attr-defined]
    after = await c.get("/api/v1/recording-purge", headers=world.platform)
    assert after.json() == {
        "running": False,
        "progress": {"done": 4, "total": 4},
        "last_deleted": 4,
        "last_eligible": {"t1": 3, "t2": 1},
    }
