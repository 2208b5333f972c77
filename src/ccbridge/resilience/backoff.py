"""Capped exponential back-off with jitter, shared by every loop that retries a dependency."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """The next delay doubles from ``initial`` up to ``maximum``; ``jitter`` spreads retries so
    every loop of every process does not hit a returning database in the same instant."""

    initial: float = 0.2
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self._next = self.initial

    def next_delay(self) -> float:
        """The delay to wait now; the one after it is longer (up to ``maximum``)."""
        delay = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._next = self.initial
