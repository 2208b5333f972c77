"""`ccbridge serve` as a user runs it: a real process on SQLite with the built-in PBX simulator.

The README promises that within 30 s /readyz is 200 and /api/v1/calls shows simulated calls
with agent number, queue, caller and callee. This test holds it to that, then stops the
process with SIGTERM and checks that it exits cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=2
        ) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _ccbridge() -> list[str]:
    exe = shutil.which("ccbridge", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "ccbridge"]


def _serve(tmp_path: Path, api_port: int, agi_port: int) -> subprocess.Popen[bytes]:
    """`ccbridge serve` on SQLite with the simulator, in *tmp_path*, logging to serve.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
    env |= {
        "CCBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ccbridge.db'}",
        "CCBRIDGE_API__PORT": str(api_port),
        "CCBRIDGE_AGI__PORT": str(agi_port),
        "CCBRIDGE_SIMULATOR__CALLS_PER_MINUTE": "60",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MIN": "1",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MAX": "3",
    }
    with (tmp_path / "serve.log").open("w") as log:
        return subprocess.Popen(
            [*_ccbridge(), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def test_serve_with_simulator_shows_calls_within_30_seconds(tmp_path: Path) -> None:
    api_port, agi_port = _free_port(), _free_port()
    proc = _serve(tmp_path, api_port, agi_port)
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 30
        ready = answered = None
        key = ""
        while time.monotonic() < deadline and answered is None:
            time.sleep(0.5)
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                status, body = _get(f"{base}/readyz")
            except OSError:
                continue
            if status == 200:
                ready = body
                key_file = tmp_path / ".ccbridge-dev-key"
                assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
                key = key_file.read_text().strip()
                status, problem = _get(f"{base}/api/v1/calls")
                assert status == 401, problem
                _, page = _get(f"{base}/api/v1/calls?limit=100", key)
                answered = next((c for c in page["items"] if c["agent_no"]), None)
        assert ready is not None, "not ready within 30 s"
        assert ready["checks"]["ami"]["synced"] is True
        assert ready["checks"]["fastagi"]["port"] == agi_port
        assert answered is not None, "no answered call within 30 s"
        assert answered["tenant"] in {"t1", "t2"}
        assert answered["skill_group"] in {"t1-sales", "t1-support", "t2-service"}
        assert answered["caller"].isdigit()
        assert answered["callee"] in {"4008001234", "4008001235", "4008005678"}
        # The demo tenant's agent signs in over HTTP and joins its queue on the simulator.
        status, seat = _post(f"{base}/api/v1/tenants/t1/seats/1101/sign-in", key)
        assert status == 200, seat
        assert (seat["state"], seat["pbx_synced"]) == ("ready", True)
        # The demo tenant owns its demo phones, dialled through the shipped agents context.
        assert seat["interface"] == "Local/1101@ccbridge-agents"
        _, phones = _get(f"{base}/api/v1/tenants/t1/endpoints", key)
        assert [p["interface"] for p in phones] == [
            "Local/1101@ccbridge-agents",
            "Local/1102@ccbridge-agents",
        ]
        _, live = _get(f"{base}/api/v1/seats/live?tenant=t1", key)
        assert [s["agent_no"] for s in live] == ["1101"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    output = (tmp_path / "serve.log").read_text()
    assert code == 0, output[-3000:]
    assert '"ccbridge_stopped"' in output
    assert "Traceback" not in output
    assert '"dev_api_key_created"' in output
    assert key not in output, "the dev key must never be logged"


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Until /readyz answers 200 (a hang guard of 60 s, not a performance bound)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(OSError):
            if _get(f"{base}/readyz")[0] == 200:
                return
        time.sleep(0.3)
    raise AssertionError("not ready: " + log.read_text()[-3000:])


def _open_stream(
    port: int, key: str, path: bytes = b"/api/v1/events/stream?tenant=t1"
) -> socket.socket:
    """An SSE client that has read the stream's first bytes (so the response is open)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n\r\n"
    )
    head = b""
    while b": connected" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def _read_to_eof(sock: socket.socket) -> bytes:
    """Whatever the server still sends until it closes the stream (30 s hang guard)."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            got += chunk
    return got


def test_sigterm_with_sse_clients_ends_the_streams_and_flushes(tmp_path: Path) -> None:
    api_port, agi_port = _free_port(), _free_port()
    proc = _serve(tmp_path, api_port, agi_port)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{api_port}"
    try:
        _wait_ready(proc, base, log)
        key = (tmp_path / ".ccbridge-dev-key").read_text().strip()
        streams = [_open_stream(api_port, key) for _ in range(3)]
        streams.append(_open_stream(api_port, key, b"/api/v1/tenants/t1/wallboard/stream"))
        _, page = _get(f"{base}/api/v1/calls?limit=100", key)
        proc.send_signal(signal.SIGTERM)
        # A hang guard only: without the fix the process never exits (the streams hold it).
        code = proc.wait(timeout=60)
        for sock in streams:
            _read_to_eof(sock)  # the server ended the stream: EOF, not a timeout
            sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "timeout graceful shutdown exceeded" not in output  # the streams ended themselves
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events.index("http_stopping") < events.index("final_flush_done")
    assert events.index("final_flush_done") < events.index("ccbridge_stopped")
    flushed = next(line for line in lines if line["event"] == "final_flush_done")
    assert flushed["pending"] == 0
    with sqlite3.connect(tmp_path / "ccbridge.db") as db:
        (stored,) = db.execute("SELECT count(*) FROM calls").fetchone()
    assert stored >= len(page["items"])
    assert "Traceback" not in output


def _send(method: str, url: str, key: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_break_alert_reaches_the_wallboard_and_the_journal(tmp_path: Path) -> None:
    """What the web wallboard relies on: a tenant's own threshold, the alert on the board,
    in ``/seats/alerts`` and as a ``floor.alert`` event, from the real process."""
    api_port, agi_port = _free_port(), _free_port()
    proc = _serve(tmp_path, api_port, agi_port)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{api_port}"
    try:
        _wait_ready(proc, base, log)
        key = (tmp_path / ".ccbridge-dev-key").read_text().strip()
        assert _post(f"{base}/api/v1/tenants/t1/seats/1101/sign-in", key)[0] == 200
        rule = {"enabled": True, "threshold": 1, "severity": "warning"}
        status, rules = _send(
            "PUT", f"{base}/api/v1/tenants/t1/floor-rules", key, {"rules": {"break_too_long": rule}}
        )
        assert status == 200, rules
        status, seat = _send(
            "POST", f"{base}/api/v1/tenants/t1/seats/1101/state", key, {"action": "break"}
        )
        assert status == 200, seat
        deadline = time.monotonic() + 30  # a hang guard; the rules are judged every second
        alerts: list[Any] = []
        while time.monotonic() < deadline and not alerts:
            time.sleep(0.3)
            _, listed = _get(f"{base}/api/v1/tenants/t1/seats/alerts", key)
            alerts = [a for a in listed if a["rule"] == "break_too_long"]
        assert alerts, log.read_text()[-3000:]
        assert (alerts[0]["agent_no"], alerts[0]["cleared_at"]) == ("1101", None)
        _, board = _get(f"{base}/api/v1/tenants/t1/wallboard", key)
        assert alerts[0]["id"] in [a["id"] for a in board["alerts"]]
        assert {g["name"] for g in board["skill_groups"]} >= {"sales"}
        assert [(s["agent_no"], s["state"]) for s in board["seats"]] == [("1101", "break")]
        _, events = _get(f"{base}/api/v1/tenants/t1/events?limit=1000", key)
        raised = [e for e in events["items"] if e["type"] == "floor.alert"]
        assert alerts[0]["id"] in [e["data"]["id"] for e in raised]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in log.read_text()
