"""The cyclic garbage collector's policy for a serving process (ADR 0022).

A collection stops the event loop: AMI reads, SSE deliveries and polls all wait it out, so the
collector is tuned for short, rare pauses rather than for the smallest heap:

* **freeze the start-up heap** (modules, pydantic and SQLAlchemy metadata, the wiring):
  a full collection then walks only what serving made, not the ~180k start-up objects;
* **a larger young generation** (``YOUNG_THRESHOLD`` instead of CPython's 700): a request's,
  an AMI batch's and an SSE wake-up's objects die before the next young collection instead of
  being promoted, so fewer reach the old generation and full collections come rarer; each
  young collection walks at most that many objects (about a millisecond);
* **measure every pause** (``gc.callbacks``) so ``ccbridge_gc_pause_seconds`` shows when a
  collection is the latency tail.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

YOUNG_THRESHOLD = 5_000
"""Net new container objects between young collections (CPython's default: 700; the setting
``CCBRIDGE_GC_YOUNG_THRESHOLD`` overrides it). On a
serving-shaped heap (``bench/gc_thresholds.py``): full collections per 300k requests 12 → 2,
total collector time × 0.75, longest pause about the same (~2 ms); 10,000 doubled the
longest middle collection for little more."""
OLDER_THRESHOLDS = (10, 10)
"""CPython's defaults: a middle collection every 10 young ones, a full one every 10 middle
ones *and* only once the old generation grew by a quarter since the last full one."""

PauseSink = Callable[[int, float], None]
"""Called with ``(generation, seconds)`` after each collection."""


def freeze_startup_heap() -> int:
    """Move everything alive now out of the collector's reach; return how many objects.

    Frozen objects are still freed by reference counting; only reference cycles among them
    would stay until exit, and nothing made at start-up is meant to be dropped.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def apply_serving_thresholds(young: int = YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """Set the serving thresholds; return the previous ones (tests restore them)."""
    previous = gc.get_threshold()
    gc.set_threshold(young, *OLDER_THRESHOLDS)
    return previous


class GcPauseObserver:
    """Times every collection through ``gc.callbacks`` and hands it to a sink."""

    def __init__(self, sink: PauseSink) -> None:
        """Keep the sink; :meth:`install` starts observing."""
        self._sink = sink
        self._started = 0.0

    def _on(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._sink(int(info["generation"]), time.perf_counter() - self._started)

    def install(self) -> None:
        """Start observing, in place of any observer installed before (one per process: a
        process that wires twice, as tests do, does not time each collection twice)."""
        for callback in list(gc.callbacks):
            if getattr(callback, "__self__", None).__class__ is GcPauseObserver:
                gc.callbacks.remove(callback)
        gc.callbacks.append(self._on)

    def remove(self) -> None:
        """Stop observing."""
        if self._on in gc.callbacks:
            gc.callbacks.remove(self._on)
