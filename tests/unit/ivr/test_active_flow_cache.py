"""The active-flow cache: calls that arrive while the first load runs wait for it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from ccbridge.ivr_format.parse import YamlJsonFlowCodec
from ccbridge.services.ivr_ports import IvrFlowRepo, PromptRecord, PromptRepo, RevisionRecord
from ccbridge.services.ivr_runtime import ActiveFlowCache
from tests.fakes.ivr import FLOWS_DIR

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class SlowRevisions:
    """One active revision behind a database that answers only when released."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.release = asyncio.Event()
        self.stamp_reads = 0
        self._rev = RevisionRecord("t1", "main", 1, document, "a", "m", AT, AT, AT)

    async def state_stamp(self) -> tuple[int, datetime | None]:
        self.stamp_reads += 1
        await self.release.wait()
        return (1, AT)

    async def active_revisions(self) -> list[RevisionRecord]:
        return [self._rev]


class NoPrompts:
    """A tenant without uploaded prompts."""

    async def list(self, tenant_id: str) -> list[PromptRecord]:
        return []


async def test_calls_during_the_first_load_get_the_flow_and_share_one_load() -> None:
    codec = YamlJsonFlowCodec()
    body = (FLOWS_DIR / "main_menu_bilingual.yaml").read_bytes()
    revisions = SlowRevisions(codec.load(body, "application/yaml"))
    cache = ActiveFlowCache(
        cast(IvrFlowRepo, revisions), cast(PromptRepo, NoPrompts()), codec, prompts_root="/p"
    )
    calls = [asyncio.create_task(cache.flow_for("t1", "4008001234")) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert not any(call.done() for call in calls)  # none ran without the tenant's flow
    revisions.release.set()
    flows = await asyncio.gather(*calls)
    assert all(f is not None and (f.flow_id, f.revision) == ("main", 1) for f in flows)
    assert (revisions.stamp_reads, cache.reloads) == (1, 1)


class FlakyRevisions(SlowRevisions):
    """Answers, then goes away like a database cut off from ccbridge."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document)
        self.release.set()
        self.down = False

    async def state_stamp(self) -> tuple[int, datetime | None]:
        if self.down:
            self.stamp_reads += 1
            raise ConnectionRefusedError("database unreachable")
        return await super().state_stamp()


async def test_calls_keep_the_loaded_flows_while_the_database_is_away() -> None:
    codec = YamlJsonFlowCodec()
    body = (FLOWS_DIR / "main_menu_bilingual.yaml").read_bytes()
    revisions = FlakyRevisions(codec.load(body, "application/yaml"))
    cache = ActiveFlowCache(
        cast(IvrFlowRepo, revisions),
        cast(PromptRepo, NoPrompts()),
        codec,
        prompts_root="/p",
        check_every=0,
    )
    assert await cache.flow_for("t1", "4008001234") is not None
    revisions.down = True
    during = [await cache.flow_for("t1", "4008001234") for _ in range(3)]
    assert all(f is not None and (f.flow_id, f.revision) == ("main", 1) for f in during)
    assert cache.refresh_failures == 3  # each call tried the database, none failed for it
    revisions.down = False
    assert await cache.flow_for("t1", "4008001234") is not None
    assert cache.reloads == 1  # the stamp did not change: nothing reloaded
