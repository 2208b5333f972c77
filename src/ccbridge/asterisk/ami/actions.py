"""Typed builders for the AMI actions ccbridge sends, with field names taken from real captures.

Every builder returns an immutable :class:`AmiAction`; the client adds the ``ActionID`` and
validates every value (CR/LF/NUL) before a byte is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccbridge.asterisk.ami.codec import check_header

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AmiAction:
    """One AMI action without its ActionID: the name plus ordered header pairs."""

    name: str
    fields: Pairs = ()

    def __post_init__(self) -> None:
        check_header("Action", self.name)
        for key, value in self.fields:
            check_header(key, value)

    def pairs(self, action_id: str) -> list[tuple[str, str]]:
        """Return the wire headers, ``Action`` and ``ActionID`` first (as Asterisk logs them)."""
        return [("Action", self.name), ("ActionID", action_id), *self.fields]

    def get(self, key: str) -> str | None:
        """Return the first value of ``key`` among the fields, if any."""
        for k, v in self.fields:
            if k == key:
                return v
        return None

    @classmethod
    def from_mapping(cls, data: Mapping[str, str]) -> AmiAction:
        """Build an action from a panoramisk-style dict (``{"Action": "Ping", ...}``)."""
        name = next((v for k, v in data.items() if k.lower() == "action"), None)
        if not name:
            raise ValueError("an AMI action mapping needs an 'Action' key")
        fields = tuple(
            (k, str(v)) for k, v in data.items() if k.lower() not in ("action", "actionid")
        )
        return cls(name, fields)


def _build(name: str, *pairs: tuple[str, object | None]) -> AmiAction:
    """Drop ``None`` values and render the rest as AMI text (bools as true/false)."""
    fields: list[tuple[str, str]] = []
    for key, value in pairs:
        if value is None:
            continue
        fields.append((key, _text(value)))
    return AmiAction(name, tuple(fields))


def _text(value: object) -> str:
    """Render a Python value the way AMI expects it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def md5_key(challenge: str, secret: str) -> str:
    """Return the MD5 login key: ``md5hex(challenge + secret)`` (not used for security here)."""
    return hashlib.md5((challenge + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


def ping() -> AmiAction:
    """Heartbeat; Asterisk answers ``Ping: Pong``."""
    return AmiAction("Ping")


def challenge(auth_type: str = "MD5") -> AmiAction:
    """Ask for an MD5 login challenge."""
    return _build("Challenge", ("AuthType", auth_type))


def login_md5(username: str, key: str, events: str | None = None) -> AmiAction:
    """Log in with ``Key = md5hex(challenge + secret)``, so the secret never crosses the wire."""
    return _build(
        "Login", ("AuthType", "MD5"), ("Username", username), ("Key", key), ("Events", events)
    )


def login_plain(username: str, secret: str, events: str | None = None) -> AmiAction:
    """Log in with a plaintext secret (only for loopback or TLS)."""
    return _build("Login", ("Username", username), ("Secret", secret), ("Events", events))


def logoff() -> AmiAction:
    """End the session politely; Asterisk answers ``Response: Goodbye``."""
    return AmiAction("Logoff")


def queue_add(
    queue: str,
    interface: str,
    *,
    member_name: str | None = None,
    state_interface: str | None = None,
    penalty: int | None = None,
    paused: bool | None = None,
    reason: str | None = None,
) -> AmiAction:
    """Add a dynamic queue member (an agent logging into a skill)."""
    return _build(
        "QueueAdd",
        ("Queue", queue),
        ("Interface", interface),
        ("MemberName", member_name),
        ("StateInterface", state_interface),
        ("Penalty", penalty),
        ("Paused", paused),
        ("Reason", reason),
    )


def queue_remove(queue: str, interface: str) -> AmiAction:
    """Remove a dynamic queue member."""
    return _build("QueueRemove", ("Queue", queue), ("Interface", interface))


def queue_pause(
    interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None
) -> AmiAction:
    """Pause or unpause a member, in one queue or (without ``queue``) in all of them."""
    return _build(
        "QueuePause",
        ("Queue", queue),
        ("Interface", interface),
        ("Paused", paused),
        ("Reason", reason),
    )


def queue_status(queue: str | None = None, member: str | None = None) -> AmiAction:
    """List queue parameters, members and callers (an ``EventList``)."""
    return _build("QueueStatus", ("Queue", queue), ("Member", member))


def queue_summary(queue: str | None = None) -> AmiAction:
    """List per-queue counters (an ``EventList``)."""
    return _build("QueueSummary", ("Queue", queue))


def core_show_channels() -> AmiAction:
    """List the live channels (an ``EventList``), used for resync after reconnect."""
    return AmiAction("CoreShowChannels")


def core_settings() -> AmiAction:
    """The PBX's settings, ``SystemName`` among them (the prefix of every call id)."""
    return AmiAction("CoreSettings")


def _variables(variables: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[str]:
    """Render channel variables as ``NAME=value`` strings, one ``Variable`` header each."""
    if variables is None:
        return []
    items = variables.items() if isinstance(variables, Mapping) else variables
    out: list[str] = []
    for name, value in items:
        if not name or "=" in name:
            raise ValueError(f"bad channel variable name: {name!r}")
        out.append(f"{name}={value}")
    return out


def originate(
    channel: str,
    *,
    exten: str | None = None,
    context: str | None = None,
    priority: int | str | None = None,
    application: str | None = None,
    data: str | None = None,
    caller_id: str | None = None,
    timeout_ms: int | None = None,
    account: str | None = None,
    channel_id: str | None = None,
    variables: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> AmiAction:
    """Start a call; always ``Async: true`` so the answer never blocks the AMI session."""
    if application is None and (exten is None or context is None):
        raise ValueError("Originate needs exten+context (+priority) or an application")
    if application is not None and exten is not None:
        raise ValueError("Originate takes exten/context/priority or application/data, not both")
    if exten is not None and priority is None:
        priority = 1
    action = _build(
        "Originate",
        ("Channel", channel),
        ("Exten", exten),
        ("Context", context),
        ("Priority", priority),
        ("Application", application),
        ("Data", data),
        ("CallerID", caller_id),
        ("Async", True),
        ("Timeout", timeout_ms),
        ("Account", account),
        ("ChannelId", channel_id),
    )
    extra = tuple(("Variable", v) for v in _variables(variables))
    return AmiAction(action.name, action.fields + extra)


def redirect(
    channel: str,
    context: str,
    exten: str,
    priority: int | str = 1,
    *,
    extra_channel: str | None = None,
    extra_context: str | None = None,
    extra_exten: str | None = None,
    extra_priority: int | str | None = None,
) -> AmiAction:
    """Move a channel (and optionally a second one, elsewhere) to another dialplan location,
    for example the customer to music on hold and the agent to silence."""
    if extra_channel is None and (extra_context or extra_exten or extra_priority is not None):
        raise ValueError("ExtraContext/ExtraExten/ExtraPriority need an ExtraChannel")
    return _build(
        "Redirect",
        ("Channel", channel),
        ("ExtraChannel", extra_channel),
        ("Context", context),
        ("Exten", exten),
        ("Priority", priority),
        ("ExtraContext", extra_context),
        ("ExtraExten", extra_exten),
        ("ExtraPriority", extra_priority),
    )


def bridge(channel1: str, channel2: str, *, tone: str = "no") -> AmiAction:
    """Bridge two channels already in the PBX (resume: customer and agent back together)."""
    if tone not in ("no", "Channel1", "Channel2", "Both"):
        raise ValueError(f"bad Bridge tone: {tone!r}")
    return _build("Bridge", ("Channel1", channel1), ("Channel2", channel2), ("Tone", tone))


def mute_audio(channel: str, direction: str, mute: bool) -> AmiAction:
    """Mute or unmute a channel's audio (``in``: what the agent says, ``out``: what it hears)."""
    if direction not in ("in", "out", "all"):
        raise ValueError(f"bad MuteAudio direction: {direction!r}")
    return _build(
        "MuteAudio",
        ("Channel", channel),
        ("Direction", direction),
        ("State", "on" if mute else "off"),
    )


def cancel_atxfer(channel: str) -> AmiAction:
    """Cancel the attended transfer ``channel`` (the transferer) started (Asterisk 13.18+)."""
    return _build("CancelAtxfer", ("Channel", channel))


def hangup(channel: str, cause: int | None = None) -> AmiAction:
    """Hang a channel up, optionally with a Q.850 cause."""
    return _build("Hangup", ("Channel", channel), ("Cause", cause))


def mix_monitor(
    channel: str, file: str, *, options: str | None = None, command: str | None = None
) -> AmiAction:
    """Start recording a channel with MixMonitor (Asterisk 21+ has no Monitor)."""
    return _build(
        "MixMonitor",
        ("Channel", channel),
        ("File", file),
        ("Options", options),
        ("Command", command),
    )


def stop_mix_monitor(channel: str, mixmonitor_id: str | None = None) -> AmiAction:
    """Stop a MixMonitor recording."""
    return _build("StopMixMonitor", ("Channel", channel), ("MixMonitorID", mixmonitor_id))


def mix_monitor_mute(channel: str, mute: bool, direction: str = "both") -> AmiAction:
    """Mute (``State: 1``) or unmute (``State: 0``) a recording, e.g. while taking card data."""
    if direction not in ("read", "write", "both"):
        raise ValueError(f"bad MixMonitorMute direction: {direction!r}")
    return _build(
        "MixMonitorMute", ("Channel", channel), ("Direction", direction), ("State", int(mute))
    )


def blind_transfer(channel: str, exten: str, context: str) -> AmiAction:
    """Blind-transfer a bridged channel to ``exten@context``."""
    return _build("BlindTransfer", ("Channel", channel), ("Exten", exten), ("Context", context))


def atxfer(channel: str, exten: str, context: str) -> AmiAction:
    """Start an attended transfer from ``channel`` to ``exten@context``."""
    return _build("Atxfer", ("Channel", channel), ("Exten", exten), ("Context", context))


DTMF_DIGITS = frozenset("0123456789*#ABCD")


def play_dtmf(
    channel: str, digit: str, *, duration_ms: int | None = None, receive: bool = False
) -> AmiAction:
    """Play one DTMF digit to ``channel``; with ``receive``, as if the channel had sent it
    (how a feature code such as the 3-way ``*3`` reaches a bridge from its phone)."""
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        raise ValueError(f"bad DTMF digit {digit!r}: one of 0-9 * # A-D")
    if duration_ms is not None and not 0 < duration_ms <= 10_000:
        raise ValueError(f"bad DTMF duration {duration_ms!r} ms: 1 to 10000")
    return _build(
        "PlayDTMF",
        ("Channel", channel),
        ("Digit", digit),
        ("Duration", duration_ms),
        ("Receive", True if receive else None),
    )


def setvar(variable: str, value: str, channel: str | None = None) -> AmiAction:
    """Set a channel (or, without ``channel``, a global) variable."""
    return _build("Setvar", ("Channel", channel), ("Variable", variable), ("Value", value))


def getvar(variable: str, channel: str | None = None) -> AmiAction:
    """Read a channel (or global) variable; the answer carries ``Value``."""
    return _build("Getvar", ("Channel", channel), ("Variable", variable))


def command(cli: str) -> AmiAction:
    """Run a CLI command; AMI 11 answers with ``Output:`` lines."""
    return _build("Command", ("Command", cli))
