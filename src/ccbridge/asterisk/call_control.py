"""Call control with Asterisk 22's own AMI actions and ccbridge's dialplan contexts.

Which action does what (``asterisk/extensions-ccbridge.conf`` has the contexts):

- hold: ``Redirect`` the customer to ``ccbridge-hold`` (MusicOnHold) and, as ``ExtraChannel``,
  the agent to ``ccbridge-hold-agent`` (silence); resume: ``Bridge`` them together again.
  Asterisk has no AMI Hold, and this works with any SIP phone (no vendor NOTIFY).
- mute: ``MuteAudio`` on the agent's channel, ``Direction: in`` (what the agent says).
- blind transfer: ``BlindTransfer`` of the agent's channel (its peer, the customer, moves);
  attended: ``Atxfer`` from the agent's channel, ``CancelAtxfer`` to go back; the transfer
  completes when the agent's channel hangs up (Asterisk 12+ bridging).
- 3-way: ``Redirect`` customer and agent into ``ccbridge-conf`` (ConfBridge) and ``Originate``
  the third party into the same room.
- hand back to IVR: ``Setvar`` the flow node (and the agent to come back to) on the customer's
  channel, then ``Redirect`` it to ``ccbridge-ivr-return`` (FastAGI ``ivr-return``).
- click-to-call / internal call: ``Originate`` of the agent's endpoint (it rings first) into
  ``ccbridge-outbound`` / the agents context, ``Async: true``, with ``ChannelId`` so the call's
  Linkedid is known before the PBX reports it.
- listen / whisper / barge: ``Originate`` of the supervisor's endpoint into the application
  ``ChanSpy(<agent channel>,q|qw|qB)`` (no dialplan needed: the endpoint is the tenant's phone).

Every value is checked for CR/LF/NUL by :class:`AmiAction` before a byte is written; a
``Response: Error`` (the channel has gone meanwhile) is a 409 naming the action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.actions import AmiAction
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.queue_control import AmiSender
from ccbridge.domain.calls.spy import SpyMode, chanspy_data
from ccbridge.errors import ConflictError
from ccbridge.services.call_control_ports import Dial, OriginateCall

HOLD_CONTEXT = "ccbridge-hold"
HOLD_AGENT_CONTEXT = "ccbridge-hold-agent"
CONFERENCE_CONTEXT = "ccbridge-conf"
OUTBOUND_CONTEXT = "ccbridge-outbound"
QUEUE_CONTEXT = "ccbridge-queue"
IVR_RETURN_CONTEXT = "ccbridge-ivr-return"
ORIGINATE_TIMEOUT_MS = 30_000
"""How long the agent's phone rings before a click-to-call gives up."""
RESUME_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
"""Seconds between ``Bridge`` attempts while a hold's ``Redirect`` is still moving the legs."""
BRIDGE_IN_FLUX = "Unable to add"
"""Asterisk 22's ``Bridge failed: Unable to add Channel…`` while a leg's old bridge dissolves."""


class PbxRefusedError(ConflictError):
    """Asterisk refused a call-control action (e.g. the channel hung up meanwhile)."""


