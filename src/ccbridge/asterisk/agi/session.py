"""One FastAGI call: the environment Asterisk sent and typed, injection-safe AGI commands."""

from __future__ import annotations

import asyncio
import math
import re
from urllib.parse import parse_qsl

from ccbridge.asterisk.agi.errors import (
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiInjectionError,
    AgiProtocolError,
    AgiTimeoutError,
)
from ccbridge.asterisk.agi.result import (
    AgiResult,
    ReplyAssembler,
    decode_line,
    parse_result_line,
)

_FORBIDDEN = re.compile(r"[\r\n\x00]")
# A bare word is safe for Asterisk's argument splitter (res_agi.c parse_args): no blank, quote
# or backslash. Anything else is sent quoted.
_BARE_WORD = re.compile(r'[^\s"\\]+')
_ARG_KEY = re.compile(r"agi_arg_(\d+)")


def check_argument(value: str) -> str:
    """Return ``value`` unchanged, or raise AgiInjectionError if it holds CR, LF or NUL."""
    if _FORBIDDEN.search(value):
        raise AgiInjectionError(f"AGI argument contains CR, LF or NUL: {value[:40]!r}")
    return value


def quote_argument(value: str) -> str:
    """Quote one AGI argument: wrap in double quotes, backslash-escape ``"`` and ``\\``."""
    check_argument(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def word_argument(value: str) -> str:
    """Send a name (variable, application, context) bare as Asterisk shows it, else quoted."""
    check_argument(value)
    return value if _BARE_WORD.fullmatch(value) else quote_argument(value)


def parse_environment(lines: list[str]) -> dict[str, str]:
    """Turn ``agi_key: value`` lines into a dict (the value keeps everything after ``": "``)."""
    env: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            raise AgiProtocolError(f"AGI environment line without ':': {line[:80]!r}")
        env[key.strip()] = value[1:] if value.startswith(" ") else value
    return env


def _arguments(env: dict[str, str]) -> list[str]:
    """Collect ``agi_arg_1``… in numeric order (FastAGI passes dialplan AGI() arguments so)."""
    numbered = []
    for key, value in env.items():
        match = _ARG_KEY.fullmatch(key)
        if match:
            numbered.append((int(match[1]), value))
    return [value for _, value in sorted(numbered)]


class AgiSession:
    """One FastAGI connection: environment accessors plus one-line-in, one-reply-out commands."""

    def __init__(
        self,
        env: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        command_timeout: float = 30.0,
    ) -> None:
        self.env = env
        self.args = _arguments(env)
        script = env.get("agi_network_script", "")
        path, _, query = script.partition("?")
        self.script = path.strip("/")
        self.query = dict(parse_qsl(query, keep_blank_values=True))
        self.hung_up = False
        self.command_timeout = command_timeout
        self._reader = reader
        self._writer = writer
        self._busy = False
        self._broken = False
        self._timed_out = False
        self._loop = asyncio.get_running_loop()
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None

    @property
    def channel(self) -> str:
        """Return the channel name, e.g. ``PJSIP/sipp-00000001``."""
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        """Return the channel's uniqueid, the key to join AMI events."""
        return self.env.get("agi_uniqueid", "")

    @property
    def callerid(self) -> str:
        """Return the caller's number as Asterisk saw it."""
        return self.env.get("agi_callerid", "")

    @property
    def calleridname(self) -> str:
        """Return the caller's display name (may be Chinese, may be ``unknown``)."""
        return self.env.get("agi_calleridname", "")

    @property
    def dnid(self) -> str:
        """Return the dialled number (``unknown`` for Local channels)."""
        return self.env.get("agi_dnid", "")

    @property
    def context(self) -> str:
        """Return the dialplan context the AGI was started from."""
        return self.env.get("agi_context", "")

    @property
    def extension(self) -> str:
        """Return the dialplan extension the AGI was started from."""
        return self.env.get("agi_extension", "")

    @property
    def request(self) -> str:
        """Return the full ``agi://host:port/script?args`` URL."""
        return self.env.get("agi_request", "")

    # -- low level -------------------------------------------------------------------------

    async def command(self, text: str, *, reply_timeout: float | None = None) -> AgiResult:
        """Send one raw AGI command line and return its 200 reply; raise on hangup or rejection.

        A ``HANGUP`` line seen while waiting makes this command raise AgiHangup (its reply is
        on the exception) and every later command raise before writing anything.

        ``reply_timeout`` defaults to the session's command timeout; ``math.inf`` waits forever
        (for long EXECs such as Queue or Dial).
        """
        check_argument(text)
        if self.hung_up:
            raise AgiHangup(f"channel hung up; not sending {text.partition(' ')[0]}")
        if self._broken:
            raise AgiError("AGI session is unusable after a timeout or protocol error")
        if self._busy:
            raise RuntimeError("AGI commands on one session must not run concurrently")
        self._busy = True
        delay = self.command_timeout if reply_timeout is None else reply_timeout
        self._arm(delay)
        try:
            writer = self._writer
            writer.write(text.encode("utf-8") + b"\n")
            if writer.transport.get_write_buffer_size():  # only a peer not reading makes us wait
                await writer.drain()
            result, hung_up_now = await self._read_reply()
        except (ConnectionError, OSError, AgiHangup) as exc:
            if self._timed_out:
                raise AgiTimeoutError(f"no AGI reply to {text[:40]!r} within {delay} s") from None
            if isinstance(exc, AgiHangup):
                raise
            self.hung_up = True
            raise AgiHangup(f"connection lost: {exc}") from exc
        finally:
            self._busy = False
        if result.code == 511:
            self.hung_up = True
            raise AgiHangup(result.data or "dead channel", result)
        if hung_up_now:
            raise AgiHangup(f"channel hung up during {text.partition(' ')[0]}", result)
        if result.code != 200:
            raise AgiCommandError(result.code, result.data or "", text.partition(" ")[0])
        return result

    async def _read_reply(self) -> tuple[AgiResult, bool]:
        """Read lines until one reply is complete; also tell whether ``HANGUP`` came first.

        A first line ``200 …`` is the whole reply (the usual case), parsed without an assembler.
        """
        assembler: ReplyAssembler | None = None
        while True:
            try:
                raw = await self._reader.readline()
            except ValueError as exc:  # a line longer than the reader's limit
                self._broken = True
                raise AgiProtocolError("AGI reply line too long") from exc
            if not raw.endswith(b"\n"):
                self.hung_up = True
                raise AgiHangup("Asterisk closed the FastAGI connection")
            try:
                if assembler is None:
                    if raw.startswith(b"200 "):
                        return parse_result_line(decode_line(raw)), False
                    assembler = ReplyAssembler()
                result = assembler.feed(decode_line(raw))
            except AgiProtocolError:
                self._broken = True
                raise
            if result is not None:
                if assembler.hangup_seen:
                    self.hung_up = True
                return result, assembler.hangup_seen

    def _arm(self, delay: float) -> None:
        """Set this command's deadline; one lazy timer per session serves every command.

        Re-arming is a float store: the timer is only (re)scheduled when it fires early or
        the new deadline is sooner, so a fast command costs no timer-heap work.
        """
        if not math.isfinite(delay):
            self._deadline = math.inf
            return
        self._deadline = self._loop.time() + delay
        timer = self._timer
        if timer is None or timer.when() > self._deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        """Expire the command in flight (closing the stream, now out of step) or re-arm."""
        self._timer = None
        if not self._busy or not math.isfinite(self._deadline):
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._timed_out = True
        self._broken = True
        self._writer.transport.abort()

    def close(self) -> None:
        """Close the connection; Asterisk then continues the dialplan after AGI()."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writer.close()

    # -- typed commands --------------------------------------------------------------------

    async def answer(self) -> AgiResult:
        """Answer the channel (``ANSWER``); result 0 on success, -1 on failure."""
        return await self.command("ANSWER")

    async def hangup(self, channel: str | None = None) -> AgiResult:
        """Hang up this channel (or ``channel``); later commands on this session raise AgiHangup."""
        text = "HANGUP" if channel is None else f"HANGUP {quote_argument(channel)}"
        result = await self.command(text)
        if channel is None:
            self.hung_up = True
        return result

    async def stream_file(
        self, filename: str, escape_digits: str = "", *, reply_timeout: float | None = None
    ) -> AgiResult:
        """Play a prompt; ``result`` is the ASCII code of an escape digit (0 none, -1 failure)."""
        text = f"STREAM FILE {quote_argument(filename)} {quote_argument(escape_digits)}"
        return await self.command(text, reply_timeout=reply_timeout)

    async def get_data(
        self, filename: str, timeout_ms: int | None = None, max_digits: int | None = None
    ) -> str:
        """Play a prompt and collect DTMF; return the digits ("" on timeout without input)."""
        text = f"GET DATA {quote_argument(filename)}"
        if timeout_ms is not None or max_digits is not None:
            text += f" {int(timeout_ms or 0)}"
        if max_digits is not None:
            text += f" {int(max_digits)}"
        # the inter-digit timeout can legitimately exceed the command timeout
        wait = self.command_timeout + (timeout_ms or 0) / 1000 * max(1, max_digits or 1)
        result = await self.command(text, reply_timeout=wait)
        if result.result < 0:  # "200 result=-1": prompt failed or channel hung up
            return ""
        return result.value

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (``SET VARIABLE NAME "value"``)."""
        await self.command(f"SET VARIABLE {word_argument(name)} {quote_argument(value)}")

    async def get_variable(self, name: str) -> str | None:
        """Return a channel variable's value, or ``None`` when it is not set."""
        result = await self.command(f"GET VARIABLE {word_argument(name)}")
        return result.data if result.result == 1 else None

    async def get_full_variable(self, expression: str, channel: str | None = None) -> str | None:
        """Evaluate ``${…}`` expressions in the channel's context; ``None`` when unset."""
        text = f"GET FULL VARIABLE {quote_argument(expression)}"
        if channel is not None:
            text += f" {quote_argument(channel)}"
        result = await self.command(text)
        return result.data if result.result == 1 else None

    async def exec(self, app: str, *args: str, reply_timeout: float | None = None) -> AgiResult:
        """Run a dialplan application; arguments are joined with "," and sent as one quoted word.

        ``result`` is the application's return (-2 when it does not exist). A comma inside an
        argument separates application arguments: validate caller-supplied data first.
        """
        text = f"EXEC {word_argument(app)}"
        if args:
            text += f" {quote_argument(','.join(args))}"
        return await self.command(text, reply_timeout=reply_timeout)

    async def verbose(self, message: str, level: int = 1) -> None:
        """Write a message to the Asterisk console/log at ``level`` (1-4)."""
        await self.command(f"VERBOSE {quote_argument(message)} {int(level)}")

    async def channel_status(self, channel: str | None = None) -> int:
        """Return the channel state number (6 = up, 4 = ringing, …)."""
        text = "CHANNEL STATUS" if channel is None else f"CHANNEL STATUS {quote_argument(channel)}"
        return (await self.command(text)).result

    async def say_digits(self, digits: str, escape_digits: str = "") -> AgiResult:
        """Say a digit string; ``result`` is the ASCII code of an escape digit pressed, else 0."""
        text = f"SAY DIGITS {quote_argument(digits)} {quote_argument(escape_digits)}"
        return await self.command(text)

    async def wait_for_digit(self, timeout_ms: int = -1) -> str | None:
        """Wait for one DTMF digit; return it, or ``None`` on timeout or failure."""
        wait = math.inf if timeout_ms < 0 else self.command_timeout + timeout_ms / 1000
        result = await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}", reply_timeout=wait)
        return chr(result.result) if result.result > 0 else None

    async def set_context(self, context: str) -> None:
        """Set the context to continue in after the AGI ends."""
        await self.command(f"SET CONTEXT {word_argument(context)}")

    async def set_extension(self, extension: str) -> None:
        """Set the extension to continue at after the AGI ends."""
        await self.command(f"SET EXTENSION {word_argument(extension)}")

    async def set_priority(self, priority: int | str) -> None:
        """Set the priority (number or label) to continue at after the AGI ends."""
        await self.command(f"SET PRIORITY {word_argument(str(priority))}")

    async def database_get(self, family: str, key: str) -> str | None:
        """Return a value from AstDB, or ``None`` when the key does not exist."""
        result = await self.command(f"DATABASE GET {quote_argument(family)} {quote_argument(key)}")
        return result.data if result.result == 1 else None

    async def database_put(self, family: str, key: str, value: str) -> None:
        """Store a value in AstDB; raise AgiCommandError when Asterisk reports failure."""
        text = (
            f"DATABASE PUT {quote_argument(family)} {quote_argument(key)} {quote_argument(value)}"
        )
        result = await self.command(text)
        if result.result != 1:
            raise AgiCommandError(200, "database put failed", "DATABASE PUT")
