"""Automatic incidents: the AMI link down for more than 30 s opens one, back up closes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccbridge.domain.sla.detector import OutageDetector, OutageEnded, OutageStarted

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_blip_shorter_than_30_s_is_not_an_incident() -> None:
    d = OutageDetector()
    assert d.observe(False, at(0)) is None
    assert d.observe(False, at(25)) is None
    assert d.observe(True, at(29)) is None
    assert not d.is_open


def test_down_30_s_opens_from_the_first_sample_down_and_up_closes() -> None:
    d = OutageDetector()
    assert d.observe(True, at(0)) is None
    assert d.observe(False, at(5)) is None
    assert d.observe(False, at(30)) is None  # 25 s down
    assert d.observe(False, at(35)) == OutageStarted(at(5))
    assert d.observe(False, at(40)) is None  # opened once
    assert d.observe(True, at(95)) == OutageEnded(at(95))
    assert d.observe(True, at(100)) is None


def test_resume_continues_an_incident_left_open_by_a_restart() -> None:
    d = OutageDetector()
    d.resume(at(0))
    assert d.observe(False, at(60)) is None
    assert d.observe(True, at(90)) == OutageEnded(at(90))
