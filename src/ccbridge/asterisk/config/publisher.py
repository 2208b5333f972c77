"""Keep the generated queues.conf equal to the skill groups in the DB, and reload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

import structlog

from ccbridge.asterisk.config.queues import (
    AmiActionSender,
    QueueDefinition,
    reload_queues,
    sync_queue_config,
)
from ccbridge.domain.recordings.pbx_names import MONITOR_FORMAT
from ccbridge.services.seat_ports import SkillGroupRecord

log = structlog.get_logger(__name__)


class QueueConfigPublisher:
    """Render the owned queues and ask app_queue to reload when the file changed."""

    def __init__(
        self,
        generated_dir: Path,
        groups: Callable[[], Awaitable[Sequence[SkillGroupRecord]]],
        ami: AmiActionSender,
        recorded: Callable[[Sequence[SkillGroupRecord]], Awaitable[Collection[str]]] | None = None,
    ) -> None:
        """*recorded* names the queues whose calls the PBX records itself (``monitor-format``,
        from the tenants' recording policies, ADR 0025); without it no queue records."""
        self._recorded = recorded
        self._dir = generated_dir
        self._groups = groups
        self._ami = ami
        self.reload_failures = 0

    async def publish(self, *, force_reload: bool = False) -> bool:
        """Write the file; reload if it changed, if a reload failed before, or if forced.

        Return False when the reload failed (retried on the next call), True otherwise.
        """
        groups = await self._groups()
        recorded = await self._recorded(groups) if self._recorded is not None else ()
        definitions = [
            QueueDefinition(
                g.queue,
                strategy=g.strategy,
                monitor_format=MONITOR_FORMAT if g.queue in recorded else None,
            )
            for g in groups
        ]
        self._dir.mkdir(parents=True, exist_ok=True)
        changed = sync_queue_config(self._dir, definitions)
        if not (changed or self.reload_failures or force_reload):
            return True
        try:
            await reload_queues(self._ami)
        except Exception as exc:  # the file is written; Asterisk picks it up on reload
            self.reload_failures += 1
            log.warning("acd_queue_reload_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        self.reload_failures = 0
        return True

    async def on_login(self, _client: object) -> None:
        """AMI login hook: a restarted PBX gets the current queue file before the resync."""
        await self.publish()
