"""`ccbridge serve` as a user runs it: a real process on SQLite with the built-in PBX simulator.

The README promises that within 30 s /readyz is 200 and /api/v1/calls shows simulated calls
with agent number, queue, caller and callee. This test holds it to that, then stops the
process with SIGTERM and checks that it exits cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
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


def test_serve_with_simulator_shows_calls_within_30_seconds(tmp_path: Path) -> None:
    api_port, agi_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
    env |= {
        "CCBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ccbridge.db'}",
        "CCBRIDGE_API__PORT": str(api_port),
        "CCBRIDGE_AGI__PORT": str(agi_port),
        "CCBRIDGE_SIMULATOR__CALLS_PER_MINUTE": "60",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MIN": "1",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MAX": "3",
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [*_ccbridge(), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
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
        assert seat["interface"] == "PJSIP/1101"  # the demo tenant owns its demo phones
        _, phones = _get(f"{base}/api/v1/tenants/t1/endpoints", key)
        assert [p["interface"] for p in phones] == ["PJSIP/1101", "PJSIP/1102"]
        _, live = _get(f"{base}/api/v1/seats/live?tenant=t1", key)
        assert [s["agent_no"] for s in live] == ["1101"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    output = (tmp_path / "serve.log").read_text()
    assert code == 0, output[-3000:]
    assert '"ccbridge_stopped"' in output
    assert "Traceback" not in output
    assert '"dev_api_key_created"' in output
    assert key not in output, "the dev key must never be logged"
