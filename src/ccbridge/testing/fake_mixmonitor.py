"""What the fake PBX's MixMonitor writes: a real 8 kHz 16-bit mono WAV, silence while muted.

Like Asterisk, the file exists (an empty WAV) from the start and is complete when the
recording stops (StopMixMonitor, which emits ``MixMonitorStop``) or the channel hangs up (no
event; Asterisk 22 only publishes MixMonitorStop from StopMixMonitor). Each recorded second
is a 440 Hz tone unless muted. Only absolute paths are written (ccbridge and FastAGI always
name one); a relative name would land in Asterisk's spool, which the fake does not have.
Audio is capped at one hour, because a time-scaled simulator clock can make a short test look
like a very long call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ccbridge.domain.recordings.wav import tone, wav_header

MAX_SECONDS = 3600.0
TAKE_FORMAT = "wav"
"""Every generated queue's ``monitor-format``; the shipped ``[ccbridge-record-name]`` looks for
``<name>.wav`` on disk."""
MAX_TAKE = 99


def first_free_take(base: str) -> str | None:
    """The shipped ``[ccbridge-record-name]``: *base*, else ``<base>-q2`` … ``-q99``, the first
    whose ``.wav`` is not on disk (MixMonitor creates its file when it starts); ``None`` when
    all are taken."""
    for take in range(1, MAX_TAKE + 1):
        name = base if take == 1 else f"{base}-q{take}"
        if not os.path.exists(f"{name}.{TAKE_FORMAT}"):
            return name
    return None


@dataclass(slots=True)
class MixMonitorTape:
    """Mute changes over time for one recording, turned into PCM when it stops."""

    path: str
    started: float
    changes: list[tuple[float, bool]] = field(default_factory=list)

    def mute(self, at: float, muted: bool) -> None:
        """Note a MixMonitorMute at *at* (the fake's clock, seconds)."""
        self.changes.append((at, muted))

    def begin(self) -> None:
        """Create the file with an empty WAV header, as MixMonitor opens it when it starts
        (app_mixmonitor.c ``mixmonitor_save_prep``): the file exists while the call is up."""
        if not os.path.isabs(self.path):
            return
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_header(0))

    def write(self, ended: float) -> int:
        """Write the WAV file (directories made as needed); return its size in bytes."""
        if not os.path.isabs(self.path):
            return 0
        ended = min(ended, self.started + MAX_SECONDS)
        pcm = bytearray()
        muted, mark = False, self.started
        for at, state in [*self.changes, (ended, False)]:
            at = max(mark, min(at, ended))
            pcm += tone(at - mark, silent=muted)
            mark, muted = at, state
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(wav_header(len(pcm)) + bytes(pcm))
        os.replace(tmp, path)
        return len(pcm) + 44
