"""A fake caller in an IVR: answers prompts with DTMF exactly as Asterisk 22's FastAGI replies.

``dtmf`` holds what the caller types at each prompt that takes input, e.g. ``["2", "1#", ""]``
(``""`` = says nothing and the prompt times out). Replies follow res_agi:

- ``GET DATA``: ``200 result=<digits>`` (``#`` or max digits ended it),
  ``200 result=<digits> (timeout)``, ``200 result=-1`` on a missing prompt or hangup;
- ``STREAM FILE f "<escape>"``: ``200 result=<ascii of the key> endpos=N`` only when the next key
  is an escape digit, else ``200 result=0 endpos=N``; ``200 result=-1 endpos=0`` when missing;
- ``WAIT FOR DIGIT``: ``200 result=<ascii>``, ``0`` on timeout.

``hangup_at_input=n`` hangs up while the n-th input prompt plays (``200 result=-1`` then the
``HANGUP`` line, as Asterisk sends them).
"""

from __future__ import annotations

from collections.abc import Iterable

from ccbridge.domain.ivr.engine import dtmf_reply
from ccbridge.testing.fake_agi import AgiCall, AgiResult, FakeAgiClient, split_args

ENDPOS = 8000


class FakeIvrCaller(FakeAgiClient):
    """The Asterisk side of one IVR call, with a caller who presses keys."""

    def __init__(
        self,
        url: str,
        call: AgiCall | None = None,
        *,
        dtmf: Iterable[str] = (),
        hangup_at_input: int | None = None,
        missing_prompts: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url, call, missing_prompts=missing_prompts, timeout=timeout)
        self.keys = list(dtmf)
        self.hangup_at_input = hangup_at_input
        self.inputs = 0
        self.played: list[str] = []
        """Every prompt file the server played (STREAM FILE and GET DATA), in order."""

    def _answer(self, line: str, result: AgiResult) -> str:
        argv = split_args(line)
        words = [a.upper() for a in argv[:2]]
        if result.hung_up or len(argv) < 3:
            return super()._answer(line, result)
        if words == ["GET", "DATA"]:
            return self._ask(argv, result)
        if words == ["STREAM", "FILE"]:
            self.played.append(argv[2])
            if argv[2] in self.missing_prompts:
                return "200 result=-1 endpos=0"
            escape = argv[3] if len(argv) > 3 else ""
            if self.keys and self.keys[0][:1] and self.keys[0][0] in escape:
                key = self.keys[0][0]
                self.keys[0] = self.keys[0][1:]
                return f"200 result={ord(key)} endpos={ENDPOS // 2}"
            return f"200 result=0 endpos={ENDPOS}"
        if words == ["WAIT", "FOR"] and self.keys:
            typed = self.keys.pop(0)
            return f"200 result={ord(typed[0])}" if typed else "200 result=0"
        return super()._answer(line, result)

    def _ask(self, argv: list[str], result: AgiResult) -> str:
        self.played.append(argv[2])
        self.inputs += 1
        if self.hangup_at_input is not None and self.inputs >= self.hangup_at_input:
            result.hung_up = result.caller_hung_up = True
            return "200 result=-1\nHANGUP"
        if argv[2] in self.missing_prompts:
            return "200 result=-1"
        try:
            max_digits = int(argv[4]) if len(argv) >= 5 else 1024
        except ValueError:
            max_digits = 1024
        typed = self.keys.pop(0) if self.keys else ""
        reply = dtmf_reply(typed, max_digits)
        return f"200 result={reply.value}" + (" (timeout)" if reply.timed_out else "")
