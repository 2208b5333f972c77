"""QueueControl over AMI: skill-group membership with Asterisk 22's own action syntax.

Field names and order follow the captured traffic (tests/fixtures/asterisk-captures):
``QueueAdd`` Queue/Interface/MemberName/StateInterface/Penalty/Paused/Reason, ``QueuePause``
Queue/Interface/Paused/Reason, ``QueueRemove`` Queue/Interface, ``QueuePenalty``
Interface/Penalty/Queue, and ``QueueStatus`` members read from ``Name``/``Location``/``Paused``/
``PausedReason``/``Penalty``.

Sign-in never lets a half-signed-in agent ring: the member is added paused (reason
``signing-in``) and only then unpaused. Adds and removals are idempotent ("Already there",
"Not there"). Every value is checked for CR/LF/NUL before the first action of an operation is
sent, so a bad reason never leaves a member half-added.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

import structlog

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.actions import AmiAction
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.domain.acd.membership import SIGNING_IN_REASON, QueueMemberSpec
from ccbridge.domain.acd.pbx_config import PbxInventory

log = structlog.get_logger(__name__)

_FORBIDDEN = ("\r", "\n", "\0")
_ALREADY_THERE = "already there"
_GONE = ("not there", "unable to remove interface")


class AmiSender(Protocol):
    """The part of :class:`~ccbridge.asterisk.ami.client.AmiClient` this adapter uses."""

    async def send_action(
        self,
        action: AmiAction | Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AmiMessage:
        """Send one action and return its response (``Response: Error`` raises)."""
        ...

    async def send_list_action(
        self,
        action: AmiAction | Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """Send a list action and return its response and items."""
        ...


def check_values(**values: str) -> None:
    """Raise ValueError naming the field when a value holds CR, LF or NUL (nothing is sent)."""
    for name, value in values.items():
        if any(ch in value for ch in _FORBIDDEN):
            raise ValueError(f"{name} holds CR, LF or NUL: {value[:40]!r}")


def queue_penalty(queue: str, interface: str, penalty: int) -> AmiAction:
    """``QueuePenalty`` for one member of one queue (Asterisk's documented field order)."""
    if penalty < 0:
        raise ValueError(f"penalty must be >= 0, got {penalty}")
    return AmiAction(
        "QueuePenalty", (("Interface", interface), ("Penalty", str(penalty)), ("Queue", queue))
    )


def member_from_item(item: AmiMessage) -> QueueMemberSpec | None:
    """Turn a ``QueueMember`` item of ``QueueStatus`` into a spec (None for other items)."""
    if item.event != "QueueMember":
        return None
    queue, location = item.get("Queue"), item.get("Location")
    if not queue or not location:
        return None
    try:
        penalty = max(0, int(item.get("Penalty") or 0))
    except ValueError:
        penalty = 0
    paused = (item.get("Paused") or "0").strip() == "1"
    return QueueMemberSpec(
        queue=queue,
        interface=location,
        member_name=item.get("Name") or location,
        penalty=penalty,
        paused=paused,
        reason=(item.get("PausedReason") or "") if paused else "",
    )


class AmiQueueControl:
    """:class:`ccbridge.services.acd.QueueControl` implemented with AMI actions."""

    def __init__(self, ami: AmiSender, *, status_timeout: float | None = 30.0) -> None:
        self._ami = ami
        self._status_timeout = status_timeout

    async def add_member(self, spec: QueueMemberSpec) -> None:
        """Add paused (reason ``signing-in``, or the spec's reason if it stays paused), then
        unpause if the spec is unpaused; "Already there" counts as added, then the pause state
        is set to the spec's."""
        check_values(
            queue=spec.queue,
            interface=spec.interface,
            member_name=spec.member_name,
            reason=spec.reason,
        )
        add_reason = spec.reason if spec.paused else SIGNING_IN_REASON
        action = act.queue_add(
            spec.queue,
            spec.interface,
            member_name=spec.member_name or None,
            state_interface=spec.interface,
            penalty=spec.penalty,
            paused=True,
            reason=add_reason or None,
        )
        try:
            await self._ami.send_action(action)
        except AmiActionError as exc:
            if _ALREADY_THERE not in exc.message.lower():
                raise
            log.info("acd_member_already_there", queue=spec.queue, interface=spec.interface)
            await self.set_paused(spec.queue, spec.interface, spec.paused, spec.reason)
            return
        if not spec.paused:
            await self.set_paused(spec.queue, spec.interface, False, "")

    async def remove_member(self, queue: str, interface: str) -> None:
        """``QueueRemove``; "Not there" / "Unable to remove interface" count as removed."""
        check_values(queue=queue, interface=interface)
        try:
            await self._ami.send_action(act.queue_remove(queue, interface))
        except AmiActionError as exc:
            text = exc.message.lower()
            if not any(marker in text for marker in _GONE):
                raise
            log.info("acd_member_already_gone", queue=queue, interface=interface)

    async def set_paused(self, queue: str, interface: str, paused: bool, reason: str) -> None:
        """``QueuePause`` in one queue; an unpause carries no reason (Asterisk drops it)."""
        check_values(queue=queue, interface=interface, reason=reason)
        await self._ami.send_action(
            act.queue_pause(
                interface, paused, queue=queue, reason=(reason or None) if paused else None
            )
        )

    async def set_penalty(self, queue: str, interface: str, penalty: int) -> None:
        """``QueuePenalty`` in one queue."""
        check_values(queue=queue, interface=interface)
        await self._ami.send_action(queue_penalty(queue, interface, penalty))

    async def snapshot(self, queues: Collection[str]) -> list[QueueMemberSpec]:
        """One ``QueueStatus`` for all queues, keeping dynamic members of ``queues``.

        Static members (``Membership: static``, from the admin's queues.conf) are left out:
        ccbridge can neither remove nor own them.
        """
        wanted = frozenset(queues)
        if not wanted:
            return []
        action = act.queue_status(next(iter(wanted))) if len(wanted) == 1 else act.queue_status()
        _, items = await self._ami.send_list_action(action, timeout=self._status_timeout)
        out: list[QueueMemberSpec] = []
        for item in items:
            if item.get("Queue") not in wanted or item.get("Membership") == "static":
                continue
            spec = member_from_item(item)
            if spec is not None:
                out.append(spec)
        return out

    async def inventory(self) -> PbxInventory:
        """Every queue (``QueueParams``) and member (``QueueMember``) one ``QueueStatus`` lists."""
        _, items = await self._ami.send_list_action(
            act.queue_status(), timeout=self._status_timeout
        )
        queues = {q for item in items if item.event == "QueueParams" if (q := item.get("Queue"))}
        members = {
            (q, loc)
            for item in items
            if item.event == "QueueMember"
            if (q := item.get("Queue")) and (loc := item.get("Location"))
        }
        return PbxInventory(frozenset(queues), frozenset(members))