class AmiCallControl:
    """Implements ``services.call_control_ports.CallControlPbx`` over one AMI client."""

    def __init__(
        self,
        client: AmiSender,
        agents_context: str,
        *,
        outbound_context: str = OUTBOUND_CONTEXT,
        ivr_return_context: str = IVR_RETURN_CONTEXT,
    ) -> None:
        """*outbound_context* and *ivr_return_context* are for a test PBX whose trunk and
        FastAGI port differ (the shipped dialplan's names are the defaults)."""
        self._client = client
        self._ivr_return = ivr_return_context
        self._contexts = {
            "agent": agents_context,
            "queue": QUEUE_CONTEXT,
            "outbound": outbound_context,
            "conference": CONFERENCE_CONTEXT,
        }

    def context_of(self, to: Dial) -> str:
        """The dialplan context a place is in."""
        return self._contexts[to.place]

    async def _send(self, action: AmiAction) -> None:
        try:
            await self._client.send_action(action)
        except AmiActionError as exc:
            raise PbxRefusedError(f"Asterisk refused {action.name}: {exc.message}") from exc

    async def hold(self, customer: str, agent: str) -> None:
        """Customer to music on hold, agent to silence."""
        await self._send(
            act.redirect(
                customer,
                HOLD_CONTEXT,
                "s",
                extra_channel=agent,
                extra_context=HOLD_AGENT_CONTEXT,
                extra_exten="s",
                extra_priority=1,
            )
        )

    async def resume(self, customer: str, agent: str) -> None:
        """Bridge them together again.

        A resume right after the hold can reach Asterisk while the hold's ``Redirect`` is
        still taking the legs out of their old bridge; Asterisk then refuses with "Unable to
        add Channel…". That refusal is retried for up to 1.55 s; any other is a conflict at once.
        """
        for delay in (*RESUME_RETRY_DELAYS, None):
            try:
                await self._client.send_action(act.bridge(customer, agent))
                return
            except AmiActionError as exc:
                if delay is None or BRIDGE_IN_FLUX not in exc.message:
                    raise PbxRefusedError(f"Asterisk refused Bridge: {exc.message}") from exc
            await asyncio.sleep(delay)

    async def mute(self, agent: str, muted: bool) -> None:
        """Mute what the agent says."""
        await self._send(act.mute_audio(agent, "in", muted))

    async def blind_transfer(self, agent: str, to: Dial) -> None:
        """``BlindTransfer`` of the agent's channel."""
        await self._send(act.blind_transfer(agent, to.exten, self.context_of(to)))

    async def attended_transfer(self, agent: str, to: Dial) -> None:
        """``Atxfer`` from the agent's channel."""
        await self._send(act.atxfer(agent, to.exten, self.context_of(to)))

    async def cancel_transfer(self, agent: str) -> None:
        """``CancelAtxfer`` of the agent's channel."""
        await self._send(act.cancel_atxfer(agent))

    async def conference(
        self, customer: str, agent: str, room: str, third: Dial, *, caller_id: str
    ) -> None:
        """Both legs into the room, then ring the third party (a Local channel through the
        agents or the outbound context, never a raw trunk) into it."""
        await self._send(
            act.redirect(
                customer,
                CONFERENCE_CONTEXT,
                room,
                extra_channel=agent,
                extra_context=CONFERENCE_CONTEXT,
                extra_exten=room,
                extra_priority=1,
            )
        )
        await self._send(
            act.originate(
                f"Local/{third.exten}@{self.context_of(third)}",
                exten=room,
                context=CONFERENCE_CONTEXT,
                priority=1,
                caller_id=f"<{caller_id}>",
                timeout_ms=ORIGINATE_TIMEOUT_MS,
            )
        )

    async def return_to_ivr(self, customer: str, variables: Mapping[str, str]) -> None:
        """Set the variables, then redirect."""
        for name, value in variables.items():
            await self._send(act.setvar(name, value, customer))
        await self._send(act.redirect(customer, self._ivr_return, "s"))

    async def originate(self, call: OriginateCall) -> None:
        """``Originate`` of the endpoint into the place, async."""
        await self._send(
            act.originate(
                call.endpoint,
                exten=call.to.exten,
                context=self.context_of(call.to),
                priority=1,
                caller_id=call.caller_id,
                timeout_ms=ORIGINATE_TIMEOUT_MS,
                channel_id=call.call_id,
                variables=call.variables,
            )
        )

    async def hangup(self, channel: str) -> None:
        """``Hangup`` one channel."""
        await self._send(act.hangup(channel))

    async def spy(
        self, supervisor_endpoint: str, agent_channel: str, mode: SpyMode, caller_id: str
    ) -> None:
        """Ring the supervisor's phone into ``ChanSpy`` on the agent's channel."""
        await self._send(
            act.originate(
                supervisor_endpoint,
                application="ChanSpy",
                data=chanspy_data(agent_channel, mode),
                caller_id=caller_id,
                timeout_ms=ORIGINATE_TIMEOUT_MS,
            )
        )
