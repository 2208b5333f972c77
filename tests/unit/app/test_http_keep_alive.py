"""A CRM polling every few seconds keeps its HTTP/1.1 connection (ADR 0022)."""

from __future__ import annotations

from fastapi import FastAPI

from ccbridge.bootstrap import _http_server
from ccbridge.services.event_hub import EventHub
from ccbridge.settings import Settings


def test_idle_connections_stay_open_as_configured() -> None:
    default = _http_server(FastAPI(), Settings(), EventHub())
    assert default.config.timeout_keep_alive == 75
    settings = Settings()
    settings.api.keep_alive_seconds = 20
    assert _http_server(FastAPI(), settings, EventHub()).config.timeout_keep_alive == 20
