"""Codec and action builders, checked against real Asterisk 22 captures."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.codec import (
    MAX_FRAME_BYTES,
    EventFrame,
    FrameDecoder,
    HeaderInjectionError,
    check_header,
    encode_message,
    parse_frame,
    peek_event_name,
)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def stream(captures_dir: Path, name: str) -> bytes:
    data = (captures_dir / name / "ami-from-asterisk.txt").read_bytes()
    assert data.startswith(BANNER)
    return data[len(BANNER) :]


def sent_actions(captures_dir: Path, name: str) -> list[bytes]:
    data = (captures_dir / name / "ami-to-asterisk.txt").read_bytes()
    return [f + b"\r\n\r\n" for f in data.split(b"\r\n\r\n") if f]


# --------------------------------------------------------------------------- framing


def test_capture_frames_match_event_count(captures_dir: Path) -> None:
    for name in ("queue-call-and-sip", "call-centre-scenarios"):
        data = stream(captures_dir, name)
        frames = FrameDecoder().feed(data)
        events = [f for f in frames if peek_event_name(f) is not None]
        assert len(events) == data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")
        assert all(parse_frame(f).event == peek_event_name(f).decode() for f in events[:200])  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=60))
def test_any_chunking_gives_the_same_frames(captures_dir: Path, cuts: list[int]) -> None:
    data = stream(captures_dir, "call-centre-scenarios")[:60_000]
    whole = FrameDecoder().feed(data)
    dec = FrameDecoder()
    got: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        got += dec.feed(data[pos : pos + step])
        pos += step
        i += 1
    assert got == whole


def test_byte_by_byte_feed_preserves_chinese(captures_dir: Path) -> None:
    data = stream(captures_dir, "call-centre-scenarios")[:20_000]
    dec = FrameDecoder()
    msgs = [parse_frame(f) for i in range(len(data)) for f in dec.feed(data[i : i + 1])]
    names = [m.get("MemberName") for m in msgs if m.event == "QueueMemberAdded"]
    assert "T002 李娜" in names


@pytest.mark.parametrize(
    "raw",
    [
        b"Event: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n",
        b"Event: A\r\nX: 1\r\n\nEvent: B\r\n\n",
        b"Event: A\nX: 1\n\nEvent: B\n\n",
        b"\r\n\r\nEvent: A\r\nX: 1\r\n\r\n\r\nEvent: B\r\n\r\n",
    ],
)
def test_tolerant_terminators(raw: bytes) -> None:
    frames = FrameDecoder().feed(raw)
    assert [parse_frame(f).event for f in frames] == ["A", "B"]
    assert parse_frame(frames[0]).get("X") == "1"


def test_terminator_split_across_chunks() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"Event: A\r\n\r") == []
    assert dec.feed(b"\n") == [b"Event: A"]
    assert dec.feed(b"Event: B\r\n") == []
    assert dec.feed(b"\nEvent: C\r\n\r\n") == [b"Event: B", b"Event: C"]


def test_utf8_split_mid_character() -> None:
    raw = 'Event: Newchannel\r\nCallerIDName: "张三"\r\n\r\n'.encode()
    cut = raw.index("张".encode()) + 1
    dec = FrameDecoder()
    assert dec.feed(raw[:cut]) == []
    (frame,) = dec.feed(raw[cut:])
    assert parse_frame(frame).get("CallerIDName") == '"张三"'


def test_gbk_falls_back_without_crash() -> None:
    msg = parse_frame(b"Event: X\r\nCallerIDName: " + "李娜".encode("gbk"))
    assert msg.get("CallerIDName") == "李娜"
    junk = parse_frame(b"Event: X\r\nName: \xff\xfe\xfd")
    assert junk.event == "X"


def test_parse_keeps_unicode_line_separators_in_values() -> None:
    msg = parse_frame("Event: X\r\nCallerIDName: a\u2028b\x1cc\r\nEmpty:".encode())
    assert msg.get("CallerIDName") == "a\u2028b\x1cc"
    assert msg.get("Empty") == ""


def test_repeated_headers_and_body() -> None:
    msg = parse_frame(
        b"Response: Follows\r\nChanVariable: A=1\r\nChanVariable: B=2\r\nfree text\r\n--END--"
    )
    assert msg.variables() == {"A": "1", "B": "2"}
    assert msg.body == ["free text", "--END--"]


def test_peek_event_name() -> None:
    assert peek_event_name(b"Event: Hangup\r\nUniqueid: 1") == b"Hangup"
    assert peek_event_name(b"Event: Hangup") == b"Hangup"
    assert peek_event_name(b"\r\nEvent: Hangup\nX: y") == b"Hangup"
    assert peek_event_name(b"Response: Success\r\nEvent: X") is None
    assert peek_event_name(b"") is None


def test_oversized_frame_dropped_in_linear_work_memory_bounded() -> None:
    dec = FrameDecoder()
    chunk = b"A" * 65536
    tracemalloc.start()
    fed = 0
    for _ in range(16 * 1024 * 1024 // len(chunk)):  # 16 MB, no terminator
        assert dec.feed(chunk) == []
        fed += len(chunk)
        assert dec.pending <= MAX_FRAME_BYTES + len(chunk)
    tail = b"\r\n\r\nEvent: Ok\r\nX: 1\r\n\r\n"
    frames = dec.feed(tail)
    fed += len(tail)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert frames == [b"Event: Ok\r\nX: 1"]
    assert dec.oversized == 1
    assert peak < 4 * MAX_FRAME_BYTES
    assert dec.work <= 3 * fed  # each byte looked at a bounded number of times (timing: bench/)


def test_oversized_complete_frame_in_one_chunk_is_dropped() -> None:
    dec = FrameDecoder(max_frame=1000)
    frames = dec.feed(b"Event: Big\r\nX: " + b"x" * 5000 + b"\r\n\r\nEvent: Ok\r\n\r\n")
    assert frames == [b"Event: Ok"]
    assert dec.oversized == 1


def _work_per_byte(data: bytes, chunk: int) -> float:
    """Framing work (bytes searched, copied, split) per byte fed, in ``chunk``-sized reads."""
    dec = FrameDecoder(max_frame=len(data))
    frames = 0
    for i in range(0, len(data), chunk):
        frames += len(dec.feed(data[i : i + chunk]))
    assert frames > 0
    return dec.work / len(data)


@pytest.mark.parametrize("chunk", [64, 4096, 65536, 1 << 30])
def test_large_burst_buffer_is_linear(captures_dir: Path, chunk: int) -> None:
    """Per-byte work does not grow with the buffer (counted, so a busy machine cannot fail
    it; the MB/s of an 8 MB burst are in bench/ami_ingest.py, B4)."""
    base = stream(captures_dir, "queue-call-and-sip")
    small = _work_per_byte(base * 4, chunk)
    big = _work_per_byte(base * 32, chunk)  # ~8 MB
    assert big <= small * 1.05
    assert big <= 4


def test_a_large_frame_in_small_reads_is_not_rescanned() -> None:
    """256 KB arriving 64 bytes at a time: each read scans only its new bytes (a decoder that
    rescanned the pending tail would do ~4,000 times the work)."""
    frame = b"Event: Big\r\nX: " + b"x" * (256 * 1024) + b"\r\n\r\n"
    dec = FrameDecoder()
    got = []
    for i in range(0, len(frame), 64):
        got += dec.feed(frame[i : i + 64])
    assert got == [frame[:-4]]
    assert dec.work <= 4 * len(frame)


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("value", ["a\r\nApplication: System", "a\nb", "a\rb", "a\x00b"])
def test_header_injection_rejected(value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        encode_message({"Action": "Originate", "CallerID": value})
    with pytest.raises(HeaderInjectionError):
        act.originate("Local/1@x", application="Wait", caller_id=value)
    with pytest.raises(HeaderInjectionError):
        act.queue_pause("Local/1@x", True, reason=value)


@pytest.mark.parametrize("key", ["", "A B ", "A:B", "X\r\nY"])
def test_bad_header_names_rejected(key: str) -> None:
    with pytest.raises(HeaderInjectionError):
        check_header(key, "v")


# --------------------------------------------------------------------------- actions vs captures


def _encode_as(action: act.AmiAction, action_id: str) -> bytes:
    return encode_message(action.pairs(action_id))


def _captured(captures_dir: Path, action_id: str) -> bytes:
    for raw in sent_actions(captures_dir, "call-centre-scenarios"):
        if f"\r\nActionID: {action_id}\r\n".encode() in raw:
            return raw
    raise AssertionError(action_id)


CAPTURED = [
    ("cap-1", act.challenge()),
    ("cap-2", act.login_md5("ccbridge", act.md5_key("161273028", "ccbridge-secret"))),
    ("cap-3", act.ping()),
    ("cap-5", act.command("core show version")),
    (
        "cap-6",
        act.queue_add(
            "sales",
            "Local/2001@agents",
            member_name="T001 Zhang Wei",
            state_interface="Local/2001@agents",
            penalty=1,
            paused=True,
            reason="signing-in",
        ),
    ),
    (
        "cap-7",
        act.queue_add(
            "sales",
            "Local/2002@agents",
            member_name="T002 李娜",
            penalty=0,
            paused=True,
            reason="signing-in",
        ),
    ),
    ("cap-8", act.queue_pause("Local/2001@agents", False)),
    ("cap-9", act.queue_pause("Local/2002@agents", True, queue="sales", reason="小休 break")),
    ("cap-10", act.queue_status()),
    ("cap-11", act.queue_summary()),
    ("cap-14", act.core_show_channels()),
    (
        "cap-15",
        act.mix_monitor("Local/sales@queue-in-00000008;2", "cap-1795433102.18.wav", options="b"),
    ),
    ("cap-16", act.mix_monitor_mute("Local/sales@queue-in-00000008;2", True)),
    ("cap-17", act.mix_monitor_mute("Local/sales@queue-in-00000008;2", False)),
    ("cap-18", act.stop_mix_monitor("Local/sales@queue-in-00000008;2")),
    ("cap-19", act.blind_transfer("Local/sales@queue-in-00000008;2", "2003", "agents")),
    (
        "cap-21",
        act.originate(
            "Local/sales@queue-in", application="Wait", data="20", caller_id='"Li Si" <02087654321>'
        ),
    ),
    ("cap-22", act.redirect("Local/sales@queue-in-0000000a;2", "agi-test", "ivr-main", 1)),
    ("cap-26", act.queue_remove("sales", "Local/2001@agents")),
    ("cap-28", act.logoff()),
]


@pytest.mark.parametrize(("action_id", "action"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_actions_match_captured_bytes(
    captures_dir: Path, action_id: str, action: act.AmiAction
) -> None:
    assert _encode_as(action, action_id) == _captured(captures_dir, action_id)


def test_md5_key_matches_capture(captures_dir: Path) -> None:
    raw = _captured(captures_dir, "cap-2")
    key = re.search(rb"Key: (\w+)", raw)
    assert key is not None
    assert act.md5_key("161273028", "ccbridge-secret") == key.group(1).decode()


def test_originate_always_async_and_variables() -> None:
    a = act.originate(
        "Local/sales@queue-in",
        exten="100",
        context="from-crm",
        caller_id='"张三" <13800138000>',
        timeout_ms=20000,
        variables={"CCB_TENANT": "t1", "CCB_DID": "4008001234"},
    )
    assert a.get("Async") == "true"
    assert a.get("Priority") == "1"
    assert [v for k, v in a.fields if k == "Variable"] == ["CCB_TENANT=t1", "CCB_DID=4008001234"]
    with pytest.raises(ValueError, match="exten"):
        act.originate("Local/1@x")
    with pytest.raises(ValueError, match="not both"):
        act.originate("Local/1@x", exten="1", context="c", application="Wait")


def test_other_builders() -> None:
    assert act.hangup("PJSIP/x-1", cause=16).fields == (("Channel", "PJSIP/x-1"), ("Cause", "16"))
    assert act.atxfer("PJSIP/x-1", "2002", "agents").name == "Atxfer"
    assert act.play_dtmf("Local/2001@a-1;2", "*", receive=True).fields == (
        ("Channel", "Local/2001@a-1;2"),
        ("Digit", "*"),
        ("Receive", "true"),
    )
    assert act.play_dtmf("PJSIP/x-1", "3", duration_ms=250).get("Duration") == "250"
    for bad in ("", "12", "x", "\r"):
        with pytest.raises(ValueError, match="DTMF digit"):
            act.play_dtmf("PJSIP/x-1", bad)
    with pytest.raises(ValueError, match="duration"):
        act.play_dtmf("PJSIP/x-1", "1", duration_ms=0)
    assert act.setvar("CCB_X", "1", channel="PJSIP/x-1").fields[1:] == (
        ("Variable", "CCB_X"),
        ("Value", "1"),
    )
    assert act.getvar("CCB_X").fields == (("Variable", "CCB_X"),)
    assert act.login_plain("u", "s").fields == (("Username", "u"), ("Secret", "s"))
    assert act.AmiAction.from_mapping({"action": "Ping", "ActionID": "x"}) == act.ping()
    with pytest.raises(ValueError, match="Action"):
        act.AmiAction.from_mapping({"Channel": "x"})


# --------------------------------------------------------------------------- lazy event frames


def _lazy_matches_full(frame: bytes) -> None:
    name = peek_event_name(frame)
    assert name is not None
    lazy = EventFrame(frame, name.decode())
    full = parse_frame(frame)
    assert lazy.event == full.event
    for key in {k for k, _ in full.fields} | {"Missing", "Uniqueid", "Linkedid"}:
        assert lazy.get(key) == full.get(key), key
        assert lazy.get_all(key) == full.get_all(key), key
        assert lazy.has(key) == full.has(key), key
    assert lazy.variables() == full.variables()
    assert lazy.headers == full.headers


def test_event_frame_reads_every_capture_header_like_parse_frame(captures_dir: Path) -> None:
    for name in ("queue-call-and-sip", "call-centre-scenarios"):
        for frame in FrameDecoder().feed(stream(captures_dir, name)):
            if peek_event_name(frame) is not None:
                _lazy_matches_full(frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"Event: X\r\nCallerIDName: " + "李娜".encode("gbk") + b"\r\nQueue: q",
        b"Event: X\nName: \xff\xfe\xfd\nQueue: \xe5\xbc\xa0",
        "Event: X\r\nCallerIDName: a\u2028b\x1cc\r\nEmpty:\r\nTrail: ".encode(),
        b"Event: X\r\nChanVariable: CCB_TENANT=t1\r\nChanVariable: CCB_DID=100\r\nfree text",
        b"Event: X\r\nQueueX: no\r\nQueue:no\r\nQueue: yes\r\nQueue: second",
        b"Event: X\r\nKey: a: b\r\nEvent: Y",
    ],
)
def test_event_frame_edge_cases_match_parse_frame(frame: bytes) -> None:
    _lazy_matches_full(frame)


def test_event_frame_gbk_value_decodes_like_the_whole_frame() -> None:
    frame = EventFrame(b"Event: X\r\nCallerIDName: " + "李娜".encode("gbk"), "X")
    assert frame.get("CallerIDName") == "李娜"
