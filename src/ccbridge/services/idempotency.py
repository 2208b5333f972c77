"""Idempotency-Key handling for telephony POSTs: a replay gets the first answer and never
reaches the PBX again (no second Originate)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ccbridge.services.call_control_ports import (
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    IdempotencyStore,
)

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
"""1-128 visible ASCII characters (a UUID is the usual choice)."""
KEEP = timedelta(hours=24)
_FIELD = f"header.{HEADER}"


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer to give (again): status and JSON body; ``replayed`` on a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(method: str, path: str, body: Any) -> str:
    """What makes two requests the same request: method, path and JSON body."""
    raw = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class IdempotencyService:
    """Run a request once per (tenant, key); store and replay its answer for ``KEEP``."""

    def __init__(self, store: IdempotencyStore, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self.replays = 0

    async def run(
        self,
        tenant_id: str,
        actor: str,
        key: str | None,
        request_fingerprint: str,
        action: Callable[[], Awaitable[Answer]],
    ) -> Answer:
        """Run *action* unless *key* already ran: then answer what it answered.

        A key reused with another request is refused (422); a key whose first request is
        still running answers 409. A request that fails (refused, PBX down) keeps no answer,
        so retrying with the same key runs it again.
        """
        if key is None:
            return await action()
        if not KEY_RE.fullmatch(key):
            raise IdempotencyKeyReusedError(
                "an Idempotency-Key is 1-128 visible ASCII characters", field=_FIELD
            )
        stored = await self._store.claim(tenant_id, key, actor, request_fingerprint, self._now())
        if stored is not None:
            if stored.fingerprint != request_fingerprint:
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key was used for a different request", field=_FIELD
                )
            if stored.status is None or stored.body is None:
                raise IdempotencyInProgressError(
                    "the first request with this Idempotency-Key is still running"
                )
            self.replays += 1
            return Answer(stored.status, stored.body, replayed=True)
        try:
            answer = await action()
        except BaseException:
            await self._store.release(tenant_id, key)
            raise
        await self._store.finish(tenant_id, key, answer.status, answer.body)
        return answer

    async def purge(self) -> int:
        """Forget keys older than ``KEEP``."""
        return await self._store.purge(self._now() - KEEP)
