"""Parse Asterisk's FastAGI reply lines (``200 result=…``, 100, 510, 511, 520, ``HANGUP``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ccbridge.asterisk.agi.errors import AgiProtocolError

#: The line Asterisk sends (AGISIGHUP) when the channel hangs up; it is not a reply.
HANGUP_LINE = "HANGUP"

_RESULT_PREFIX = "result="
_PLAIN_200 = "200 " + _RESULT_PREFIX
_CODE_LINE = re.compile(r"(?P<code>[1-5]\d\d)(?P<sep>[ -])(?P<rest>.*)", re.DOTALL)
# "(data)" then optional "key=value" words; the data is greedy so a ")" inside a variable's
# value (``200 result=1 (a (b) c)``) stays in the data.
_TAIL = re.compile(r"(?:\((?P<data>.*)\))?(?P<extra>(?:\s*[A-Za-z_]\w*=\S*)*)\s*", re.DOTALL)
_EXTRA_WORD = re.compile(r"([A-Za-z_]\w*)=(\S*)")


@dataclass(frozen=True, slots=True)
class AgiResult:
    """One parsed AGI reply, so handlers never look at raw protocol text.

    ``result`` is the integer after ``result=`` (0 when it is empty or not a number, as in
    GET DATA's ``200 result= (timeout)``); ``value`` keeps that text verbatim (leading zeros,
    ``*``); ``data`` is the text in parentheses; ``extra`` holds ``key=value`` words such as
    ``endpos``. Non-200 replies carry ``result=-1`` and the message (or usage text) in ``data``.
    """

    code: int
    result: int
    data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    value: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether Asterisk accepted the command (code 200)."""
        return self.code == 200


def decode_line(raw: bytes) -> str:
    """Decode wire bytes as UTF-8, falling back to GB18030 (Chinese PBXs), never failing."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _to_int(text: str) -> int:
    """Return ``text`` as an int, or 0 when Asterisk sent digits like ``12*`` or nothing."""
    try:
        return int(text)
    except ValueError:
        return 0


def parse_result_line(line: str) -> AgiResult:
    """Parse one complete reply line such as ``200 result=1 (ok)`` or ``510 Invalid …``."""
    line = line.rstrip("\r\n")
    if line.startswith(_PLAIN_200):  # "200 result=<n>" alone: most replies, no regex needed
        value = line[len(_PLAIN_200) :]
        if " " not in value:
            return AgiResult(code=200, result=_to_int(value), data=None, extra={}, value=value)
    match = _CODE_LINE.fullmatch(line)
    if match is None:
        raise AgiProtocolError(f"not an AGI reply line: {line[:80]!r}")
    code = int(match["code"])
    rest = match["rest"]
    if code not in (100, 200):
        return AgiResult(code=code, result=-1, data=rest)
    if not rest.startswith(_RESULT_PREFIX):
        raise AgiProtocolError(f"AGI reply without result=: {line[:80]!r}")
    value, _, tail = rest[len(_RESULT_PREFIX) :].partition(" ")
    data: str | None = None
    extra: dict[str, str] = {}
    if tail:
        tail_match = _TAIL.fullmatch(tail.lstrip())
        if tail_match is None:
            data = tail  # e.g. "100 result=0 Trying..."
        else:
            data = tail_match["data"]
            extra = dict(_EXTRA_WORD.findall(tail_match["extra"]))
    return AgiResult(code=code, result=_to_int(value), data=data, extra=extra, value=value)


class ReplyAssembler:
    """Assemble one command's reply from lines: skip ``100 Trying``, join 520 usage, note HANGUP."""

    __slots__ = ("_usage", "hangup_seen")

    def __init__(self) -> None:
        self.hangup_seen = False
        self._usage: list[str] | None = None

    def feed(self, line: str) -> AgiResult | None:
        """Consume one line; return the reply when complete, ``None`` when more lines are due."""
        line = line.rstrip("\r\n")
        if self._usage is not None:
            if line.startswith("520 "):
                return AgiResult(code=520, result=-1, data="\n".join(self._usage))
            self._usage.append(line)
            return None
        if line == HANGUP_LINE:
            self.hangup_seen = True
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        result = parse_result_line(line)
        if result.code == 100:
            return None
        return result
