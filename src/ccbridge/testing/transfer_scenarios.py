"""Transfer scenarios for the fake PBX, emitting what Asterisk 22 sends for them.

``ivr_queue_attended_transfer`` plays one inbound call: IVR (a ``CCB_X_IVR_CHOICE``
variable, as the IVR module sets it) → queue → agent A answers → A consults agent B on a
second call of its own (a new ``Linkedid``) → A completes an attended transfer → B talks
to the caller → the caller hangs up.

Asterisk semantics reproduced (fields from the manager docs of ``AttendedTransfer`` and
``BlindTransfer`` in Asterisk 22; the blind transfer matches the captured frame):

- the consultation call starts on A's phone, so it has its own ``Linkedid`` (L2);
- ``AttendedTransfer`` names the transferee (caller, L1), the original transferer (A's leg in
  the caller's bridge, L1), the second transferer (A's consultation leg, L2) and the
  transfer target (B, L2); ``DestType: Bridge`` with the caller's bridge as destination;
- once B joins the caller's bridge Asterisk folds the Linkedids to the oldest one, so B's
  later events (its ``Hangup``) carry L1; A's legs hang up;
- the queue reports the member's call as ``AgentComplete`` with ``Reason: transfer``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from ccbridge.testing import ami_frames as af
from ccbridge.testing.fake_ami import FakeAmiServer
from ccbridge.testing.pbx_model import STATE_RING, STATE_RINGING, STATE_UP, Channel


@dataclass(slots=True)
class TransferCall:
    """What the scenario created, for assertions."""

    linkedid: str = ""
    consult_linkedid: str = ""
    caller_channel: str = ""
    agent_a_channel: str = ""
    agent_b_channel: str = ""
    steps: list[str] = field(default_factory=list)
    """Names of the steps played, in order (the test documents its expectations per step)."""


def _bridge() -> str:
    return str(uuid.uuid4())


async def ivr_queue_attended_transfer(
    server: FakeAmiServer,
    *,
    tenant: str,
    did: str,
    caller: str,
    queue: str,
    agent_a: str,
    agent_b: str,
    ivr_choice: str = "2",
    step: float = 0.05,
    on_step: asyncio.Queue[str] | None = None,
    gate: asyncio.Event | None = None,
) -> TransferCall:
    """Play the whole call; pause ``step`` seconds between steps.

    With *on_step*, each step's name is put on the queue after it was emitted; with *gate*,
    the scenario waits for it to be set (and clears it) before the next step, so a test can
    check the four variables at every step.
    """
    model = server.model
    out = TransferCall()

    async def done(name: str) -> None:
        out.steps.append(name)
        if on_step is not None:
            on_step.put_nowait(name)
        if gate is not None:
            await gate.wait()
            gate.clear()
        else:
            await asyncio.sleep(step)

    # 1. The caller arrives on the trunk and enters the IVR.
    ch = model.new_channel(
        f"PJSIP/trunk-{model.ids.suffix('PJSIP')}",
        state=STATE_RING,
        context="from-pstn",
        exten=did,
        caller_num=caller,
        caller_name=caller,
    )
    out.linkedid, out.caller_channel = ch.linkedid, ch.name
    server.emit_channel("Newchannel", ch)
    server.set_var(ch, "CCB_DID", did)
    server.set_var(ch, "CCB_TENANT", tenant)
    ch.state = STATE_UP
    server.emit_channel("Newstate", ch)
    server.set_var(ch, "CCB_X_IVR_CHOICE", ivr_choice)
    await done("ivr")

    # 2. The IVR hands the caller to the queue.
    server.emit_channel(
        "QueueCallerJoin", ch, [("Queue", queue), ("Position", "1"), ("Count", "1")]
    )
    await done("queued")

    # 3. The queue rings agent A (a Local member, as ccbridge configures them).
    a_one, a_two = model.local_pair(agent_a, "agents", linkedid=ch.linkedid)
    out.agent_a_channel = a_one.name
    server.emit_channel("Newchannel", a_one)
    server.emit_channel("Newchannel", a_two)
    member = [
        ("Queue", queue),
        ("Interface", f"Local/{agent_a}@agents"),
        ("MemberName", f"{agent_a} Agent A"),
    ]
    server.emit_channel("AgentCalled", ch, [*af.channel_fields(a_one, "Dest"), *member])
    await done("ringing_a")

    # 4. A answers; caller and A's leg share bridge 1.
    a_one.state = a_two.state = STATE_UP
    server.emit_channel("Newstate", a_one)
    server.emit_channel(
        "AgentConnect",
        ch,
        [*af.channel_fields(a_one, "Dest"), *member, ("HoldTime", "3"), ("RingTime", "2")],
    )
    server.emit_channel(
        "QueueCallerLeave", ch, [("Queue", queue), ("Position", "1"), ("Count", "0")]
    )
    bridge1 = _bridge()
    server.emit("BridgeCreate", af.bridge_fields(bridge1, 0))
    for n, leg in enumerate((a_one, ch), start=1):
        leg.bridge_id = bridge1
        server.emit("BridgeEnter", [*af.bridge_fields(bridge1, n), *af.channel_fields(leg)])
    await done("answered_a")

    # 5. A consults B: a new call from A's phone, with its own Linkedid (L2).
    consult = model.new_channel(
        f"PJSIP/{agent_a}-{model.ids.suffix('PJSIP')}",
        state=STATE_RING,
        context="agents",
        exten=agent_b,
        caller_num=agent_a,
        caller_name="Agent A",
    )
    out.consult_linkedid = consult.linkedid
    server.emit_channel("Newchannel", consult)
    b = model.new_channel(
        f"PJSIP/{agent_b}-{model.ids.suffix('PJSIP')}",
        linkedid=consult.linkedid,
        state=STATE_RINGING,
        context="agents",
        exten=agent_b,
        caller_num=agent_b,
        caller_name="Agent B",
    )
    out.agent_b_channel = b.name
    server.emit_channel("Newchannel", b)
    b.state = consult.state = STATE_UP
    server.emit_channel("Newstate", b)
    server.emit_channel("Newstate", consult)
    bridge2 = _bridge()
    server.emit("BridgeCreate", af.bridge_fields(bridge2, 0))
    for n, leg in enumerate((consult, b), start=1):
        leg.bridge_id = bridge2
        server.emit("BridgeEnter", [*af.bridge_fields(bridge2, n), *af.channel_fields(leg)])
    await done("consulting_b")

    # 6. A completes the attended transfer: B joins the caller's bridge.
    fields = [("Result", "Success")]
    fields += af.channel_fields(a_one, "OrigTransferer")
    fields += _prefixed_bridge("Orig", bridge1, 2)
    fields += af.channel_fields(consult, "SecondTransferer")
    fields += _prefixed_bridge("Second", bridge2, 2)
    fields += af.channel_fields(ch, "Transferee")
    fields += af.channel_fields(b, "TransferTarget")
    fields += [("IsExternal", "No"), ("DestType", "Bridge"), ("DestBridgeUniqueid", bridge1)]
    server.emit("AttendedTransfer", fields)
    server.emit("BridgeLeave", [*af.bridge_fields(bridge1, 1), *af.channel_fields(a_one)])
    server.emit("BridgeLeave", [*af.bridge_fields(bridge2, 1), *af.channel_fields(consult)])
    server.emit("BridgeLeave", [*af.bridge_fields(bridge2, 0), *af.channel_fields(b)])
    b.linkedid = ch.linkedid  # Asterisk folds Linkedids to the oldest in the bridge
    b.bridge_id = bridge1
    server.emit("BridgeEnter", [*af.bridge_fields(bridge1, 2), *af.channel_fields(b)])
    server.emit("BridgeDestroy", af.bridge_fields(bridge2, 0))
    server.emit(
        "AgentComplete",
        [
            *af.channel_fields(ch),
            *af.channel_fields(a_one, "Dest"),
            *member,
            ("HoldTime", "3"),
            ("TalkTime", "5"),
            ("Reason", "transfer"),
        ],
        af.PRIV_AGENT,
    )
    for leg in (consult, a_one, a_two):
        server.hangup_channel(leg, 16, request=False)
    await done("transferred_b")

    # 7. The caller hangs up; B's leg (now under L1) goes too.
    server.emit("BridgeLeave", [*af.bridge_fields(bridge1, 1), *af.channel_fields(ch)])
    server.hangup_channel(ch, 16)
    server.emit("BridgeLeave", [*af.bridge_fields(bridge1, 0), *af.channel_fields(b)])
    server.hangup_channel(b, 16, request=False)
    server.emit("BridgeDestroy", af.bridge_fields(bridge1, 0))
    await done("ended")
    return out


def _prefixed_bridge(prefix: str, bridge_id: str, count: int) -> list[tuple[str, str]]:
    return [(f"{prefix}{k}", v) for k, v in af.bridge_fields(bridge_id, count)]


def leg_of(channel: Channel) -> str:
    """``Local/1101@agents-00000001;1`` → ``1101`` (the agent's extension)."""
    return channel.name.split("/", 1)[1].split("@", 1)[0].split("-", 1)[0]
