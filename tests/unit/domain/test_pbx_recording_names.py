"""The names app_queue records under (ADR 0025): FastAGI's MONITOR_FILENAME, and which
MIXMONITOR_FILENAME ccbridge indexes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ccbridge.domain.recordings.model import BadRecordingNameError, recording_path
from ccbridge.domain.recordings.pbx_names import monitor_filename, pbx_recording_path

DAY = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
ROOT = "/srv/recordings"
DIR = "acme/2026/01/31"


def test_monitor_filename_is_the_generated_path_without_its_extension() -> None:
    name = monitor_filename(ROOT + "/", "acme", "1768000000.12", DAY)
    assert name == "/srv/recordings/acme/2026/01/31/1768000000.12"
    assert f"{name}.wav" == f"{ROOT}/{recording_path('acme', '1768000000.12', DAY)}"


@pytest.mark.parametrize(
    ("root", "tenant", "call_id"),
    [
        ("recordings", "acme", "1.2"),  # relative: MixMonitor would write into its spool
        ("/srv/rec,b", "acme", "1.2"),  # a comma would split app_queue's MixMonitor arguments
        ("/srv/^{X}", "acme", "1.2"),  # app_queue substitutes ^{...} in MONITOR_FILENAME
        ("/srv/rec", "Acme", "1.2"),
        ("/srv/rec", "acme", "../x"),
    ],
)
def test_monitor_filename_refuses_what_could_name_another_file(
    root: str, tenant: str, call_id: str
) -> None:
    with pytest.raises(BadRecordingNameError):
        monitor_filename(root, tenant, call_id, DAY)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (f"{ROOT}/{DIR}/1768000000.12.wav", f"{DIR}/1768000000.12.wav"),
        (f"{ROOT}/{DIR}/1768000000.12-q2.wav", f"{DIR}/1768000000.12-q2.wav"),  # the next take
        (f"{ROOT}/{DIR}/1768000000.12-2.wav", f"{DIR}/1768000000.12-2.wav"),
        ("/var/spool/asterisk/monitor/1768000000.12.wav", None),  # no MONITOR_FILENAME
        ("/srv/recordings/other/2026/01/31/1768000000.12.wav", None),  # another tenant
        ("/srv/recordings/acme/2026/01/31/1768000000.13.wav", None),  # another call
        ("/srv/recordings/acme/2026/01/31/1768000000.12.gsm", None),
        ("/srv/recordings/acme/2026/13/31/1768000000.12.wav", None),
        ("/srv/recordings/acme/2026/01/31/1768000000.12-x.wav", None),
        ("/srv/recordings/acme/../acme/2026/01/31/1768000000.12.wav", None),
        ("/srv/recordings/acme/2026/01/31/x/1768000000.12.wav", None),
        ("srv/recordings/acme/2026/01/31/1768000000.12.wav", None),
    ],
)
def test_only_a_generated_name_of_that_call_is_indexed(written: str, expected: str | None) -> None:
    assert pbx_recording_path(ROOT, written, "acme", "1768000000.12") == expected


def test_a_bad_tenant_or_call_id_indexes_nothing() -> None:
    written = "/srv/recordings/acme/2026/01/31/1768000000.12.wav"
    assert pbx_recording_path(ROOT, written, "../acme", "1768000000.12") is None
    assert pbx_recording_path(ROOT, written, "acme", "1768000000.12/..") is None
