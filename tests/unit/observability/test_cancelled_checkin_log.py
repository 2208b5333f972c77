"""A connection reset cut short by cancellation is one info line, not an error traceback."""

from __future__ import annotations

import asyncio
import logging

from ccbridge.logging_setup import CancelledCheckinFilter


def _record(name: str, exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException as caught:
        info = (type(caught), caught, caught.__traceback__)
    return logging.LogRecord(
        name, logging.ERROR, __file__, 1, "Exception during reset or similar", (), info
    )


def test_the_pools_cancelled_reset_becomes_one_info_line() -> None:
    record = _record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", asyncio.CancelledError())
    assert CancelledCheckinFilter().filter(record)
    assert record.levelno == logging.INFO
    assert record.getMessage() == "db_connection_reset_cancelled"
    assert record.exc_info is None


def test_a_real_reset_error_keeps_its_level_and_traceback() -> None:
    record = _record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", OSError("connection lost"))
    assert CancelledCheckinFilter().filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


def test_a_cancellation_logged_elsewhere_is_left_alone() -> None:
    record = _record("ccbridge.jobs.runner", asyncio.CancelledError())
    assert CancelledCheckinFilter().filter(record)
    assert record.levelno == logging.ERROR
