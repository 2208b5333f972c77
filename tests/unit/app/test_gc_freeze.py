"""`ccbridge serve` freezes its start-up heap so full collections stop walking it."""

from __future__ import annotations

import gc

from structlog.testing import capture_logs

from ccbridge.bootstrap import freeze_startup_heap


def test_freeze_moves_the_startup_heap_out_of_collections_and_says_so() -> None:
    try:
        with capture_logs() as logs:
            frozen = freeze_startup_heap()
        assert frozen > 1000
        assert gc.get_freeze_count() > 1000
        assert [e["objects"] for e in logs if e["event"] == "gc_startup_heap_frozen"] == [frozen]
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after start-up is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
