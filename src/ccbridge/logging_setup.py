"""Structured logging: one JSON object per line on stdout (or console output in dev)."""

from __future__ import annotations

import asyncio
import logging
import sys

import structlog


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    """Route structlog and the stdlib (uvicorn, sqlalchemy) through one JSON pipeline."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(CancelledCheckinFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class CancelledCheckinFilter(logging.Filter):
    """SQLAlchemy logs a connection's reset cut short by task cancellation as an error with
    a traceback, though it handles it (the connection is invalidated, not reused). At
    shutdown or a client's disconnect that is expected: one info line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the pool's cancelled-reset record; pass every record."""
        exc = record.exc_info[1] if record.exc_info else None
        if record.name.startswith("sqlalchemy.pool") and isinstance(exc, asyncio.CancelledError):
            record.msg, record.args = "db_connection_reset_cancelled", ()
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True
