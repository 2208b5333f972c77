"""ADR 0022: a serving process freezes its start-up heap, widens the young generation and
times every collection into ``ccbridge_gc_pause_seconds``."""

from __future__ import annotations

import gc

import pytest

from ccbridge import gc_policy
from ccbridge.bootstrap import apply_gc_policy
from ccbridge.observability.metrics import Metrics
from ccbridge.settings import Settings


def _count(metrics: Metrics, generation: str) -> float:
    value = metrics.registry.get_sample_value(
        "ccbridge_gc_pause_seconds_count", {"generation": generation}
    )
    return value or 0.0


def test_the_serving_thresholds_widen_only_the_young_generation() -> None:
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    try:
        assert gc_policy.apply_serving_thresholds() == (700, 10, 10)
        assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, 10, 10)
        assert gc_policy.YOUNG_THRESHOLD > 700
    finally:
        gc.set_threshold(*previous)


def test_the_observer_times_each_collection_by_generation_until_removed() -> None:
    seen: list[tuple[int, float]] = []
    observer = gc_policy.GcPauseObserver(lambda g, s: seen.append((g, s)))
    observer.install()
    observer.install()  # once only
    other = gc_policy.GcPauseObserver(lambda g, s: None)
    other.install()  # a second wiring takes the first one's place
    assert len([c for c in gc.callbacks if getattr(c, "__self__", None) is other]) == 1
    assert not [c for c in gc.callbacks if getattr(c, "__self__", None) is observer]
    other.remove()
    observer.install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        observer.remove()
    assert [g for g, _ in seen] == [0, 2]
    assert all(s >= 0 for _, s in seen)
    gc.collect(1)
    assert len(seen) == 2


def test_serve_applies_the_policy_and_the_pauses_reach_the_metrics() -> None:
    previous = gc.get_threshold()
    metrics = Metrics()
    observer = apply_gc_policy(metrics)
    try:
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
        before = _count(metrics, "2")
        gc.collect()
        assert _count(metrics, "2") == before + 1
        assert b'ccbridge_gc_pause_seconds_bucket{generation="2"' in metrics.exposition()
    finally:
        observer.remove()
        gc.unfreeze()
        gc.set_threshold(*previous)


def test_the_young_threshold_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gc_young_threshold == gc_policy.YOUNG_THRESHOLD
    monkeypatch.setenv("CCBRIDGE_GC_YOUNG_THRESHOLD", "2000")
    previous = gc.get_threshold()
    observer = apply_gc_policy(Metrics(), Settings().gc_young_threshold)
    try:
        assert gc.get_threshold()[0] == 2000
    finally:
        observer.remove()
        gc.unfreeze()
        gc.set_threshold(*previous)
