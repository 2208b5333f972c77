"""Schemathesis against the app's own OpenAPI document, in-process, as a tenant admin and an agent.

The whole service is wired as ``ccbridge serve`` wires it (SQLite in a temp directory, the fake
PBX on AMI), seeded with a tenant, its phones, a skill group, agents, a lease and a signed-in
seat. Every operation gets a bounded number of generated requests (fixed seed: the run is the
same every time); each answer must be no 5xx and exactly what the document declares: its
status code, its content type and a body matching its schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ccbridge.api.app import openapi_document
from ccbridge.api.tenant_scope import base_operation
from ccbridge.asterisk.config.queues import GENERATED_FILE
from ccbridge.bootstrap import build_calendar_service, build_ivr_fastagi, build_service
from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.access import Role
from ccbridge.settings import AgiSettings, AmiSettings, IvrSettings, RecordingSettings, Settings
from ccbridge.testing.fake_pbx import FakeAsterisk

pytestmark = pytest.mark.slow

T = TypeVar("T")
TENANT = "t1"
AGENT = "1001"
MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# An SSE stream never ends by itself: a generated request would hang the run. The streams'
# frames are covered by tests/integration/test_events_api.py and test_floor_api.py.
SKIPPED = {"stream_events", "stream_wallboard"}
DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = sorted(
    (op.ok() for op in SCHEMA.get_all_operations()),
    key=lambda op: (op.path, op.method),
)


class _Loop:
    """A private event loop on its own thread: the app and its services live there, the
    synchronous Hypothesis test hands it one request at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def main() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(main(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Rig:
    """The running app and the credentials the fuzzer calls it with."""

    loop: _Loop
    client: httpx.AsyncClient
    headers: dict[str, dict[str, str]]

    def send(self, request: dict[str, Any], role: str) -> httpx.Response:
        """Send one generated request as *role*.

        Schemathesis serialises for ``requests``; ``requests`` prepares the exact bytes
        (multipart included), which then go to the app through httpx's ASGI transport.
        """
        request["headers"] = {**request.get("headers", {}), **self.headers[role]}
        prepared = requests.Request(**request).prepare()
        assert prepared.url is not None
        assert prepared.method is not None

        async def send() -> httpx.Response:
            response = await self.client.request(
                prepared.method,
                prepared.url,
                headers=dict(prepared.headers),
                content=prepared.body,
            )
            await response.request.aread()
            return response

        return self.loop.run(send)


async def _seed(client: httpx.AsyncClient, platform: dict[str, str]) -> dict[str, dict[str, str]]:
    """A tenant with phones, a skill group, two agents, a lease and one signed-in seat."""

    async def ok(method: str, url: str, who: dict[str, str], **kw: Any) -> dict[str, Any]:
        resp = await client.request(method, url, headers=who, **kw)
        assert resp.status_code < 300, (url, resp.text)
        return resp.json() if resp.content else {}

    base = f"/api/v1/tenants/{TENANT}"
    await ok("POST", "/api/v1/tenants", platform, json={"id": TENANT, "name": "Tenant One"})
    key = await ok(
        "POST", f"{base}/api-keys", platform, json={"name": "admin", "role": "tenant_admin"}
    )
    admin = {"Authorization": f"Bearer {key['key']}"}
    await ok(
        "POST",
        f"{base}/leases",
        platform,
        json={"seats": {"inbound": 5}, "valid_from": "2026-01-01"},
    )
    await ok("POST", f"{base}/skill-groups", admin, json={"name": "sales"})
    for n, phone in ((AGENT, "PJSIP/1001"), ("1002", "PJSIP/1002")):
        await ok("POST", f"{base}/endpoints", admin, json={"name": phone.split("/")[1]})
        await ok(
            "POST",
            f"{base}/agents",
            admin,
            json={
                "agent_no": n,
                "name": f"坐席{n}",
                "certified": True,
                "interface": phone,
                "skills": [{"skill_group": "sales", "level": 5}],
            },
        )
    await ok("POST", f"{base}/seats/{AGENT}/sign-in", admin, json={})
    token = await ok(
        "POST",
        "/api/v1/auth/token",
        admin,
        json={"subject": "agent@t1", "role": "agent", "agent_no": AGENT},
    )
    return {
        "tenant_admin": admin,
        "agent": {"Authorization": f"Bearer {token['access_token']}"},
    }


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("fuzz")
    loop = _Loop()
    stack = contextlib.AsyncExitStack()

    async def start() -> Rig:
        url = f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
        await run_migrations_async(url)
        # The PBX reads the queue file ccbridge writes, as a correctly installed one does.
        pbx = FakeAsterisk(
            users={"ccbridge": "fuzz-secret"},
            agi_url=None,
            seed=1,
            auth_fail_delay=0,
            queues_conf=tmp / "generated" / GENERATED_FILE,
        )
        await pbx.start()
        stack.push_async_callback(pbx.stop)
        config = Settings(
            database_url=url,
            ami=AmiSettings(host="127.0.0.1", port=pbx.ami_port, secret="fuzz-secret"),
            agi=AgiSettings(port=0),
            ivr=IvrSettings(prompts_dir=tmp / "prompts"),
            recordings=RecordingSettings(dir=tmp / "recordings"),
            asterisk_generated_dir=tmp / "generated",
        )
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        calendar = build_calendar_service(engine)
        ivr, agi = build_ivr_fastagi(config, engine, calendar)
        await agi.start()
        stack.push_async_callback(agi.stop)
        service = build_service(config, engine, agi, pbx.ami_port, ivr, calendar)
        tasks = [
            asyncio.create_task(service.writer.run()),
            asyncio.create_task(service.ami.run()),
            asyncio.create_task(service.seat_feed.run()),
        ]

        async def stop_tasks() -> None:
            await service.ami.stop()
            await service.writer.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(stop_tasks)
        async with asyncio.timeout(10):
            while not (service.ami.status.logged_in and service.ami.status.synced):  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # the AMI client has no "ready" event to await
        _key, plaintext = await service.access.create_system_key(
            role=Role.PLATFORM_ADMIN, tenant_id=None, name="fuzz", actor="system:test"
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.http.config.app), base_url="http://test"
        )
        stack.push_async_callback(client.aclose)
        headers = await _seed(client, {"Authorization": f"Bearer {plaintext}"})
        return Rig(loop, client, headers)

    try:
        yield loop.run(start)
    finally:
        loop.run(stack.aclose)
        loop.close()


def _fixed(op: Any) -> dict[str, Any]:
    """Pin the tenant to the seeded one: a random tenant only ever answers 404."""
    names = {(p.location, p.name) for p in op.iter_parameters()}
    fixed: dict[str, Any] = {}
    if ("path", "tenant_id") in names:
        fixed["path_parameters"] = {"tenant_id": TENANT}
    query = {}
    if ("query", "tenant") in names:
        query["tenant"] = TENANT
    if ("query", "wait") in names:
        query["wait"] = 0  # a long poll would only make the run slow
    if query:
        fixed["query"] = query
    return fixed


@pytest.mark.parametrize("role", ["tenant_admin", "agent"])
@pytest.mark.parametrize(
    "operation",
    [op for op in OPERATIONS if base_operation(op.definition.raw["operationId"]) not in SKIPPED],
    ids=lambda op: op.definition.raw["operationId"],
)
def test_every_answer_is_declared_and_none_is_a_server_error(
    rig: Rig, operation: Any, role: str
) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(**_fixed(operation)))
    def check(case: schemathesis.Case) -> None:
        request = case.as_transport_kwargs(base_url="http://test")
        response = rig.send(request, role)
        case.validate_response(response, checks=CHECKS)

    check()


