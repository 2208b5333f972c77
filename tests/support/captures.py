"""Load the real Asterisk 22 captures as AMI messages for replay tests."""

from __future__ import annotations

from pathlib import Path

from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder

CAPTURES = Path(__file__).parent.parent / "fixtures" / "asterisk-captures"


def capture_bytes(scenario: str, name: str = "ami-from-asterisk.txt") -> bytes:
    """Return a capture's bytes without the AMI banner line."""
    data = (CAPTURES / scenario / name).read_bytes()
    if data.startswith(b"Asterisk Call Manager/"):
        data = data[data.index(b"\n") + 1 :]
    return data


def capture_messages(scenario: str) -> list[AmiMessage]:
    """Return every frame the PBX sent in a scenario, parsed."""
    decoder = FrameDecoder()
    return list(decoder.feed_messages(capture_bytes(scenario)))
