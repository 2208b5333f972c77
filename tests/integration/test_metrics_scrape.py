"""`/metrics` of a real `ccbridge serve` (SQLite, built-in PBX simulator): each metric moves
when its cause happens. Polls are hang guards (generous deadlines), not timing assertions."""

from __future__ import annotations

import ftplib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve_simulator import _ccbridge, _free_port

pytestmark = pytest.mark.slow

DEADLINE_S = 45.0


@dataclass
class Serve:
    base: str
    key: str
    ftp_port: int
    log: Path

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = (
            json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        )
        headers = {"Authorization": f"Bearer {self.key}", "content-type": "application/json"}
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def scrape(self) -> dict[str, float]:
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as resp:
            assert resp.headers["content-type"].startswith("text/plain")
            text = resp.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def until(self, what: str, check: Callable[[dict[str, float]], bool]) -> dict[str, float]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            samples = self.scrape()
            if check(samples):
                return samples
            assert time.monotonic() < deadline, f"{what}: not seen; {self.log.read_text()[-2000:]}"
            time.sleep(0.3)


def _sum(samples: dict[str, float], pattern: str) -> float:
    rx = re.compile(pattern)
    return sum(v for k, v in samples.items() if rx.fullmatch(k))


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    tmp = tmp_path_factory.mktemp("serve")
    api_port, agi_port, ftp_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
    env |= {
        "CCBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'ccbridge.db'}",
        "CCBRIDGE_API__PORT": str(api_port),
        "CCBRIDGE_AGI__PORT": str(agi_port),
        "CCBRIDGE_SIMULATOR__CALLS_PER_MINUTE": "120",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MIN": "2",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MAX": "4",
        "CCBRIDGE_RECORDINGS__FTP_ENABLED": "true",
        "CCBRIDGE_RECORDINGS__FTP_PORT": str(ftp_port),
    }
    log = tmp / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*_ccbridge(), "serve"], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"not ready: {log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.3)
        key = (tmp / ".ccbridge-dev-key").read_text().strip()
        yield Serve(base, key, ftp_port, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_ami_link_and_actions(serve: Serve) -> None:
    before = serve.scrape()
    assert before["ccbridge_ami_connected"] == 1
    assert before["ccbridge_ami_logged_in"] == 1
    assert "ccbridge_ami_reconnects_total" in before
    queue_adds = r'ccbridge_ami_action_seconds_count\{action="QueueAdd",outcome="ok"\}'

    status, _ = serve.request("POST", "/api/v1/tenants/t1/seats/1102/sign-in")
    assert status == 200

    after = serve.until("QueueAdd timed", lambda s: _sum(s, queue_adds) > _sum(before, queue_adds))
    assert after["ccbridge_ami_events_received_total"] > 0


def test_agents_by_state_per_skill_group(serve: Serve) -> None:
    agents = r'ccbridge_agents\{skill_group="(?P<g>[^"]+)",state="not_ready",tenant="t1"\}'
    status, _ = serve.request("POST", "/api/v1/tenants/t1/seats/1101/sign-in")
    assert status in (200, 409)
    status, body = serve.request(
        "POST", "/api/v1/tenants/t1/seats/1101/state", {"action": "not_ready", "reason": "培训"}
    )
    assert status == 200, body

    serve.until("agent 1101 counted as not ready", lambda s: _sum(s, agents) >= 1)


def test_calls_waiting_and_event_lag(serve: Serve) -> None:
    waiting = r"ccbridge_queue_calls_waiting\{.*\}"
    longest = r"ccbridge_queue_longest_wait_seconds\{.*\}"
    samples = serve.until("a call waiting in a queue", lambda s: _sum(s, waiting) >= 1)
    assert _sum(samples, longest) >= 0
    serve.until("event lag sampled", lambda s: s.get("ccbridge_event_lag_seconds_count", 0) > 0)
    assert "ccbridge_journal_backlog" in samples


def test_http_requests_are_counted_by_route(serve: Serve) -> None:
    route = r'ccbridge_http_requests_total\{method="GET",route="/api/v1/calls",status="2xx"\}'
    before = _sum(serve.scrape(), route)
    serve.request("GET", "/api/v1/calls?limit=1")
    assert _sum(serve.scrape(), route) == before + 1


def test_ftp_sessions(serve: Serve) -> None:
    assert serve.scrape()["ccbridge_ftp_sessions"] == 0
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", serve.ftp_port, timeout=5)
    try:
        serve.until("an FTP session", lambda s: s["ccbridge_ftp_sessions"] == 1)
    finally:
        ftp.close()
    serve.until("the FTP session gone", lambda s: s["ccbridge_ftp_sessions"] == 0)


def test_webhook_backlog_and_failures(serve: Serve) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    status, body = serve.request(
        "PUT", "/api/v1/events/settings?tenant=t1", {"allow_private": ["127.0.0.0/8"]}
    )
    assert status == 200, body
    status, body = serve.request(
        "POST",
        "/api/v1/webhooks?tenant=t1",
        {"url": f"http://127.0.0.1:{dead_port}/hook", "event_types": [], "from_start": True},
    )
    assert status == 201, body

    samples = serve.until(
        "a failed delivery and a backlog",
        lambda s: (
            s.get("ccbridge_webhook_failures_total", 0) >= 1
            and _sum(s, r"ccbridge_webhook_backlog\{.*\}") >= 1
        ),
    )
    assert "ccbridge_webhook_deliveries_total" in samples
