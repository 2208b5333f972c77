"""The AMI actions of call control: field names and order as Asterisk 22 takes them, and the
CR/LF/NUL guard on every value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.actions import AmiAction
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.errors import AmiActionError
from ccbridge.asterisk.call_control import AmiCallControl, PbxRefusedError
from ccbridge.domain.calls.spy import SpyMode
from ccbridge.services.call_control_ports import Dial, OriginateCall


class Recorder:
    def __init__(self, error: str | None = None, failures: int | None = None) -> None:
        self.sent: list[AmiAction] = []
        self.error = error
        self.failures = failures
        """Fail only this many times, then succeed (None: always fail when *error*)."""

    async def send_action(
        self,
        action: AmiAction | Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AmiMessage:
        assert isinstance(action, AmiAction)
        self.sent.append(action)
        if self.error and (self.failures is None or len(self.sent) <= self.failures):
            raise AmiActionError(self.error, action.name)
        return AmiMessage([("Response", "Success")])

    async def send_list_action(self, action: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        raise NotImplementedError


def test_builders_keep_asterisk_field_order() -> None:
    assert act.redirect(
        "A", "ctx", "s", extra_channel="B", extra_context="c2", extra_exten="e2", extra_priority=1
    ).fields == (
        ("Channel", "A"),
        ("ExtraChannel", "B"),
        ("Context", "ctx"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("ExtraContext", "c2"),
        ("ExtraExten", "e2"),
        ("ExtraPriority", "1"),
    )
    assert act.bridge("A", "B").fields == (("Channel1", "A"), ("Channel2", "B"), ("Tone", "no"))
    assert act.mute_audio("A", "in", True).fields == (
        ("Channel", "A"),
        ("Direction", "in"),
        ("State", "on"),
    )
    assert act.cancel_atxfer("A").fields == (("Channel", "A"),)


@pytest.mark.parametrize(
    "build",
    [
        lambda: act.redirect("A", "c", "s", extra_context="x"),
        lambda: act.bridge("A", "B", tone="loud"),
        lambda: act.mute_audio("A", "sideways", True),
        lambda: act.redirect("A\r\nAction: Originate", "c", "s"),
        lambda: act.setvar("CCB_IVR_NODE", "x\ny", "A"),
        lambda: act.originate("PJSIP/1", exten="1\0", context="c"),
    ],
)
def test_bad_values_never_become_an_action(build: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each builder names its own fault)
        build()


async def test_adapter_maps_places_to_the_shipped_contexts() -> None:
    ami = Recorder()
    pbx = AmiCallControl(ami, "ccbridge-agents")
    await pbx.blind_transfer("L;1", Dial("queue", "t1-support"))
    await pbx.attended_transfer("L;1", Dial("agent", "1002"))
    await pbx.originate(
        OriginateCall("PJSIP/1000", Dial("outbound", "13900139000"), "<+8620>", "ccb-1", {})
    )
    await pbx.return_to_ivr("C", {"CCB_IVR_NODE": "survey"})
    sent = [(a.name, a.get("Context"), a.get("Exten")) for a in ami.sent]
    assert sent == [
        ("BlindTransfer", "ccbridge-queue", "t1-support"),
        ("Atxfer", "ccbridge-agents", "1002"),
        ("Originate", "ccbridge-outbound", "13900139000"),
        ("Setvar", None, None),
        ("Redirect", "ccbridge-ivr-return", "s"),
    ]


async def test_an_asterisk_error_is_a_conflict_naming_the_action() -> None:
    pbx = AmiCallControl(Recorder(error="No such channel"), "ccbridge-agents")
    with pytest.raises(PbxRefusedError, match=r"Hangup.*No such channel") as err:
        await pbx.hangup("gone")
    assert err.value.status == 409


BRIDGE_IN_FLUX = "Bridge failed: Unable to add Channel1 to bridge: Local/s@q-0001;2"


async def test_resume_retries_while_the_hold_still_moves_the_legs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asterisk 22 refuses a Bridge while the hold's Redirect dissolves the old bridge."""
    monkeypatch.setattr("ccbridge.asterisk.call_control.RESUME_RETRY_DELAYS", (0, 0, 0))
    ami = Recorder(error=BRIDGE_IN_FLUX, failures=2)
    await AmiCallControl(ami, "ccbridge-agents").resume("cust", "agent")
    assert [a.name for a in ami.sent] == ["Bridge"] * 3


async def test_resume_gives_up_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ccbridge.asterisk.call_control.RESUME_RETRY_DELAYS", (0, 0))
    ami = Recorder(error=BRIDGE_IN_FLUX)
    with pytest.raises(PbxRefusedError, match=r"Bridge.*Unable to add"):
        await AmiCallControl(ami, "ccbridge-agents").resume("cust", "agent")
    assert len(ami.sent) == 3


async def test_resume_does_not_retry_a_channel_that_is_gone() -> None:
    ami = Recorder(error="Channel1 does not exist: cust")
    with pytest.raises(PbxRefusedError, match="does not exist"):
        await AmiCallControl(ami, "ccbridge-agents").resume("cust", "agent")
    assert len(ami.sent) == 1


async def test_spy_originates_the_supervisors_phone_into_chanspy() -> None:
    ami = Recorder()
    pbx = AmiCallControl(ami, "ccbridge-agents")
    await pbx.spy("PJSIP/1009", "PJSIP/1000-0000002a", SpyMode.WHISPER, '"Spy 1000" <1000>')
    [action] = ami.sent
    assert action.name == "Originate"
    assert action.fields == (
        ("Channel", "PJSIP/1009"),
        ("Application", "ChanSpy"),
        ("Data", "PJSIP/1000-0000002a,qw"),
        ("CallerID", '"Spy 1000" <1000>'),
        ("Async", "true"),
        ("Timeout", "30000"),
    )


async def test_spy_refuses_a_channel_that_would_add_chanspy_options() -> None:
    ami = Recorder()
    pbx = AmiCallControl(ami, "ccbridge-agents")
    with pytest.raises(ValueError, match="channel"):
        await pbx.spy("PJSIP/1009", "PJSIP/1000,B", SpyMode.LISTEN, "<1000>")
    assert ami.sent == []
