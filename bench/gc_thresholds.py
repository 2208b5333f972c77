"""GC policy (ADR 0022): collections per generation on a serving-shaped heap, by young threshold.

    PYTHONPATH=src .venv/bin/python bench/gc_thresholds.py [--requests 300000] [--runs 3]

The heap: the start-up heap frozen as ``ccbridge serve`` freezes it, 60k live tracked objects
(about what 500 SSE streams keep), 200 requests in flight, each request a few containers and
one reference cycle (as frames, tasks and exceptions make). For CPython's default young
threshold (700, the peer) and for ``gc_policy.YOUNG_THRESHOLD`` it prints, per run, the number
of collections, their total and longest CPU time per generation; then min/median/max of the
runs and the ratio of full collections. Exits 1 unless the policy makes at most a third of the
default's full collections without raising the total collector time by more than half.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any

from ccbridge.gc_policy import OLDER_THRESHOLDS, YOUNG_THRESHOLD

DEFAULT_YOUNG = 700


def serve_requests(n: int) -> None:
    """*n* request-shaped allocations, 200 in flight at a time."""
    in_flight: list[dict[str, Any]] = []
    for _ in range(n):
        req: dict[str, Any] = {"scope": {"headers": [(b"a", b"b")] * 4}, "state": {}}
        req["self"] = req
        in_flight.append(req)
        if len(in_flight) > 200:
            in_flight.pop(0)


def measure(young: int, requests: int) -> dict[str, Any]:
    """Collections during *requests* with the young threshold *young*."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            pauses[info["generation"]].append(time.thread_time() - started[0])

    previous = gc.get_threshold()
    gc.set_threshold(young, *OLDER_THRESHOLDS)
    gc.callbacks.append(on)
    try:
        serve_requests(requests)
    finally:
        gc.callbacks.remove(on)
        gc.set_threshold(*previous)
    return {
        "young": young,
        **{
            f"gen{g}": {
                "n": len(p),
                "total_ms": round(sum(p) * 1000, 1),
                "max_ms": round(max(p, default=0) * 1000, 2),
            }
            for g, p in pauses.items()
        },
        "total_ms": round(sum(sum(p) for p in pauses.values()) * 1000, 1),
    }


def spread(values: list[float]) -> dict[str, float]:
    """min/median/max."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    """Run both thresholds ``--runs`` times, interleaved; print and judge."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    live = [{"k": [i, {"x": i}]} for i in range(20_000)]  # 60k tracked objects
    gc.collect()
    gc.freeze()
    runs: dict[int, list[dict[str, Any]]] = {DEFAULT_YOUNG: [], YOUNG_THRESHOLD: []}
    for _ in range(args.runs):
        for young in runs:
            result = measure(young, args.requests)
            runs[young].append(result)
            print(json.dumps(result), flush=True)
    summary: dict[str, Any] = {}
    for young, results in runs.items():
        summary[str(young)] = {
            "full": spread([r["gen2"]["n"] for r in results]),
            "full_max_ms": spread([r["gen2"]["max_ms"] for r in results]),
            "longest_any_ms": spread(
                [max(r[f"gen{g}"]["max_ms"] for g in range(3)) for r in results]
            ),
            "total_ms": spread([r["total_ms"] for r in results]),
        }
    full_ratio = statistics.median(r["gen2"]["n"] for r in runs[YOUNG_THRESHOLD]) / max(
        1, statistics.median(r["gen2"]["n"] for r in runs[DEFAULT_YOUNG])
    )
    total_ratio = statistics.median(r["total_ms"] for r in runs[YOUNG_THRESHOLD]) / max(
        0.001, statistics.median(r["total_ms"] for r in runs[DEFAULT_YOUNG])
    )
    ok = full_ratio <= 1 / 3 and total_ratio <= 1.5
    print(
        json.dumps(
            {
                "summary": "gc_thresholds",
                "live_objects": len(live) * 3,
                **summary,
                "full_collections_vs_default": round(full_ratio, 2),
                "collector_time_vs_default": round(total_ratio, 2),
                "pass": ok,
            }
        )
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
