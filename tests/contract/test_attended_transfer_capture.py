"""The fake PBX's ``AttendedTransfer`` against one captured from a real Asterisk 22.10.1
(tests/fixtures/ccbridge-captures/attended-transfer-atxfer.txt): same headers in the same
order, and the normaliser reads the real frame as the tracker needs it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccbridge.asterisk.ami.codec import AmiMessage, parse_frame
from ccbridge.asterisk.ami.normalize import normalize
from ccbridge.domain.calls.events import AttendedTransferred
from ccbridge.testing.ami_frames import Fields
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.transfer_scenarios import ivr_queue_attended_transfer

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ccbridge-captures"
CAPTURE = CAPTURES / "attended-transfer-atxfer.txt"
UNTOLD = CAPTURES / "attended-transfer-untold-target.txt"
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _real() -> AmiMessage:
    return parse_frame(CAPTURE.read_bytes())


def _shape(fields: list[tuple[str, str]]) -> list[str]:
    """Header names in order, without the per-channel ``ChanVariable`` lines (those depend on
    the PBX's ``channelvars`` setting, not on the event)."""
    return [k for k, _ in fields if not k.endswith("ChanVariable")]


def test_the_real_frame_normalises_to_the_transfer_the_tracker_needs() -> None:
    msg = _real()
    (event,) = normalize(msg, lambda: NOW)
    assert isinstance(event, AttendedTransferred)
    call = msg.get("TransfereeLinkedid")
    assert call is not None
    assert call.startswith("ccb-xfer-")
    assert event.linkedid == call
    assert event.uniqueid == f"{call};2"  # the caller's leg, which survives the transfer
    assert event.at == datetime.fromtimestamp(float(msg.get("Timestamp") or 0), UTC)
    assert event.transferer_channel is not None
    assert re.fullmatch(r"Local/2001@ccbridge-test-agents-[0-9a-f]{8};1", event.transferer_channel)
    assert event.target_channel is not None
    assert re.fullmatch(r"Local/2002@ccbridge-test-agents-[0-9a-f]{8};1", event.target_channel)
    assert event.dest_type == "Bridge"
    # Made with the *2 feature, the consultation stays in the call's Linkedid: nothing merges.
    assert event.merged_linkedid is None


async def test_the_fake_emits_the_real_headers_in_the_real_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pbx = FakeAsterisk(seed=7, agi_url=None)
    frames: dict[str, Fields] = {}
    emit = pbx.ami.emit

    def record(event: str, fields: Fields, privilege: str = "call,all") -> None:
        frames.setdefault(event, [("Event", event), ("Privilege", privilege), *fields])
        emit(event, fields, privilege)

    monkeypatch.setattr(pbx.ami, "emit", record)
    await ivr_queue_attended_transfer(
        pbx.ami,
        tenant="t1",
        did="4008001234",
        caller="13800138000",
        queue="t1-sales",
        agent_a="1101",
        agent_b="1102",
        step=0,
    )
    real = _real()
    fake = frames["AttendedTransfer"]
    assert _shape(fake) == [k for k in _shape(real.fields) if k != "Timestamp"]


def test_a_transfer_completed_while_the_target_rings_names_no_target() -> None:
    """What Asterisk really sends then (the tracker finds the target itself, see
    tests/unit/domain/test_call_params.py)."""
    msg = parse_frame(UNTOLD.read_bytes())
    assert not [k for k, _ in msg.fields if k.startswith("TransferTarget")]
    (event,) = normalize(msg, lambda: NOW)
    assert isinstance(event, AttendedTransferred)
    assert (event.target_channel, event.target_caller_num) == (None, None)
    assert (event.dest_type, event.merged_linkedid) == ("Bridge", None)
    assert event.transferer_channel is not None
    assert event.transferer_channel.startswith("Local/2001@ccbridge-test-agents-")
