"""AGI reply parsing against the exact lines Asterisk 22.10.1 sends."""

from __future__ import annotations

import pytest

from ccbridge.asterisk.agi.errors import AgiInjectionError, AgiProtocolError
from ccbridge.asterisk.agi.result import (
    AgiResult,
    ReplyAssembler,
    decode_line,
    parse_result_line,
)
from ccbridge.asterisk.agi.session import (
    check_argument,
    parse_environment,
    quote_argument,
    word_argument,
)
from tests.support.agi_client import capture_environment, capture_replies


def assemble(*lines: str) -> tuple[AgiResult | None, ReplyAssembler]:
    """Feed lines into a fresh assembler and return the last result."""
    assembler = ReplyAssembler()
    result = None
    for line in lines:
        result = assembler.feed(line)
    return result, assembler


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiResult(200, 0, None, {}, "0")),
        ("200 result=-1 endpos=0", AgiResult(200, -1, None, {"endpos": "0"}, "-1")),
        ("200 result=1 (2)", AgiResult(200, 1, "2", {}, "1")),
        ("200 result=1 (02087654321)", AgiResult(200, 1, "02087654321", {}, "1")),
        ("200 result=6", AgiResult(200, 6, None, {}, "6")),
        ("200 result= (timeout)", AgiResult(200, 0, "timeout", {}, "")),
        ("200 result=007 (timeout)", AgiResult(200, 7, "timeout", {}, "007")),
        ("200 result=12*", AgiResult(200, 0, None, {}, "12*")),
        ("200 result=1 (a (b) c)", AgiResult(200, 1, "a (b) c", {}, "1")),
        ("200 result=1 (张三 李四)", AgiResult(200, 1, "张三 李四", {}, "1")),
        (
            "200 result=0 (dtmf) endpos=8000",
            AgiResult(200, 0, "dtmf", {"endpos": "8000"}, "0"),
        ),
        ("200 result=1 ()", AgiResult(200, 1, "", {}, "1")),
        ("200 result=1 (ok)\r\n", AgiResult(200, 1, "ok", {}, "1")),
    ],
)
def test_parse_200_lines(line: str, expected: AgiResult) -> None:
    result = parse_result_line(line)
    assert result == expected
    assert result.ok


def test_parse_error_codes() -> None:
    invalid = parse_result_line("510 Invalid or unknown command")
    assert (invalid.code, invalid.result, invalid.data) == (510, -1, "Invalid or unknown command")
    dead = parse_result_line("511 Command Not Permitted on a dead channel or intercept routine")
    assert dead.code == 511
    assert not dead.ok
    assert dead.data == "Command Not Permitted on a dead channel or intercept routine"


@pytest.mark.parametrize("line", ["", "hello", "200", "200 resul=1", "99 result=1", "2000 x"])
def test_garbage_is_a_protocol_error(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_result_line(line)


def test_every_captured_reply_parses() -> None:
    for scenario in ("call-centre-scenarios", "queue-call-and-sip"):
        for raw in capture_replies(scenario):
            result, _ = assemble(decode_line(raw))
            assert result is not None
            assert result.code == 200


def test_trying_is_skipped() -> None:
    assembler = ReplyAssembler()
    assert assembler.feed("100 result=0 Trying...\n") is None
    result = assembler.feed("200 result=0\n")
    assert result == AgiResult(200, 0, None, {}, "0")


def test_usage_520_is_joined_until_end_line() -> None:
    result, _ = assemble(
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]",
        "",
        "520 End of proper usage.",
    )
    assert result is not None
    assert result.code == 520
    assert result.data is not None
    assert result.data.startswith("Invalid command syntax.")
    assert "Usage: GET DATA" in result.data


def test_single_line_520() -> None:
    text = "Invalid command syntax.  Proper usage not available."
    result, _ = assemble(f"520 {text}")
    assert result is not None
    assert (result.code, result.data) == (520, text)


def test_hangup_line_is_noted_and_not_a_reply() -> None:
    assembler = ReplyAssembler()
    assert assembler.feed("HANGUP\n") is None
    assert assembler.hangup_seen
    result = assembler.feed("511 Command Not Permitted on a dead channel or intercept routine")
    assert result is not None
    assert result.code == 511


def test_decode_utf8_then_gb18030() -> None:
    assert decode_line("张三".encode()) == "张三"
    assert decode_line("张三".encode("gb18030")) == "张三"
    assert decode_line(b"\xff\xfe\xfd") != ""  # never raises


def test_environment_from_capture() -> None:
    raw = capture_environment("call-centre-scenarios")
    lines = [decode_line(line) for line in raw.split(b"\n") if line]
    env = parse_environment(lines)
    assert env["agi_network_script"] == "ivr-main"
    assert env["agi_channel"] == "Local/sales@queue-in-0000000a;2"
    assert env["agi_uniqueid"] == "1795433106.22"
    assert env["agi_calleridname"] == "Li Si"
    assert env["agi_accountcode"] == ""
    assert env["agi_request"] == "agi://127.0.0.1:4573/ivr-main"
    assert len(env) == 22


def test_environment_line_without_colon_is_rejected() -> None:
    with pytest.raises(AgiProtocolError):
        parse_environment(["agi_channel"])


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("beep", '"beep"'),
        ("", '""'),
        ("ivr done", '"ivr done"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\x", '"C:\\\\x"'),
        ("${CALLERID(num)}", '"${CALLERID(num)}"'),
        ("张三", '"张三"'),
    ],
)
def test_quote_argument(value: str, quoted: str) -> None:
    assert quote_argument(value) == quoted


@pytest.mark.parametrize("value", ["a\r\nAction: x", "a\nb", "a\rb", "a\x00b"])
def test_injection_is_rejected(value: str) -> None:
    for func in (check_argument, quote_argument, word_argument):
        with pytest.raises(AgiInjectionError):
            func(value)


def test_word_argument_bare_when_safe() -> None:
    assert word_argument("IVR_CHOICE") == "IVR_CHOICE"
    assert word_argument("CALLERID(name)") == "CALLERID(name)"
    assert word_argument("two words") == '"two words"'
    assert word_argument("") == '""'
