"""ChanSpy data: the three modes' options, and no channel name that could add an argument."""

from __future__ import annotations

import pytest

from ccbridge.domain.calls.spy import SpyMode, chanspy_data, check_channel


@pytest.mark.parametrize(
    ("mode", "data"),
    [
        (SpyMode.LISTEN, "PJSIP/1101-0000001a,q"),
        (SpyMode.WHISPER, "PJSIP/1101-0000001a,qw"),
        (SpyMode.BARGE, "PJSIP/1101-0000001a,qB"),
    ],
)
def test_each_mode_has_its_options(mode: SpyMode, data: str) -> None:
    assert chanspy_data("PJSIP/1101-0000001a", mode) == data


def test_a_local_channel_is_a_channel() -> None:
    assert check_channel("Local/1101@ccbridge-agents-00000003;1")


@pytest.mark.parametrize(
    "bad",
    ["PJSIP/1101,B", "PJSIP/1101\r\nAction: Hangup", "PJSIP/1101)", "PJSIP/1 101", "", "|x"],
)
def test_a_name_that_could_inject_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="channel"):
        check_channel(bad)
