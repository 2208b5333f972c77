"""Judge ccbridge's own health from counter snapshots: is FastAGI refusing calls, is the API
answering too many 5xx, is the event journal lagging? Each judgement feeds an
:class:`~ccbridge.domain.sla.detector.OutageDetector`, which turns a sustained "unhealthy"
into an automatic incident (requirements §2.7, BILL-07).

Counters only grow, so each judge keeps the snapshots of its last ``window`` and compares the
newest with the oldest: a rate over the window, not over one noisy sample interval.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: datetime
    values: tuple[float, ...]


class _Window:
    """Counter snapshots of the last *window*; ``delta`` is newest minus oldest."""

    def __init__(self, window: timedelta) -> None:
        self._window = window
        self._samples: deque[_Snapshot] = deque()

    def push(self, at: datetime, *values: float) -> tuple[float, ...]:
        self._samples.append(_Snapshot(at, values))
        while len(self._samples) > 2 and at - self._samples[1].at >= self._window:
            self._samples.popleft()
        first = self._samples[0].values
        # A counter that went down was reset (a restart): count from the reset.
        return tuple(v - f if v >= f else v for v, f in zip(values, first, strict=True))

    @property
    def span(self) -> timedelta:
        return self._samples[-1].at - self._samples[0].at if self._samples else timedelta(0)


class FastAgiHealth:
    """Unhealthy while the FastAGI port is not listening or it refused a session for lack of
    capacity within the window (refusals of peers outside the allow-list do not count: they
    are not Asterisk's calls)."""

    def __init__(self, window: timedelta) -> None:
        self._window = _Window(window)

    def observe(self, at: datetime, listening: bool, refused_capacity: int) -> bool:
        """Feed one snapshot; say whether FastAGI is healthy now."""
        (refused,) = self._window.push(at, float(refused_capacity))
        return listening and refused == 0


class ErrorRateHealth:
    """Unhealthy while more than ``max_ratio`` of the last window's HTTP answers were 5xx,
    once at least ``min_requests`` were answered (a lone failure on an idle API is not an
    outage)."""

    def __init__(self, window: timedelta, max_ratio: float, min_requests: int) -> None:
        self._window = _Window(window)
        self._max_ratio = max_ratio
        self._min_requests = min_requests

    def observe(self, at: datetime, answered: float, server_errors: float) -> bool:
        """Feed one snapshot of the answered and 5xx counters; say whether the API is healthy."""
        total, errors = self._window.push(at, answered, server_errors)
        if total < self._min_requests:
            return True
        return errors / total <= self._max_ratio


class JournalLagHealth:
    """Unhealthy while events reach the journal later than ``max_lag`` on average over the
    window, or while events wait to be written and none was committed for a whole window."""

    def __init__(self, window: timedelta, max_lag: timedelta) -> None:
        self._window = _Window(window)
        self._length = window
        self._max_lag = max_lag.total_seconds()

    def observe(self, at: datetime, commits: float, lag_sum: float, pending: int) -> bool:
        """Feed the lag histogram's count and sum and the writer's backlog; say whether the
        journal keeps up."""
        count, total = self._window.push(at, commits, lag_sum)
        if count > 0:
            return total / count <= self._max_lag
        return not (pending > 0 and self._window.span >= self._length)
