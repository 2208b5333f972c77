"""Prometheus metrics: one registry per process, every metric declared here so names agree.

Each area owns a small group (a dataclass of metric objects) built on the shared registry; the
composition root creates one :class:`Metrics` and hands each component only the group it needs.
Tests build their own ``Metrics()`` so nothing leaks between them through a global registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.queue_figures import waiting_by_queue

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


def answered_and_server_errors(http: HttpMetrics) -> tuple[float, float]:
    """HTTP answers so far and how many of them were 5xx (the SLA's error-rate judge)."""
    total = errors = 0.0
    for family in http.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                total += sample.value
                if sample.labels.get("status") == "5xx":
                    errors += sample.value
    return total, errors


def lag_count_and_sum(events: EventMetrics) -> tuple[float, float]:
    """Journal commits observed so far and the sum of their lags (the SLA's lag judge)."""
    count = total = 0.0
    for family in events.lag_seconds.collect():
        for sample in family.samples:
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    return count, total


class _ReadAtScrape(Collector):
    """Samples read from live in-memory state when Prometheus scrapes: free on the event path."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """Read the state now."""
        yield from self._read()

    def describe(self) -> list[Metric]:
        """Nothing up front: the families depend on what is live."""
        return []


class AmiStatusView(Protocol):
    """What the AMI metrics read of the client's status (``AmiClient.status``)."""

    @property
    def connected(self) -> bool: ...
    @property
    def logged_in(self) -> bool: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def queue_depth(self) -> int: ...
    @property
    def events_received(self) -> int: ...
    @property
    def events_dropped(self) -> int: ...


@dataclass(slots=True)
class AmiMetrics:
    """The AMI link: up or not, reconnects, ingest, and how long the PBX takes to answer actions."""

    action_seconds: Histogram
    registry: CollectorRegistry

    @classmethod
    def on(cls, registry: CollectorRegistry) -> AmiMetrics:
        """Declare the group on ``registry``."""
        return cls(
            action_seconds=Histogram(
                f"{PREFIX}_ami_action_seconds",
                "Time from sending an AMI action to its response, by action and outcome.",
                ["action", "outcome"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0),
                registry=registry,
            ),
            registry=registry,
        )

    def observe_action(self, action: str, seconds: float, outcome: str) -> None:
        """Record one action's round trip (the AMI client's action observer)."""
        self.action_seconds.labels(action, outcome).observe(seconds)

    def watch(self, status: Callable[[], AmiStatusView]) -> None:
        """Read the connection state and counters from ``status`` at each scrape."""

        def read() -> Iterator[Metric]:
            now = status()
            yield _gauge("ami_connected", "1 while the AMI TCP link is up.", int(now.connected))
            yield _gauge("ami_logged_in", "1 while logged in to AMI.", int(now.logged_in))
            yield _counter("ami_reconnects", "AMI reconnections since start.", now.reconnects)
            yield _counter(
                "ami_events_received", "AMI events received since start.", now.events_received
            )
            yield _counter(
                "ami_events_dropped",
                "AMI events dropped because the ingest queue was full.",
                now.events_dropped,
            )
            yield _gauge(
                "ami_event_queue_depth", "AMI events read but not yet handled.", now.queue_depth
            )

        self.registry.register(_ReadAtScrape(read))


@dataclass(slots=True)
class HaMetrics:
    """This node's part in PBX ownership (several nodes, ADR 0026)."""

    registry: CollectorRegistry

    def watch(
        self, owner: Callable[[], bool], terms_won: Callable[[], int], terms_lost: Callable[[], int]
    ) -> None:
        """Read this node's role and its terms at each scrape."""

        def read() -> Iterator[Metric]:
            yield _gauge("pbx_owner", "1 while this node owns the PBX, 0 on a standby.", owner())
            yield _counter("pbx_terms_won", "Terms of PBX ownership this node won.", terms_won())
            yield _counter(
                "pbx_terms_lost", "Terms that ended without a release (fenced).", terms_lost()
            )

        self.registry.register(_ReadAtScrape(read))

    def watch_cluster(self, holder: Callable[[], bool]) -> None:
        """Read at each scrape whether this node holds the cluster lease (ADR 0033)."""

        def read() -> Iterator[Metric]:
            yield _gauge(
                "cluster_lease_holder",
                "1 while this node runs the work done once per database (retention, reports, "
                "exports, webhooks), else 0.",
                holder(),
            )

        self.registry.register(_ReadAtScrape(read))

    def watch_forwarding(self, forwarded: Callable[[], int], failed: Callable[[], int]) -> None:
        """Read at each scrape how many owner-only requests this node forwarded (ADR 0031)."""

        def read() -> Iterator[Metric]:
            yield _counter(
                "owner_requests_forwarded",
                "Owner-only requests this standby forwarded to the PBX owner and relayed.",
                forwarded(),
            )
            yield _counter(
                "owner_forwards_failed",
                "Owner-only requests answered 503/504 here: no owner, unreachable, or no answer.",
                failed(),
            )

        self.registry.register(_ReadAtScrape(read))


SeatCensus = Sequence[tuple[str, str, str, int]]
"""``(tenant, skill group, agent state, agents)`` rows."""


@dataclass(slots=True)
class FloorMetrics:
    """The floor: agents by state per skill group, calls waiting and the longest wait per queue."""

    registry: CollectorRegistry
    census: SeatCensus = ()

    @classmethod
    def on(cls, registry: CollectorRegistry) -> FloorMetrics:
        """Declare the group on ``registry``."""
        floor = cls(registry=registry)
        registry.register(_ReadAtScrape(floor._read_census))
        return floor

    def record_census(self, rows: SeatCensus) -> None:
        """Keep the latest seat census (sampled from the database by a job)."""
        self.census = tuple(rows)

    def _read_census(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{PREFIX}_agents",
            "Signed-in agents by tenant, skill group and state (an agent counts in each group).",
            labels=["tenant", "skill_group", "state"],
        )
        for tenant, group, state, count in self.census:
            family.add_metric([tenant, group, state], count)
        yield family

    def watch_calls(
        self, open_calls: Callable[[], Iterable[CallRecord]], now: Callable[[], datetime]
    ) -> None:
        """Read the waiting calls from the call tracker at each scrape."""

        def read() -> Iterator[Metric]:
            waiting = GaugeMetricFamily(
                f"{PREFIX}_queue_calls_waiting",
                "Calls waiting for an agent, by tenant and skill group.",
                labels=["tenant", "skill_group"],
            )
            longest = GaugeMetricFamily(
                f"{PREFIX}_queue_longest_wait_seconds",
                "How long the oldest waiting call has waited, by tenant and skill group.",
                labels=["tenant", "skill_group"],
            )
            for row in waiting_by_queue(open_calls(), now()):
                waiting.add_metric([row.tenant, row.skill_group], row.waiting)
                longest.add_metric([row.tenant, row.skill_group], row.longest_wait_s)
            yield waiting
            yield longest

        self.registry.register(_ReadAtScrape(read))


class StampedEvent(Protocol):
    """What the lag metric reads of a committed journal event."""

    @property
    def occurred_at(self) -> datetime: ...


@dataclass(slots=True)
class EventMetrics:
    """The event path: lag to the journal, journal and webhook backlogs, webhook outcomes."""

    lag_seconds: Histogram
    webhook_backlog: Gauge
    registry: CollectorRegistry

    @classmethod
    def on(cls, registry: CollectorRegistry) -> EventMetrics:
        """Declare the group on ``registry``."""
        return cls(
            lag_seconds=Histogram(
                f"{PREFIX}_event_lag_seconds",
                "From the moment an event happened to its commit in the journal.",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
                registry=registry,
            ),
            webhook_backlog=Gauge(
                f"{PREFIX}_webhook_backlog",
                "Journal events after a webhook endpoint's cursor, by tenant and endpoint.",
                ["tenant", "endpoint"],
                registry=registry,
            ),
            registry=registry,
        )

    def committed(self, events: Sequence[StampedEvent], now: datetime) -> None:
        """Observe the lag of a committed batch: its oldest event's (one sample per batch)."""
        if events:
            oldest = min(e.occurred_at for e in events)
            self.lag_seconds.observe(max(0.0, (now - oldest).total_seconds()))

    def record_webhook_backlog(self, backlog: Iterable[tuple[str, str, int]]) -> None:
        """Replace the per-endpoint backlog with ``(tenant, endpoint, events)`` rows."""
        self.webhook_backlog.clear()
        for tenant, endpoint, events in backlog:
            self.webhook_backlog.labels(tenant, endpoint).set(events)

    def watch_journal(self, pending: Callable[[], int]) -> None:
        """Read the call writer's backlog (snapshots and their events not yet committed)."""
        self.registry.register(
            _ReadAtScrape(
                lambda: [
                    _gauge(
                        "journal_backlog",
                        "Call snapshots (with their journal events) waiting to be committed.",
                        pending(),
                    )
                ]
            )
        )

    def watch_webhooks(
        self,
        sent: Callable[[], int],
        failed: Callable[[], int],
        in_doubt: Callable[[], int] = lambda: 0,
    ) -> None:
        """Read the dispatcher's delivery counters."""
        self.registry.register(
            _ReadAtScrape(
                lambda: [
                    _counter("webhook_deliveries", "Webhook deliveries that succeeded.", sent()),
                    _counter(
                        "webhook_failures", "Webhook delivery attempts that failed.", failed()
                    ),
                    _counter(
                        "webhook_in_doubt",
                        "Webhook deliveries sent again because an earlier attempt's outcome "
                        "was never recorded (its receiver may see the webhook-id twice).",
                        in_doubt(),
                    ),
                ]
            )
        )

    def watch_ftp(self, sessions: Callable[[], int]) -> None:
        """Read the FTP(S) server's connected sessions."""
        self.registry.register(
            _ReadAtScrape(
                lambda: [_gauge("ftp_sessions", "FTP(S) sessions connected now.", sessions())]
            )
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


@dataclass(slots=True)
class Metrics:
    """Every metric group of one ccbridge process, on one registry."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    held: HeldBacklogMetrics = field(init=False)
    db: DatabaseMetrics = field(init=False)
    http: HttpMetrics = field(init=False)
    ami: AmiMetrics = field(init=False)
    floor: FloorMetrics = field(init=False)
    events: EventMetrics = field(init=False)
    gc: GcMetrics = field(init=False)
    ha: HaMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.held = HeldBacklogMetrics.on(self.registry)
        self.db = DatabaseMetrics.on(self.registry)
        self.http = HttpMetrics.on(self.registry)
        self.ami = AmiMetrics.on(self.registry)
        self.floor = FloorMetrics.on(self.registry)
        self.events = EventMetrics.on(self.registry)
        self.gc = GcMetrics.on(self.registry)
        self.ha = HaMetrics(self.registry)

    def exposition(self) -> bytes:
        """The text format a Prometheus server scrapes."""
        return generate_latest(self.registry)


@dataclass(slots=True)
class GcMetrics:
    """Pauses of the cyclic garbage collector: each one stops the event loop (ADR 0022)."""

    pause_seconds: Histogram
    _by_generation: tuple[Any, ...] = ()

    @classmethod
    def on(cls, registry: CollectorRegistry) -> GcMetrics:
        """Declare the group on ``registry``."""
        pause = Histogram(
            f"{PREFIX}_gc_pause_seconds",
            "How long each cyclic garbage collection stopped the event loop, by generation "
            "(2 = full collection).",
            ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        return cls(pause, tuple(pause.labels(str(g)) for g in range(3)))

    def observe(self, generation: int, seconds: float) -> None:
        """One collection of *generation* took *seconds* (``gc_policy.PauseSink``)."""
        self._by_generation[generation].observe(seconds)
