"""Failed-login throttling for the FTP service: too many failures lock a name or address out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class LoginThrottle:
    """Allow at most ``max_failures`` failed logins per key within ``window`` seconds.

    A key is a user name or a peer address; a locked key is refused even with the right
    password until ``lockout`` seconds after its last failure. *now* is a monotonic clock.
    """

    now: Callable[[], float]
    max_failures: int = 5
    window: float = 300.0
    lockout: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def locked(self, *keys: str) -> bool:
        """Say whether any of *keys* is locked out now."""
        t = self.now()
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and t - times[0] > max(self.window, self.lockout):
                times.popleft()
            recent = [x for x in times if t - x <= self.window]
            if len(recent) >= self.max_failures and t - times[-1] < self.lockout:
                return True
        return False

    def failed(self, *keys: str) -> None:
        """Count one failed login against each of *keys*."""
        t = self.now()
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.max_failures * 4)).append(t)
        if len(self._failures) > 100_000:  # bound memory under a spray of names
            self._failures.clear()

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of *keys* after a good login."""
        for key in keys:
            self._failures.pop(key, None)
