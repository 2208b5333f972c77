"""Recording-policy rules: what a valid export target is, and when the nightly push is due.

Pure: the export target's text reaches FTP commands (``USER``, ``CWD``, ``STOR``), so control
characters are refused here whatever the entry point (API, CLI, a migration).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from ccbridge.domain.recordings.retention import MAX_RETENTION_MONTHS

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$|^\[?[0-9A-Fa-f:.]+\]?$")
"""A DNS name or an IPv4/IPv6 literal; nothing else reaches ``connect``."""
GROUP_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""Skill-group names as the queue config uses them."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_GROUPS = 200
MAX_CA_PEM = 64 * 1024


def _text_problem(value: str, limit: int) -> str | None:
    if _CONTROL.search(value):
        return "must not contain control characters (CR, LF, NUL, ...)"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return None


def target_problems(target: ExportTarget) -> dict[str, str]:
    """Field (``export.host`` …) → what is wrong with it; empty when the target is valid."""
    problems: dict[str, str] = {}
    host_bad = _text_problem(target.host, 253)
    if host_bad or not target.host or not HOST_RE.match(target.host):
        problems["export.host"] = host_bad or "must be a host name or an IP address"
    if not 1 <= target.port <= 65535:
        problems["export.port"] = "must be between 1 and 65535"
    user_bad = _text_problem(target.username, 128)
    if user_bad or not target.username or " " in target.username:
        problems["export.username"] = user_bad or "must be non-empty, without spaces"
    pw_bad = _text_problem(target.password, 255)
    if pw_bad:
        problems["export.password"] = pw_bad
    d = target.directory
    dir_bad = _text_problem(d, 255)
    if dir_bad or not d.startswith("/") or "\\" in d or ".." in d.split("/"):
        problems["export.directory"] = dir_bad or "must be absolute ('/…'), without '..' or '\\'"
    pem = target.ca_pem
    if pem is not None and (
        len(pem) > MAX_CA_PEM
        or "\x00" in pem
        or "-----BEGIN CERTIFICATE-----" not in pem
        or "-----END CERTIFICATE-----" not in pem
    ):
        problems["export.ca_pem"] = "must be PEM certificate(s) (BEGIN/END CERTIFICATE)"
    return problems


def zone_of(name: str) -> ZoneInfo | None:
    """The IANA zone *name*, or ``None`` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def policy_problems(policy: RecordingPolicy) -> dict[str, str]:
    """Field → problem for a whole policy (retention, groups, export target, schedule)."""
    problems: dict[str, str] = {}
    if not 1 <= policy.retention_months <= MAX_RETENTION_MONTHS:
        problems["retention_months"] = f"must be between 1 and {MAX_RETENTION_MONTHS}"
    groups = policy.auto_record_groups
    if groups is not None:
        if len(groups) > MAX_GROUPS:
            problems["auto_record_groups"] = f"at most {MAX_GROUPS} skill groups"
        for i, group in enumerate(groups):
            if not GROUP_RE.match(group):
                problems[f"auto_record_groups[{i}]"] = "must match ^[A-Za-z0-9_.-]{1,64}$"
    if policy.export_target is not None:
        problems.update(target_problems(policy.export_target))
    elif policy.export_time is not None:
        problems["export.schedule_time"] = "a schedule needs an export target"
    if zone_of(policy.timezone) is None:
        problems["timezone"] = f"unknown time zone {policy.timezone!r}"
    return problems


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the local calendar *day* in *zone* (23 or 25 h across DST)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def due_export_window(policy: RecordingPolicy, now: datetime) -> tuple[datetime, datetime] | None:
    """The previous local day to push, once the tenant's local clock passed ``export_time``.

    ``None`` when the tenant has no schedule or target, or today's time has not come yet.
    The caller skips a window it already exported (the check runs every few minutes).
    """
    zone = zone_of(policy.timezone)
    if policy.export_target is None or policy.export_time is None or zone is None:
        return None
    local = now.astimezone(zone)
    if local.time().replace(tzinfo=None) < policy.export_time:
        return None
    return local_day_bounds(local.date() - timedelta(days=1), zone)
