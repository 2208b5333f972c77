"""The call-control actions of the fake Asterisk 22: what the PBX does and reports for
``Redirect`` (with ``ExtraChannel``), ``Bridge``, ``MuteAudio``, ``Atxfer``, ``CancelAtxfer``,
``Hangup`` of a transferer, and ``Originate`` of an endpoint into ccbridge's dialplan.

Grounded in the captures (``Redirect`` answers ``Redirect successful`` and the redirected
channel stops its music on hold; ``BlindTransfer`` answers ``Transfer succeeded``; two legs in
``ConfBridge(8000)``; ``OriginateResponse`` with ``Reason: 4``) and, where the captures have no
frame, in the answers of Asterisk 22's manager sources (``Channels have been bridged``,
``Audiohook has been updated``, ``Atxfer successfully queued``, ``CancelAtxfer successfully
queued``). The dialplan the fake plays is ``asterisk/extensions-ccbridge.conf``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ccbridge.testing import ami_frames as af
from ccbridge.testing.pbx_model import STATE_RINGING, STATE_UP, Channel

if TYPE_CHECKING:
    from ccbridge.testing.fake_ami import AmiSession, FakeAmiServer, _Request

HOLD_CONTEXT = "ccbridge-hold"
CONFERENCE_CONTEXT = "ccbridge-conf"
OUTBOUND_CONTEXT = "ccbridge-outbound"
QUEUE_CONTEXT = "ccbridge-queue"
IVR_RETURN_CONTEXT = "ccbridge-ivr-return"
TRUNK = "PJSIP/trunk"


@dataclass(slots=True)
class _Consultation:
    """An attended transfer in progress: the transferer, its held peer and the target."""

    transferer: Channel
    peer: Channel
    target: Channel
    target_two: Channel
    bridge: str


@dataclass(slots=True)
class FakeCallControl:
    """State and handlers of the call-control actions (owned by one FakeAmiServer)."""

    server: FakeAmiServer
    consultations: dict[str, _Consultation] = field(default_factory=dict)
    """Attended transfers in progress by transferer channel name."""
    rooms: dict[str, list[str]] = field(default_factory=dict)
    """ConfBridge rooms and the channels in them."""
    muted: dict[str, str] = field(default_factory=dict)
    """MuteAudio state by channel name (``in``/``out``/``all``)."""
    dialled: list[tuple[str, str]] = field(default_factory=list)
    """(context, exten) every originated endpoint was connected to, in order."""
    requeue: Callable[[Channel, str], None] | None = None
    """Put a channel into a queue again (the call simulator's queue, set by FakeAsterisk)."""
    on_blind_transfer: Callable[[Channel, str, str], None] | None = None
    """Told (transferee, context, exten) of every blind transfer (the simulator's queue log)."""
    ivr_return: Callable[[Channel], None] | None = None
    """Run ``ccbridge-ivr-return`` for a channel (FastAGI ``ivr-return``, set by the simulator)."""
    spies: dict[str, tuple[str, str]] = field(default_factory=dict)
    """ChanSpy sessions running now: spy channel name → (spied channel name, options)."""
    spied: list[tuple[str, str, str]] = field(default_factory=list)
    """Every ChanSpy started, in order: (spy channel, spied channel, options)."""

    # ------------------------------------------------------------------ helpers

    def _leave_bridge(self, ch: Channel) -> None:
        if not ch.bridge_id:
            return
        left = len(self.server.model.bridged_with(ch))
        self.server.emit(
            "BridgeLeave", [*af.bridge_fields(ch.bridge_id, left), *af.channel_fields(ch)]
        )
        ch.bridge_id = ""

    def _bridged_with(self, ch: Channel) -> list[Channel]:
        return self.server.model.bridged_with(ch)

    def _bridge(self, *legs: Channel) -> str:
        bridge = str(uuid.uuid4())
        self.server.emit("BridgeCreate", af.bridge_fields(bridge, 0))
        for n, leg in enumerate(legs, start=1):
            leg.bridge_id = bridge
            self.server.emit("BridgeEnter", [*af.bridge_fields(bridge, n), *af.channel_fields(leg)])
        return bridge

    def _go(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        """A channel continues at context/exten/priority (what the dialplan there does)."""
        was_on_hold = ch.context == HOLD_CONTEXT
        self._leave_bridge(ch)
        if was_on_hold:
            self.server.emit_channel("MusicOnHoldStop", ch)
        ch.context, ch.exten, ch.priority = context, exten, priority
        self.server.emit_channel(
            "Newexten", ch, [("Extension", exten), ("Application", "NoOp"), ("AppData", "")]
        )
        if context == HOLD_CONTEXT:
            ch.application, ch.app_data = "MusicOnHold", ""
            self.server.emit_channel("MusicOnHoldStart", ch, [("Class", "default")])
        elif context == CONFERENCE_CONTEXT:
            ch.application, ch.app_data = "ConfBridge", exten
            room = self.rooms.setdefault(exten, [])
            room.append(ch.name)
            self.server.emit_channel("ConfbridgeJoin", ch, [("Conference", exten), ("Admin", "No")])
        elif context == IVR_RETURN_CONTEXT:
            ch.application, ch.app_data = "AGI", "agi://127.0.0.1:4573/ivr-return"
            if self.ivr_return is not None:
                self.ivr_return(ch)
        else:
            ch.application, ch.app_data = "Wait", ""

    # ------------------------------------------------------------------ actions

    async def redirect(self, session: AmiSession, req: _Request) -> bool:
        """Handle ``ExtraChannel`` and the ccbridge contexts; False: leave it to the plain
        Redirect (one channel, no ccbridge context)."""
        extra_name = req.get("ExtraChannel")
        ctx = req.get("Context")
        if not extra_name and not ctx.startswith("ccbridge-"):
            return False
        model = self.server.model
        ch = model.find_channel(req.get("Channel"))
        extra = model.find_channel(extra_name) if extra_name else None
        if ch is None or (extra_name and extra is None):
            session.error(req, "Channel specified does not exist")
            return True
        exten = req.get("Exten")
        if not ctx or not exten:
            session.error(req, "Redirect failed")
            return True
        # As captured from Asterisk 22.10.1 (redirect-hold-moh): a dual redirect says so.
        session.ok(req, "Dual Redirect successful" if extra is not None else "Redirect successful")
        alone = self._bridged_with(ch) if extra is None else []
        self._go(ch, ctx, exten, int(req.get("Priority") or 1))
        if len(alone) == 1:  # a two-party bridge dissolves: the other party hangs up
            self.hang_up(alone[0])
        if extra is not None:
            self._go(
                extra,
                req.get("ExtraContext") or ctx,
                req.get("ExtraExten") or exten,
                int(req.get("ExtraPriority") or req.get("Priority") or 1),
            )
        return True

    async def bridge(self, session: AmiSession, req: _Request) -> None:
        """``Bridge`` two channels (resume after hold)."""
        model = self.server.model
        one, two = req.get("Channel1"), req.get("Channel2")
        a, b = model.find_channel(one), model.find_channel(two)
        if a is None:
            session.error(req, f"Channel1 does not exist: {one}")
            return
        if b is None:
            session.error(req, f"Channel2 does not exist: {two}")
            return
        session.ok(req, "Channels have been bridged")
        for leg in (a, b):
            if leg.context == HOLD_CONTEXT:
                self.server.emit_channel("MusicOnHoldStop", leg)
            self._leave_bridge(leg)
            leg.application, leg.app_data = "AppQueue", "(Outgoing Line)"
        self._bridge(a, b)

    async def mute_audio(self, session: AmiSession, req: _Request) -> None:
        """``MuteAudio`` Direction in/out/all, State on/off."""
        ch = self.server.model.find_channel(req.get("Channel"))
        direction, state = req.get("Direction").lower(), req.get("State").lower()
        if ch is None:
            session.error(req, "No such channel")
            return
        if direction not in ("in", "out", "all") or state not in ("on", "off"):
            session.error(req, "Invalid direction or state specified")
            return
        session.ok(req, "Audiohook has been updated")
        if state == "on":
            self.muted[ch.name] = direction
        else:
            self.muted.pop(ch.name, None)

    async def atxfer(self, session: AmiSession, req: _Request) -> None:
        """``Atxfer``: the peer is held, the target is rung from the transferer and answers."""
        server = self.server
        ch = server.model.find_channel(req.get("Channel"))
        exten, ctx = req.get("Exten"), req.get("Context") or "default"
        if ch is None:
            session.error(req, "No such channel")
            return
        if not exten:
            session.error(req, "No extension specified")
            return
        peer = next(iter(server.model.bridged_with(ch)), None)
        if peer is None:
            session.error(req, "Atxfer failed: the channel is not bridged")
            return
        session.ok(req, "Atxfer successfully queued")
        server.emit_channel("MusicOnHoldStart", peer, [("Class", "default")])
        self._leave_bridge(ch)
        target, two = server.model.local_pair(exten, ctx, linkedid=ch.linkedid)
        server.emit_channel("Newchannel", target)
        server.emit_channel("Newchannel", two)
        target.state = STATE_RINGING
        server.emit_channel("Newstate", target)
        target.state = two.state = STATE_UP
        server.emit_channel("Newstate", two)
        server.emit_channel("Newstate", target)
        bridge = self._bridge(ch, target)
        self.consultations[ch.name] = _Consultation(ch, peer, target, two, bridge)

    async def cancel_atxfer(self, session: AmiSession, req: _Request) -> None:
        """``CancelAtxfer``: the target hangs up, transferer and peer talk again."""
        name = req.get("Channel")
        consult = self.consultations.pop(name, None)
        if consult is None:
            session.error(req, "Unable to cancel attended transfer")
            return
        session.ok(req, "CancelAtxfer successfully queued")
        server = self.server
        self._leave_bridge(consult.transferer)
        server.hangup_channel(consult.target)
        server.hangup_channel(consult.target_two)
        server.emit_channel("MusicOnHoldStop", consult.peer)
        self._leave_bridge(consult.peer)
        self._bridge(consult.peer, consult.transferer)

    def hang_up(self, ch: Channel, cause: int = 16) -> None:
        """Hang *ch* up as Asterisk does: a Local channel's other half goes too, and a
        two-party bridge dissolves (the remaining party hangs up, with its other half)."""
        server = self.server
        gone = [ch, *self._local_half(ch)]
        bridge = ch.bridge_id
        if bridge:
            rest = [
                c for c in server.model.channels.values() if c.bridge_id == bridge and c is not ch
            ]
            if len(rest) == 1:
                gone += [rest[0], *self._local_half(rest[0])]
        for leg in gone:
            self._leave_bridge(leg)
            server.hangup_channel(leg, cause)

    def _local_half(self, ch: Channel) -> list[Channel]:
        if not (ch.name.startswith("Local/") and ch.name[-2:] in (";1", ";2")):
            return []
        half = self.server.model.find_channel(ch.name[:-1] + ("2" if ch.name[-1] == "1" else "1"))
        return [half] if half is not None else []

    def complete_on_hangup(self, ch: Channel) -> None:
        """The transferer of an attended transfer hung up: the transfer completes."""
        consult = self.consultations.pop(ch.name, None)
        if consult is None:
            return
        server = self.server
        peer, target = consult.peer, consult.target
        old_bridge = peer.bridge_id
        fields = [("Result", "Success")]
        fields += af.channel_fields(ch, "OrigTransferer")
        fields += [(f"Orig{k}", v) for k, v in af.bridge_fields(old_bridge, 1)]
        fields += af.channel_fields(ch, "SecondTransferer")
        fields += [(f"Second{k}", v) for k, v in af.bridge_fields(consult.bridge, 2)]
        fields += af.channel_fields(peer, "Transferee")
        fields += af.channel_fields(target, "TransferTarget")
        fields += [("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", old_bridge)]
        server.emit("AttendedTransfer", fields)
        self._leave_bridge(ch)
        self._leave_bridge(target)
        server.emit_channel("MusicOnHoldStop", peer)
        self._leave_bridge(peer)
        self._bridge(peer, target)

    def after_blind_transfer(
        self, transferer: Channel, peer: Channel, context: str, exten: str
    ) -> None:
        """What follows ``BlindTransfer`` (as captured): both leave the bridge, the transferer
        hangs up (a Local leg with its other half), the transferee runs *exten@context*."""
        server = self.server
        self._leave_bridge(peer)
        self._leave_bridge(transferer)
        server.emit_channel(
            "Newexten", peer, [("Extension", exten), ("Application", "NoOp"), ("AppData", "")]
        )
        self.hang_up(transferer)
        if self.on_blind_transfer is not None:
            self.on_blind_transfer(peer, context, exten)
        if context == QUEUE_CONTEXT:
            if self.requeue is not None:
                self.requeue(peer, exten)
            return
        self.originate_into_dialplan(peer, context, exten)

    def originate_into_dialplan(self, one: Channel, context: str, exten: str) -> Channel | None:
        """An originated endpoint answered and runs *exten@context*: the far end answers."""
        server = self.server
        self.dialled.append((context, exten))
        if context == CONFERENCE_CONTEXT:
            self._go(one, context, exten, 1)
            return None
        if context == OUTBOUND_CONTEXT:
            far = server.model.new_channel(
                f"{TRUNK}-{server.model.ids.suffix('PJSIP')}",
                linkedid=one.linkedid,
                context="from-trunk",
                exten=exten,
                caller_num=exten,
                caller_name=exten,
            )
        else:
            far, _two = server.model.local_pair(exten, context, linkedid=one.linkedid)
        server.emit_channel("Newchannel", far)
        server.emit("DialBegin", [*af.channel_fields(one), *af.channel_fields(far, "Dest")])
        far.state = STATE_RINGING
        server.emit_channel("Newstate", far)
        far.state = STATE_UP
        server.emit_channel("Newstate", far)
        server.emit(
            "DialEnd",
            [*af.channel_fields(one), *af.channel_fields(far, "Dest"), ("DialStatus", "ANSWER")],
        )
        self._bridge(one, far)
        return far

    # ------------------------------------------------------------------ ChanSpy

    async def chanspy(self, spy: Channel, data: str) -> None:
        """``ChanSpy(<channel prefix>,<options>)`` on an answered, originated channel: the
        first live channel whose name starts with the prefix is spied on (``ChanSpyStart``)
        until it or the spy hangs up (``ChanSpyStop``); none found, the spy just ends."""
        server = self.server
        prefix, _, options = data.partition(",")
        spy.application, spy.app_data = "ChanSpy", data
        target = next(
            (
                c
                for c in server.model.channels.values()
                if prefix and c.name.startswith(prefix) and c is not spy
            ),
            None,
        )
        if target is None:
            return
        self.spies[spy.name] = (target.name, options)
        self.spied.append((spy.name, target.name, options))
        pair = [*af.channel_fields(spy, "Spyer"), *af.channel_fields(target, "Spyee")]
        server.emit("ChanSpyStart", pair)
        while (
            server.model.find_channel(target.name) is not None
            and server.model.find_channel(spy.name) is not None
        ):
            await server.sleep(0.05)
        self.spies.pop(spy.name, None)
        server.emit("ChanSpyStop", pair)
