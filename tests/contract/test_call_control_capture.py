"""The fake PBX answers call-control actions as the captured Asterisk 22.10.1 does."""

from __future__ import annotations

from pathlib import Path

from ccbridge.asterisk.ami.codec import FrameDecoder

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ccbridge-captures" / "call-control"


def _frames(name: str) -> list[dict[str, str]]:
    decoder = FrameDecoder()
    return [dict(m.fields) for m in decoder.feed_messages((CAPTURES / name).read_bytes())]


def _answer(frames: list[dict[str, str]], action_id: str) -> dict[str, str]:
    return next(f for f in frames if f.get("ActionID") == action_id and "Response" in f)


def test_dual_and_single_redirect_answers_match_the_fake() -> None:
    sent = _frames("redirect-hold-moh-to-asterisk.txt")
    got = _frames("redirect-hold-moh-from-asterisk.txt")
    redirects = [f for f in sent if f.get("Action") == "Redirect"]
    dual, single = redirects
    assert "ExtraChannel" in dual
    assert "ExtraChannel" not in single
    assert _answer(got, dual["ActionID"])["Message"] == "Dual Redirect successful"
    assert _answer(got, single["ActionID"])["Message"] == "Redirect successful"
    # The held customer hears music on hold right after the dual redirect.
    after = got[got.index(_answer(got, dual["ActionID"])) :]
    moh = next(f for f in after if f.get("Event") == "MusicOnHoldStart")
    assert moh["Channel"] == dual["Channel"]


def test_originate_channel_id_becomes_the_linkedid() -> None:
    sent = _frames("originate-agent-first-to-asterisk.txt")
    got = _frames("originate-agent-first-from-asterisk.txt")
    (originate,) = [f for f in sent if f.get("Action") == "Originate"]
    first = next(
        f for f in got if f.get("Event") == "Newchannel" and f["Channel"].startswith("PJSIP/1001")
    )
    assert first["Uniqueid"] == originate["ChannelId"]
    assert first["Linkedid"] == originate["ChannelId"]
