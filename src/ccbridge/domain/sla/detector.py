"""Automatic incidents from ccbridge's own health: a component down longer than a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

AMI_DOWN_THRESHOLD = timedelta(seconds=30)
"""The AMI link must be down this long before it is an incident (shorter blips are not)."""


@dataclass(frozen=True, slots=True)
class OutageStarted:
    """Open an incident that started when the component was first seen down."""

    since: datetime


@dataclass(frozen=True, slots=True)
class OutageEnded:
    """Close the open incident at this instant."""

    at: datetime


class OutageDetector:
    """Turn health samples into incident open/close decisions for one component."""

    def __init__(self, threshold: timedelta = AMI_DOWN_THRESHOLD) -> None:
        self._threshold = threshold
        self._down_since: datetime | None = None
        self._open = False

    @property
    def is_open(self) -> bool:
        """Say whether an incident is open for this component."""
        return self._open

    def resume(self, since: datetime) -> None:
        """Continue an incident still open in the log (after a restart)."""
        self._down_since, self._open = since, True

    def observe(self, healthy: bool, at: datetime) -> OutageStarted | OutageEnded | None:
        """Feed one sample; say whether an incident opens or ends now."""
        if healthy:
            ended = self._open
            self._down_since, self._open = None, False
            return OutageEnded(at) if ended else None
        if self._down_since is None:
            self._down_since = at
        if not self._open and at - self._down_since >= self._threshold:
            self._open = True
            return OutageStarted(self._down_since)
        return None
