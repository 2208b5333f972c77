"""FakeAgiClient: plays Asterisk's side of FastAGI against a FastAGI server.

Sends the ``agi_*`` environment exactly as Asterisk 22 does and answers each command with
Asterisk's reply lines, so an IVR script can be tested without a PBX.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger(__name__)

DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercepted channel"
UNKNOWN_COMMAND = "510 Invalid or unknown command"
_VAR_RE = re.compile(r"\$\{([^}]*)\}")


@dataclass(slots=True)
class AgiCall:
    """The channel the AGI session runs on (what ``agi_*`` describes)."""

    channel: str = "PJSIP/trunk-00000001"
    uniqueid: str = "1795433102.1"
    callerid: str = "13800138000"
    calleridname: str = "unknown"
    dnid: str = "unknown"
    rdnis: str = "unknown"
    context: str = "from-trunk"
    extension: str = "s"
    priority: int = 1
    language: str = "en"
    accountcode: str = ""
    threadid: str = "139651190003392"
    args: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    linkedid: str = ""
    """``CHANNEL(linkedid)``: the call's id (empty: the channel's own uniqueid)."""

    @property
    def type(self) -> str:
        """``agi_type``: the channel technology."""
        return self.channel.split("/", 1)[0]


@dataclass(slots=True)
class AgiResult:
    """What happened in one session."""

    commands: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    variables_set: dict[str, str] = field(default_factory=dict)
    answered: bool = False
    hung_up: bool = False
    """The channel went away (HANGUP command or caller hangup)."""
    caller_hung_up: bool = False
    ended_normally: bool = False
    """The FastAGI server closed the session itself (the script returned)."""


def split_args(line: str) -> list[str]:
    """Split an AGI command line as res_agi does: double quotes group, backslash escapes."""
    out: list[str] = []
    cur: list[str] = []
    in_quote = False
    escaped = False
    started = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
            started = True
        elif ch == '"':
            in_quote = not in_quote
            started = True
        elif ch in " \t" and not in_quote:
            if started:
                out.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        out.append("".join(cur))
    return out


class FakeAgiClient:
    """Connect to ``agi://host:port/script`` and behave like the Asterisk channel."""

    def __init__(
        self,
        url: str,
        call: AgiCall | None = None,
        *,
        dtmf: Iterable[str] | str = (),
        hangup_after: int | None = None,
        missing_prompts: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 4573
        self.script = parts.path.lstrip("/")
        self.call = call or AgiCall()
        self._dtmf = [dtmf] if isinstance(dtmf, str) else list(dtmf)
        self.hangup_after = hangup_after
        self.missing_prompts = set(missing_prompts)
        self.timeout = timeout
        self.vars: dict[str, str] = dict(self.call.variables)

    def environment(self) -> bytes:
        """The ``agi_*`` block in Asterisk 22's order, ending with a blank line."""
        c = self.call
        lines = [
            ("agi_network", "yes"),
            ("agi_network_script", self.script),
            ("agi_request", self.url),
            ("agi_channel", c.channel),
            ("agi_language", c.language),
            ("agi_type", c.type),
            ("agi_uniqueid", c.uniqueid),
            ("agi_version", "22.10.1"),
            ("agi_callerid", c.callerid),
            ("agi_calleridname", c.calleridname),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", c.dnid),
            ("agi_rdnis", c.rdnis),
            ("agi_context", c.context),
            ("agi_extension", c.extension),
            ("agi_priority", str(c.priority)),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", c.accountcode),
            ("agi_threadid", c.threadid),
        ]
        lines += [(f"agi_arg_{i}", a) for i, a in enumerate(c.args, start=1)]
        text = "".join(f"{k}: {v}\n" for k, v in lines) + "\n"
        return text.encode("utf-8")

    async def run(self) -> AgiResult:
        """Run one session to its end and report what the script did."""
        result = AgiResult()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(self.environment())
            await writer.drain()
            await asyncio.wait_for(self._loop(reader, writer, result), self.timeout)
        except TimeoutError:
            log.warning("fake_agi.timeout", url=self.url)
        except (ConnectionError, OSError):
            result.ended_normally = True
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return result

    async def _loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, result: AgiResult
    ) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                result.ended_normally = True
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                continue
            result.commands.append(line)
            reply = self._answer(line, result)
            result.replies.append(reply)
            out = reply + "\n"
            if (
                result.hung_up
                and not result.caller_hung_up
                and reply == "200 result=1"
                and (line.upper().startswith("HANGUP"))
            ):
                out += "HANGUP\n"
            if (
                self.hangup_after is not None
                and len(result.commands) == self.hangup_after
                and not result.hung_up
            ):
                result.hung_up = result.caller_hung_up = True
                out += "HANGUP\n"
            writer.write(out.encode("utf-8"))
            await writer.drain()

    def _next_dtmf(self) -> str:
        return self._dtmf.pop(0) if self._dtmf else ""

    def _expand(self, expr: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "CALLERID(num)":
                return self.call.callerid
            if name == "CALLERID(name)":
                return self.call.calleridname
            if name == "UNIQUEID":
                return self.call.uniqueid
            if name == "CHANNEL(linkedid)":
                return self.call.linkedid or self.call.uniqueid
            return self.vars.get(name, "")

        return _VAR_RE.sub(sub, expr)

    def _answer(self, line: str, result: AgiResult) -> str:
        """Asterisk's reply to one AGI command."""
        argv = split_args(line)
        if not argv:
            return UNKNOWN_COMMAND
        words = [a.upper() for a in argv]
        # Commands allowed on a dead channel (their handler has dead=1 in res_agi).
        dead_ok = words[0] in {"GET", "SET", "VERBOSE", "NOOP", "DATABASE"} and words[:2] != [
            "GET",
            "DATA",
        ]
        if result.hung_up and not dead_ok:
            return DEAD_CHANNEL
        cmd = words[0]
        if cmd == "ANSWER":
            result.answered = True
            return "200 result=0"
        if cmd == "HANGUP":
            result.hung_up = True
            return "200 result=1"
        if cmd == "NOOP":
            return "200 result=0"
        if cmd == "VERBOSE":
            return "200 result=1"
        if words[:2] == ["CHANNEL", "STATUS"]:
            return "200 result=6" if result.answered else "200 result=4"
        if words[:2] == ["SET", "VARIABLE"] and len(argv) >= 4:
            self.vars[argv[2]] = argv[3]
            result.variables_set[argv[2]] = argv[3]
            return "200 result=1"
        if words[:2] == ["GET", "VARIABLE"] and len(argv) >= 3:
            value = self._expand("${" + argv[2] + "}") if "(" in argv[2] else self.vars.get(argv[2])
            return f"200 result=1 ({value})" if value is not None else "200 result=0"
        if words[:3] == ["GET", "FULL", "VARIABLE"] and len(argv) >= 4:
            value = self._expand(argv[3])
            return f"200 result=1 ({value})" if value else "200 result=0"
        if words[:2] == ["STREAM", "FILE"] and len(argv) >= 3:
            if argv[2] in self.missing_prompts:
                return "200 result=-1 endpos=0"
            digits = self._next_dtmf()
            return (
                f"200 result={ord(digits[0])} endpos=8000" if digits else "200 result=0 endpos=8000"
            )
        if words[:2] == ["GET", "DATA"] and len(argv) >= 3:
            return self._get_data(argv)
        if words[:2] == ["WAIT", "FOR"]:
            digits = self._next_dtmf()
            return f"200 result={ord(digits[0])}" if digits else "200 result=0"
        if cmd == "EXEC" and len(argv) >= 2:
            return self._exec(argv, result)
        if cmd in {"SAY", "SET", "DATABASE", "RECORD", "CONTROL"}:
            return "200 result=0"
        return UNKNOWN_COMMAND

    def _get_data(self, argv: list[str]) -> str:
        if argv[2] in self.missing_prompts:
            return "200 result=-1"
        try:
            max_digits = int(argv[4]) if len(argv) >= 5 else 1024
        except ValueError:
            max_digits = 1024
        typed = self._next_dtmf()
        if typed.endswith("#"):
            return f"200 result={typed[:-1][:max_digits]}"
        if typed and len(typed) >= max_digits:
            return f"200 result={typed[:max_digits]}"
        return f"200 result={typed} (timeout)"

    def _exec(self, argv: list[str], result: AgiResult) -> str:
        app = argv[1].lower()
        data = " ".join(argv[2:])
        if app == "set" and "=" in data:
            name, _, value = data.partition("=")
            self.vars[name] = value
            result.variables_set[name] = value
        elif app == "hangup":
            result.hung_up = True
            return "200 result=-1"
        return "200 result=0"
