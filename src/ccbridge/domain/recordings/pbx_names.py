"""The names app_queue records under when the PBX starts MixMonitor itself (ADR 0025).

FastAGI sets ``MONITOR_FILENAME`` to a call's generated path (take 1) without its extension;
app_queue appends ``.<monitor-format>`` (``wav``) and records the caller's channel when a
member answers. MixMonitor then reports the file it writes in ``MIXMONITOR_FILENAME``, which
ccbridge maps back to a relative path, only when it is one of the generated names of that
tenant and call, so no PBX-supplied text names a file ccbridge indexes.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

from ccbridge.domain.recordings.model import (
    BadRecordingNameError,
    check_call_id,
    check_tenant,
    recording_path,
)

MONITOR_FORMAT = "wav"
"""The generated queues' ``monitor-format``: the index only knows 8 kHz PCM WAV."""
_TAKE_RE = re.compile(r"^-q?(?:[2-9]|[1-9][0-9]{1,3})$")
"""``-2``…: ccbridge's own later takes; ``-q2``…: the dialplan's, when a recorded caller is
queued again (``[ccbridge-record-take]``), so the two never name the same file."""
_DAY_RE = re.compile(r"^[0-9]{4}/(?:0[1-9]|1[0-2])/(?:0[1-9]|[12][0-9]|3[01])$")


def monitor_filename(root: str, tenant: str, call_id: str, day: datetime) -> str:
    """The absolute ``MONITOR_FILENAME`` for a call: ``<root>/<tenant>/<yyyy>/<mm>/<dd>/<call-id>``.

    *root* must be absolute (MixMonitor puts a relative name into its own spool folder).
    """
    if not root.startswith("/") or any(c in root for c in '\r\n\x00\t ,|^{}$:?"\\'):
        raise BadRecordingNameError(f"recordings root must be an absolute plain path: {root!r}")
    stem = recording_path(tenant, call_id, day).removesuffix(f".{MONITOR_FORMAT}")
    return f"{root.rstrip('/')}/{stem}"


def pbx_recording_path(root: str, written: str, tenant: str, call_id: str) -> str | None:
    """The relative path of *written* (``MIXMONITOR_FILENAME``) when it is a generated name of
    this tenant's call under *root* (``<tenant>/<yyyy>/<mm>/<dd>/<call-id>[-[q]<take>].wav``);
    ``None`` for anything else (the admin's own recording, another folder, a forged name)."""
    try:
        check_tenant(tenant)
        check_call_id(call_id)
    except BadRecordingNameError:
        return None
    base = PurePosixPath(root)
    path = PurePosixPath(written)
    if not path.is_absolute() or ".." in path.parts:
        return None
    try:
        relative = path.relative_to(base)
    except ValueError:
        return None
    parts = relative.parts
    if len(parts) != 5 or parts[0] != tenant or not _DAY_RE.match("/".join(parts[1:4])):
        return None
    name = parts[4]
    if not name.endswith(f".{MONITOR_FORMAT}") or not name.startswith(call_id):
        return None
    take = name[len(call_id) : -len(MONITOR_FORMAT) - 1]
    if take and not _TAKE_RE.match(take):
        return None
    return str(relative)
