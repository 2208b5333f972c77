"""The event loop a long-running ccbridge process runs on (ADR 0022).

uvloop (installed with ``uvicorn[standard]``) runs the same asyncio code with a cheaper
scheduler and socket layer: the HTTP, AMI and FastAGI loops all share one core's budget,
and every microsecond per wake-up is taken from the poll and SSE latency tails.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopKind = Literal["auto", "uvloop", "asyncio"]


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop constructor for *kind*: ``auto`` = uvloop when installed, else asyncio's."""
    if kind == "asyncio" or (kind == "auto" and importlib.util.find_spec("uvloop") is None):
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: LoopKind = "auto") -> T:
    """Run *main* to completion on the loop *kind* names (``asyncio.run`` semantics)."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