def _without_instance(body: Any) -> Any:
    """A problem names the path it answers; the two forms differ only there."""
    return {k: v for k, v in body.items() if k != "instance"} if isinstance(body, dict) else body


def _get(rig: Rig, url: str, role: str) -> httpx.Response:
    return rig.send({"method": "GET", "url": f"http://test{url}"}, role)


@pytest.mark.parametrize("role", ["tenant_admin", "agent"])
@pytest.mark.parametrize(
    ("canonical", "alias"),
    [
        (f"/api/v1/tenants/{TENANT}/calls", "/api/v1/calls"),
        (f"/api/v1/tenants/{TENANT}/seats/live", f"/api/v1/seats/live?tenant={TENANT}"),
        (f"/api/v1/tenants/{TENANT}/events/settings", "/api/v1/events/settings"),
        (f"/api/v1/tenants/{TENANT}/webhooks", f"/api/v1/webhooks?tenant={TENANT}"),
        (f"/api/v1/tenants/{TENANT}/recordings", "/api/v1/recordings"),
    ],
)
def test_the_path_scoped_form_and_its_query_alias_answer_alike(
    rig: Rig, canonical: str, alias: str, role: str
) -> None:
    first, second = _get(rig, canonical, role), _get(rig, alias, role)
    assert first.status_code == second.status_code
    assert _without_instance(first.json()) == _without_instance(second.json())
    other = _get(rig, canonical.replace(f"/tenants/{TENANT}/", "/tenants/t2/"), role)
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
