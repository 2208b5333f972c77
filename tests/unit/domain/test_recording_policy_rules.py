"""Export-target rules and the nightly window in the tenant's zone (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from ccbridge.domain.recordings.policy import due_export_window, policy_problems

TARGET = ExportTarget("ftp.example.com", 21, "acme", "pw", True, "/in")


def test_control_characters_and_escapes_are_refused_per_field() -> None:
    bad = ExportTarget("h\r\nx", 0, "a\x00", "p\nq", True, "/a/../b")
    problems = policy_problems(RecordingPolicy("t1", export_target=bad))
    assert set(problems) == {
        "export.host",
        "export.port",
        "export.username",
        "export.password",
        "export.directory",
    }
    assert "control characters" in problems["export.host"]
    assert policy_problems(RecordingPolicy("t1", export_target=TARGET)) == {}
    no_target = RecordingPolicy("t1", export_time=time(2))
    assert set(policy_problems(no_target)) == {"export.schedule_time"}


def test_nightly_window_is_the_previous_local_day_after_the_local_time() -> None:
    policy = RecordingPolicy(
        "t1", export_target=TARGET, export_time=time(2, 0), timezone="Europe/Berlin"
    )
    # 2026-03-29: Berlin switches to summer time (a 23-hour day); at 02:30 CEST of the 30th
    # the 29th is pushed: [2026-03-28T23:00Z, 2026-03-29T22:00Z).
    assert due_export_window(policy, datetime(2026, 3, 29, 23, 59, tzinfo=UTC)) is None
    window = due_export_window(policy, datetime(2026, 3, 30, 0, 30, tzinfo=UTC))
    assert window == (
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
    )
    assert due_export_window(RecordingPolicy("t1", export_target=TARGET), datetime.now(UTC)) is None
