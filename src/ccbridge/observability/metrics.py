"""Prometheus metrics: one registry per process, every metric declared here so names agree.

Each area owns a small group (a dataclass of metric objects) built on the shared registry; the
composition root creates one :class:`Metrics` and hands each component only the group it needs.
Tests build their own ``Metrics()`` so nothing leaks between them through a global registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

PREFIX = "ccbridge"

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(slots=True)
class HeldBacklogMetrics:
    """Writes held in memory while the database is away (the hold is bounded; docs/ops.md)."""

    held: Gauge
    capacity: Gauge
    dropped: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> HeldBacklogMetrics:
        """Declare the group on ``registry``."""
        return cls(
            held=Gauge(
                f"{PREFIX}_held_writes",
                "Writes held in memory while the database is unavailable, by kind.",
                ["kind"],
                registry=registry,
            ),
            capacity=Gauge(
                f"{PREFIX}_held_writes_capacity",
                "The most writes of a kind ccbridge holds before it refuses or drops (the bound).",
                ["kind"],
                registry=registry,
            ),
            dropped=Counter(
                f"{PREFIX}_held_writes_dropped",
                "Writes that could not be held because the bound was reached, by kind.",
                ["kind"],
                registry=registry,
            ),
        )


@dataclass(slots=True)
class DatabaseMetrics:
    """Database availability as the service sees it."""

    up: Gauge
    errors: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> DatabaseMetrics:
        """Declare the group on ``registry``."""
        return cls(
            up=Gauge(
                f"{PREFIX}_db_up",
                "1 while the database answers, 0 while it is away.",
                registry=registry,
            ),
            errors=Counter(
                f"{PREFIX}_db_errors",
                "Database operations that failed, by component.",
                ["component"],
                registry=registry,
            ),
        )


@dataclass(slots=True)
class HttpMetrics:
    """HTTP requests served, for rate, error ratio and latency."""

    requests: Counter
    latency: Histogram

    @classmethod
    def on(cls, registry: CollectorRegistry) -> HttpMetrics:
        """Declare the group on ``registry``."""
        return cls(
            requests=Counter(
                f"{PREFIX}_http_requests",
                "HTTP requests answered, by route template, method and status class.",
                ["route", "method", "status"],
                registry=registry,
            ),
            latency=Histogram(
                f"{PREFIX}_http_request_seconds",
                "HTTP request duration by route template.",
                ["route"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
                registry=registry,
            ),
        )


@dataclass(slots=True)
class Metrics:
    """Every metric group of one ccbridge process, on one registry."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    held: HeldBacklogMetrics = field(init=False)
    db: DatabaseMetrics = field(init=False)
    http: HttpMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.held = HeldBacklogMetrics.on(self.registry)
        self.db = DatabaseMetrics.on(self.registry)
        self.http = HttpMetrics.on(self.registry)

    def exposition(self) -> bytes:
        """The text format a Prometheus server scrapes."""
        return generate_latest(self.registry)
