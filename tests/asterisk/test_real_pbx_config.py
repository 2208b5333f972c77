"""Skill groups reach a real Asterisk 22 through the generated folder, or ccbridge says so
(issue 18's done-when, on the real-PBX tier).

ccbridge is wired as ``serve`` wires it (``build_service``: AMI login hooks, the queue-file
publisher, the ``pbx_config`` check) against the test PBX, over a throw-away SQLite database
and a fresh tenant (so its queue ``<tenant>-sales`` is new to the PBX).

- The PBX reads the folder ccbridge writes (``CCBRIDGE_TEST_GENERATED_DIR``, the folder the
  test PBX's ``queues.conf`` ``#tryinclude``s by absolute path, docs/asterisk.md §5 step 10): the
  skill group created over the API answers 201, ``QueueStatus`` lists its queue and
  ``/readyz``'s ``pbx_config`` check is ok.
- ccbridge writes into a folder the PBX does not read: the same request answers 502
  ``PBX_CONFIG_MISMATCH`` and ``/readyz`` fails on ``pbx_config`` naming the queue.

Needs on the PBX, beyond the tier's setup (docs/asterisk.md §5): in ``queues.conf``, after
``#include queues-ccbridge.conf``, ``#tryinclude <CCBRIDGE_TEST_GENERATED_DIR>/queues.conf``
(e.g. ``/var/lib/ccbridge-test/asterisk-generated``, writable by the test). Skips, naming the
variable, when it is unset. Each test leaves the generated file empty and reloads, so the PBX
keeps no test queue.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.config.queues import reload_queues, sync_queue_config
from tests.asterisk.real_service import serving


@pytest.fixture
def tenant() -> str:
    """A tenant id no earlier run used, so its queue is new to the PBX."""
    return f"rt{secrets.token_hex(4)}"


async def _pbx_queues(ami: AmiClient) -> set[str]:
    """The queues the PBX reports (``QueueStatus``'s ``QueueParams`` items)."""
    _resp, items = await ami.send_list_action(act.AmiAction("QueueStatus", ()))
    return {q for item in items if item.event == "QueueParams" and (q := item.get("Queue"))}


async def _empty_and_reload(ami: AmiClient, generated: Path) -> None:
    """Leave the generated file with no queue and make the PBX drop what it had from it."""
    sync_queue_config(generated, [])
    await reload_queues(ami)


async def _pbx_config_check(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    body: dict[str, Any] = resp.json()
    return resp.status_code, body["checks"]["pbx_config"]


async def test_a_skill_group_created_over_the_api_becomes_a_queue_the_pbx_reports(
    real_ami: AmiClient, pbx_generated_dir: Path, tenant: str, tmp_path: Path
) -> None:
    queue = f"{tenant}-sales"
    try:
        async with serving(tmp_path, pbx_generated_dir, tenant) as (
            _service,
            client,
            admin,
            _platform,
        ):
            _status, check = await _pbx_config_check(client)
            assert check["ok"] is True, check  # nothing owned yet: nothing missing
            assert queue not in await _pbx_queues(real_ami)

            resp = await client.post(
                f"/api/v1/tenants/{tenant}/skill-groups", json={"name": "sales"}, headers=admin
            )
            assert resp.status_code == 201, resp.text
            assert resp.json()["queue"] == queue

            assert queue in await _pbx_queues(real_ami), (
                f"the PBX does not report {queue} after the skill group was created; "
                f"generated file: {(pbx_generated_dir / 'queues.conf').read_text()!r}"
            )
            _status, check = await _pbx_config_check(client)
            assert check == {
                "ok": True,
                "expected_queues": 1,
                "missing_queues": [],
                "missing_members": [],
            }
    finally:
        await _empty_and_reload(real_ami, pbx_generated_dir)
    assert queue not in await _pbx_queues(real_ami)  # the PBX keeps no test queue


async def test_with_the_pbx_reading_another_folder_readyz_names_the_missing_queue(
    real_ami: AmiClient, pbx_generated_dir: Path, tenant: str, tmp_path: Path
) -> None:
    queue = f"{tenant}-sales"
    elsewhere = tmp_path / "ccbridge-generated"  # ccbridge writes here; the PBX never reads it
    elsewhere.mkdir()
    assert elsewhere != pbx_generated_dir
    async with serving(tmp_path, elsewhere, tenant) as (_service, client, admin, _platform):
        resp = await client.post(
            f"/api/v1/tenants/{tenant}/skill-groups", json={"name": "sales"}, headers=admin
        )
        assert resp.status_code == 502, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["code"] == "PBX_CONFIG_MISMATCH"
        assert queue in problem["detail"]
        assert str(elsewhere) in problem["detail"]  # where ccbridge wrote it

        assert (elsewhere / "queues.conf").read_text().count(f"[{queue}]") == 1
        assert queue not in await _pbx_queues(real_ami)

        status, check = await _pbx_config_check(client)
        assert status == 503
        assert check["ok"] is False
        assert check["missing_queues"] == [queue]
        assert queue in check["detail"]
