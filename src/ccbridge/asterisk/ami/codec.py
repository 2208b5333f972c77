"""AMI wire codec: frame bytes on the blank line, parse headers, encode actions safely.

Framing works on bytes so a multi-byte UTF-8 character split across TCP reads is never
corrupted. Responses and actions are decoded whole (:func:`parse_frame`); events on the hot
path stay bytes (:class:`EventFrame`) and only the headers a handler reads are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

MAX_FRAME_BYTES = 1024 * 1024
"""Largest frame accepted (1 MiB); a larger one is dropped, not buffered."""

_CRLF2 = b"\r\n\r\n"
_LF2 = b"\n\n"
_FORBIDDEN_CHARS = ("\r", "\n", "\0")


class HeaderInjectionError(ValueError):
    """Raised when an outgoing header name or value holds CR, LF or NUL."""

    def __init__(self, key: str, value: str) -> None:
        super().__init__(f"AMI header {key!r} holds CR, LF or NUL: {value[:40]!r}")
        self.key = key


def decode_text(raw: bytes) -> str:
    """Decode frame text as UTF-8, falling back to GB18030 (a GBK superset), never crashing."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


@dataclass(slots=True)
class AmiMessage:
    """One parsed AMI frame: an event, a response, or (on the server side) an action.

    ``headers`` keeps the first value of each key; repeated keys such as ``Variable`` or
    ``ChanVariable`` are all kept in order in ``fields``.
    """

    headers: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    """Lines without ``": "`` (for example the body of a ``Response: Follows``)."""

    @property
    def event(self) -> str | None:
        """The event name, or ``None`` when this is not an event."""
        return self.headers.get("Event")

    @property
    def response(self) -> str | None:
        """The response status (``Success``, ``Error``, ``Follows``, ``Goodbye``) or ``None``."""
        return self.headers.get("Response")

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` this frame answers, if any."""
        return self.headers.get("ActionID")

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the first value of ``key``."""
        return self.headers.get(key, default)

    def get_all(self, key: str) -> list[str]:
        """Return every value of a repeated key, in wire order."""
        return [v for k, v in self.fields if k == key]

    def has(self, key: str) -> bool:
        """Say whether the frame carries ``key`` at all."""
        return key in self.headers

    def variables(self, key: str = "ChanVariable") -> dict[str, str]:
        """Return ``ChanVariable: NAME=value`` style headers as a dict."""
        return _split_variables(self.get_all(key))


def _split_variables(values: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, val = value.partition("=")
        if sep:
            out[name] = val
    return out


class AmiFields(Protocol):
    """What an event handler reads from a frame: a parsed :class:`AmiMessage` or a lazy
    :class:`EventFrame` (the coordinator's hot path) both answer it."""

    @property
    def event(self) -> str | None:
        """The event name."""
        ...

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key``."""
        ...

    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""
        ...

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeated key, in wire order."""
        ...

    def variables(self, key: str = "ChanVariable") -> dict[str, str]:
        """``NAME=value`` headers as a dict."""
        ...


_NEEDLES: dict[str, bytes] = {}


def _needle(key: str) -> bytes:
    needle = _NEEDLES.get(key)
    if needle is None:
        needle = _NEEDLES[key] = b"\n" + key.encode("utf-8") + b":"
    return needle


class EventFrame:
    """An event kept as its wire bytes: the name is read first, each header only when asked.

    Lookups give what :func:`parse_frame` would (first value of a key, ``Key:`` alone is an
    empty value, lines end at LF with an optional CR before it), and non-ASCII values are
    decoded the way the whole frame would be (UTF-8, else GB18030). Anything beyond header
    lookups (``headers``, ``fields``, ``body``) parses the frame once and keeps the result.
    """

    __slots__ = ("_codec", "_full", "name", "raw")

    def __init__(self, raw: bytes, name: str) -> None:
        self.raw = raw
        self.name = name
        self._codec: str | None = None
        self._full: AmiMessage | None = None

    @property
    def event(self) -> str:
        """The event name (read from the first line)."""
        return self.name

    @property
    def response(self) -> None:
        """Events are not responses."""
        return None

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` this event answers, if any."""
        return self.get("ActionID")

    def _value_at(self, raw: bytes, start: int) -> str | None:
        """Decode the value that starts at ``start`` (just after ``\nKey:``); ``None`` when
        the line is not ``Key: value`` / ``Key:`` (then it was a longer key or body text)."""
        size = len(raw)
        if start == size:
            return ""
        first = raw[start]
        if first == 0x20:  # "Key: value"
            start += 1
        elif first not in (0x0D, 0x0A):
            return None
        end = raw.find(b"\n", start)
        if end < 0:
            end = size
        value = raw[start:end]
        cr = value.find(b"\r")
        if cr >= 0:
            value = value[:cr]
        if value.isascii():
            return value.decode("ascii")
        return self._decode(value)

    def _decode(self, value: bytes) -> str:
        codec = self._codec
        if codec is None:
            try:
                self.raw.decode("utf-8")
                codec = "utf-8"
            except UnicodeDecodeError:
                try:
                    self.raw.decode("gb18030")
                    codec = "gb18030"
                except UnicodeDecodeError:
                    codec = "replace"
            self._codec = codec
        if codec == "replace":
            return value.decode("utf-8", errors="replace")
        return value.decode(codec)

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the first value of ``key``, decoding only that value."""
        if key == "Event":
            return self.name
        raw = self.raw
        needle = _NEEDLES.get(key) or _needle(key)
        pos = raw.find(needle)
        if pos < 0:
            return default
        start = pos + len(needle)
        if raw[start : start + 1] == b" ":  # the common "Key: value\r\n", inlined
            start += 1
            end = raw.find(b"\n", start)
            value = raw[start:] if end < 0 else raw[start:end]
            cr = value.find(b"\r")
            if cr >= 0:
                value = value[:cr]
            return value.decode("ascii") if value.isascii() else self._decode(value)
        while pos >= 0:
            found = self._value_at(raw, pos + len(needle))
            if found is not None:
                return found
            pos = raw.find(needle, pos + 1)
        return default

    def has(self, key: str) -> bool:
        """Say whether the frame carries ``key``."""
        return self.get(key) is not None

    def get_all(self, key: str) -> list[str]:
        """Return every value of a repeated key (``ChanVariable``...), in wire order."""
        raw = self.raw
        needle = _needle(key)
        skip = len(needle)
        out: list[str] = []
        if raw.startswith(needle[1:]):  # the first line (``Event: X``) has no LF before it
            first = self._value_at(raw, skip - 1)
            if first is not None:
                out.append(first)
        pos = raw.find(needle)
        while pos >= 0:
            value = self._value_at(raw, pos + skip)
            if value is not None:
                out.append(value)
            pos = raw.find(needle, pos + 1)
        return out

    def variables(self, key: str = "ChanVariable") -> dict[str, str]:
        """Return ``ChanVariable: NAME=value`` style headers as a dict."""
        return _split_variables(self.get_all(key))

    def parsed(self) -> AmiMessage:
        """The whole frame parsed (once), for readers that need every header."""
        if self._full is None:
            self._full = parse_frame(self.raw)
        return self._full

    @property
    def headers(self) -> dict[str, str]:
        """Every header (first value each): parses the whole frame."""
        return self.parsed().headers

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Every header line in order: parses the whole frame."""
        return self.parsed().fields

    @property
    def body(self) -> list[str]:
        """Lines without ``": "``: parses the whole frame."""
        return self.parsed().body

    def __repr__(self) -> str:
        return f"EventFrame({self.name!r}, {len(self.raw)} bytes)"


def parse_frame(frame: bytes) -> AmiMessage:
    """Parse one frame (without its terminating blank line) into an :class:`AmiMessage`."""
    text = decode_text(frame)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    headers: dict[str, str] = {}
    fields: list[tuple[str, str]] = []
    body: list[str] = []
    # Split on LF only: str.splitlines() would also break on U+2028, \x1c, \x85... in values.
    for line in text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            # "Key:" with an empty value is valid AMI; anything else is body text.
            if line.endswith(":") and " " not in line:
                key, value = line[:-1], ""
            else:
                body.append(line)
                continue
        fields.append((key, value))
        if key not in headers:
            headers[key] = value
    return AmiMessage(headers=headers, fields=fields, body=body)


_EVENT_PREFIX = b"Event: "
_TERMINATOR = re.compile(rb"\r?\n\r?\n")


def peek_event_name(frame: bytes) -> bytes | None:
    """Return the event name of a frame that starts with ``Event:``, without parsing it.

    Returns ``None`` for responses, actions and odd frames; callers then parse fully.
    """
    if not frame.startswith(_EVENT_PREFIX):
        if frame[:1] not in (b"\r", b"\n") or not frame:
            return None
        frame = frame.lstrip(b"\r\n")
        if not frame.startswith(_EVENT_PREFIX):
            return None
    end = frame.find(b"\n", 7)
    name = frame[7:] if end < 0 else frame[7:end]
    return name.rstrip(b"\r ") or None


class FrameDecoder:
    """Incremental framer: feed it TCP chunks, get complete frames back.

    Tolerates ``\\r\\n\\n`` and bare ``\\n\\n`` terminators. A frame larger than ``max_frame``
    is discarded up to its terminator and counted in ``oversized``. Each byte is scanned a
    bounded number of times (the pending tail is never rescanned per chunk), so a hostile
    peer cannot make framing quadratic and memory stays below ``max_frame`` plus one chunk.
    """

    __slots__ = ("_buf", "_discarding", "_scan_from", "max_frame", "oversized", "work")

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._discarding = False
        self.max_frame = max_frame
        self.oversized = 0
        self.work = 0
        """Bytes searched, copied or split so far: framing stays linear when this stays a
        small multiple of the bytes fed (counted per chunk, not per byte: free on the hot
        path; the tests check it instead of timing a busy machine)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data`` and return every frame it completes (terminators stripped)."""
        buf = self._buf
        if self._discarding:
            # Keep only enough tail to see a terminator split across chunks.
            buf += data
            self.work += len(buf)
            match = _TERMINATOR.search(buf)
            if match is None:
                del buf[:-3]
                return []
            del buf[: match.end()]
            self._discarding = False
            self._scan_from = 0
        else:
            buf += data
        # Cheap check over the new bytes only (plus 3 to catch a split terminator).
        scan = self._scan_from
        self.work += len(buf) - scan
        if buf.find(b"\n\r\n", scan) < 0 and buf.find(b"\n\n", scan) < 0:
            self._scan_from = max(0, len(buf) - 3)
            self._check_cap()
            return []
        block = bytes(buf)
        self.work += 2 * len(block)  # the copy, then the split
        if block[:1] in (b"\r", b"\n"):
            block = block.lstrip(b"\r\n")
        if b"\n\n" in block or b"\r\n\r\n\r\n" in block:
            parts = [p.strip(b"\r\n") for p in _TERMINATOR.split(block)]
        else:
            parts = block.split(b"\r\n\r\n")
        rest = parts.pop()
        buf.clear()
        buf += rest
        self._scan_from = max(0, len(buf) - 3)
        self._check_cap()
        if len(block) > self.max_frame:
            big = [p for p in parts if len(p) > self.max_frame]
            if big:
                self.oversized += len(big)
                parts = [p for p in parts if len(p) <= self.max_frame]
        if b"" in parts:
            parts = [p for p in parts if p]
        return parts

    def _check_cap(self) -> None:
        """Switch to discard mode when the unterminated tail grows past ``max_frame``."""
        buf = self._buf
        if len(buf) > self.max_frame:
            self.oversized += 1
            self._discarding = True
            del buf[:-3]
            self._scan_from = 0

    def feed_messages(self, data: bytes) -> Iterator[AmiMessage]:
        """Like :meth:`feed`, but parse each frame."""
        for frame in self.feed(data):
            yield parse_frame(frame)

    @property
    def pending(self) -> int:
        """Bytes buffered and not yet framed."""
        return len(self._buf)


def check_header(key: str, value: str) -> None:
    """Reject a header whose name or value could inject extra AMI lines."""
    for ch in _FORBIDDEN_CHARS:
        if ch in key or ch in value:
            raise HeaderInjectionError(key, value)
    if not key or ":" in key or key.strip() != key:
        raise HeaderInjectionError(key, value)


def encode_message(pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> bytes:
    """Encode headers as one CRLF-framed AMI message, validating every name and value."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out: list[str] = []
    for key, value in items:
        check_header(key, value)
        out.append(f"{key}: {value}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")
