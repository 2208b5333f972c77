"""Readiness: each dependency reports ok or not, with details an operator can act on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The state of one dependency."""

    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


Check = Callable[[], Awaitable[CheckResult]]


class Readiness:
    """Run every registered check concurrently, each under a timeout."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._checks: dict[str, Check] = {}
        self._timeout = timeout

    def add(self, name: str, check: Check) -> None:
        """Register a named check."""
        self._checks[name] = check

    async def run(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """Return overall readiness and each check's detail."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._one(self._checks[n]) for n in names))
        report = {n: {"ok": r.ok, **r.detail} for n, r in zip(names, results, strict=True)}
        return all(r.ok for r in results), report

    async def _one(self, check: Check) -> CheckResult:
        try:
            return await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return CheckResult(False, {"error": f"check timed out after {self._timeout}s"})
        except Exception as exc:  # a failing check must report, not crash /readyz
            return CheckResult(False, {"error": f"{type(exc).__name__}: {exc}"})
