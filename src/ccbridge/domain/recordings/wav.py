"""Minimal PCM WAV writing (8 kHz 16-bit mono, what MixMonitor writes for ``.wav``)."""

from __future__ import annotations

import math
import struct
from functools import lru_cache

SAMPLE_RATE = 8000


def wav_header(data_bytes: int, rate: int = SAMPLE_RATE) -> bytes:
    """A canonical 44-byte RIFF/WAVE header for 16-bit mono PCM of *data_bytes* bytes."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def tone(
    seconds: float, *, hz: float = 440.0, silent: bool = False, rate: int = SAMPLE_RATE
) -> bytes:
    """PCM samples of a sine tone (or silence, for a muted stretch)."""
    count = max(0, int(seconds * rate))
    if silent:
        return b"\x00\x00" * count
    second = _one_second(hz, rate)  # a whole number of cycles, so it repeats seamlessly
    whole, rest = divmod(count * 2, len(second))
    return second * whole + second[:rest]


@lru_cache(maxsize=8)
def _one_second(hz: float, rate: int) -> bytes:
    step = 2 * math.pi * hz / rate
    return struct.pack(f"<{rate}h", *(int(8000 * math.sin(i * step)) for i in range(rate)))


def parse_data_size(header: bytes) -> int | None:
    """The ``data`` chunk size of a canonical header, or ``None`` when it is not one."""
    if len(header) < 44 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    if header[36:40] != b"data":
        return None
    return int(struct.unpack("<I", header[40:44])[0])
