"""Idempotency-Key: one run per key, the first answer replayed, failures retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ccbridge.services.call_control_ports import (
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    StoredAnswer,
)
from ccbridge.services.idempotency import Answer, IdempotencyService, fingerprint

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


class MemoryStore:
    """IdempotencyStore in a dict, with the same claim semantics as the SQL one."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[str, datetime, int | None, Any]] = {}

    async def claim(
        self, tenant_id: str, key: str, actor: str, fingerprint: str, at: datetime
    ) -> StoredAnswer | None:
        row = self.rows.get((tenant_id, key))
        if row is None:
            self.rows[(tenant_id, key)] = (fingerprint, at, None, None)
            return None
        return StoredAnswer(row[0], row[2], row[3])

    async def finish(self, tenant_id: str, key: str, status: int, body: dict[str, Any]) -> None:
        fp, at, _, _ = self.rows[(tenant_id, key)]
        self.rows[(tenant_id, key)] = (fp, at, status, body)

    async def release(self, tenant_id: str, key: str) -> None:
        if self.rows.get((tenant_id, key), ("", NOW, 1, None))[2] is None:
            del self.rows[(tenant_id, key)]

    async def purge(self, before: datetime) -> int:
        old = [k for k, v in self.rows.items() if v[1] < before]
        for k in old:
            del self.rows[k]
        return len(old)


class Dialler:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Answer:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("PBX down")
        return Answer(200, {"call_id": f"c{self.calls}"})


FP = fingerprint("POST", "/dial", {"number": "139"})


async def test_a_replay_answers_the_first_answer_without_running_again() -> None:
    svc, dial = IdempotencyService(MemoryStore(), lambda: NOW), Dialler()
    first = await svc.run("t1", "user:a", "k1", FP, dial)
    for _ in range(3):
        again = await svc.run("t1", "user:a", "k1", FP, dial)
        assert (again.status, again.body, again.replayed) == (200, first.body, True)
    assert dial.calls == 1
    assert svc.replays == 3
    other_tenant = await svc.run("t2", "user:b", "k1", FP, dial)
    assert not other_tenant.replayed
    assert dial.calls == 2


async def test_the_same_key_for_another_request_is_refused_naming_the_header() -> None:
    svc, dial = IdempotencyService(MemoryStore(), lambda: NOW), Dialler()
    await svc.run("t1", "user:a", "k1", FP, dial)
    with pytest.raises(IdempotencyKeyReusedError) as err:
        await svc.run("t1", "user:a", "k1", fingerprint("POST", "/dial", {"number": "1"}), dial)
    assert err.value.field == "header.Idempotency-Key"
    assert dial.calls == 1


async def test_a_concurrent_replay_waits_its_turn_and_never_dials() -> None:
    svc, dial = IdempotencyService(MemoryStore(), lambda: NOW), Dialler()
    dial.gate = asyncio.Event()
    first = asyncio.create_task(svc.run("t1", "user:a", "k1", FP, dial))
    await asyncio.sleep(0)
    with pytest.raises(IdempotencyInProgressError):
        await svc.run("t1", "user:a", "k1", FP, dial)
    dial.gate.set()
    assert (await first).status == 200
    assert dial.calls == 1


async def test_a_failed_request_keeps_no_answer_so_a_retry_runs() -> None:
    svc, dial = IdempotencyService(MemoryStore(), lambda: NOW), Dialler()
    dial.fail = True
    with pytest.raises(RuntimeError):
        await svc.run("t1", "user:a", "k1", FP, dial)
    dial.fail = False
    assert not (await svc.run("t1", "user:a", "k1", FP, dial)).replayed
    assert dial.calls == 2


async def test_bad_keys_are_refused_and_no_key_simply_runs() -> None:
    svc, dial = IdempotencyService(MemoryStore(), lambda: NOW), Dialler()
    for bad in ("", "a b", "x" * 129, "é"):
        with pytest.raises(IdempotencyKeyReusedError):
            await svc.run("t1", "user:a", bad, FP, dial)
    assert dial.calls == 0
    await svc.run("t1", "user:a", None, FP, dial)
    await svc.run("t1", "user:a", None, FP, dial)
    assert dial.calls == 2


async def test_keys_are_purged_after_a_day() -> None:
    store = MemoryStore()
    now = NOW
    svc = IdempotencyService(store, lambda: now)
    await svc.run("t1", "user:a", "old", FP, Dialler())
    now = NOW + timedelta(hours=25)
    await svc.run("t1", "user:a", "new", FP, Dialler())
    assert await svc.purge() == 1
    assert list(store.rows) == [("t1", "new")]
