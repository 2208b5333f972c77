"""The /metrics endpoint serves the process's own registry in Prometheus text format."""

from __future__ import annotations

from typing import cast

from fastapi.testclient import TestClient

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.observability.health import Readiness
from ccbridge.observability.metrics import Metrics
from ccbridge.services.ports import CallStore
from ccbridge.services.tenants import AccessService


def _client(metrics: Metrics) -> TestClient:
    app = create_app(
        call_store=cast(CallStore, None),
        readiness=Readiness(),
        access=cast(AccessService, None),
        jwt=cast(JwtCodec, None),
        metrics=metrics,
    )
    return TestClient(app)


def test_metrics_endpoint_exposes_the_registry_it_was_given() -> None:
    metrics = Metrics()
    metrics.held.held.labels(kind="calls").set(7)
    metrics.db.up.set(0)

    response = _client(metrics).get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'ccbridge_held_writes{kind="calls"} 7.0' in response.text
    assert "ccbridge_db_up 0.0" in response.text


def test_two_registries_do_not_share_samples() -> None:
    first, second = Metrics(), Metrics()
    first.db.up.set(1)

    assert "ccbridge_db_up 1.0" in first.exposition().decode()
    assert "ccbridge_db_up 1.0" not in second.exposition().decode()
