"""The browser tier: a real `ccbridge serve` (SQLite, built-in PBX simulator) and Node scripts
that drive Debian's Chromium through playwright-core (never a downloaded browser; ADR 0023)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REQUIRE_BROWSER_ENV = "CCBRIDGE_REQUIRE_BROWSER"
CHROMIUM = os.environ.get("CCB_CHROMIUM", "/usr/bin/chromium")
DOC_SHOTS = HERE.parent.parent / "docs" / "screenshots"
UPDATE_SHOTS_ENV = "CCB_UPDATE_SCREENSHOTS"
"""Set to 1 to write the screenshots into docs/screenshots/; by default they go with each
test's artifacts, so a test run leaves the checkout as it was."""


@dataclass(frozen=True, slots=True)
class Console:
    """The running service a scenario drives."""

    base: str
    admin_key: str
    log: Path


def _missing(reason: str) -> None:
    """Skip, or fail when CI demands the browser tier (CCBRIDGE_REQUIRE_BROWSER=1)."""
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV}=1 demands it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """Node with this folder's packages installed (`npm ci` on first use; no browser download)."""
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        _missing("node/npm are not installed (apt-get install nodejs npm): browser tests not run")
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing (apt-get install chromium): browser tests not run")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        env = os.environ | {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            _missing(f"npm ci failed in tests/browser: {done.stderr[-500:]}")
    return str(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code


def _ccbridge() -> list[str]:
    exe = shutil.which("ccbridge", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "ccbridge"]


@pytest.fixture(scope="session")
def console(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`ccbridge serve` as the README runs it, with calls long enough to hold and transfer."""
    workdir = tmp_path_factory.mktemp("console")
    api_port, agi_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
    env |= {
        "CCBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'ccbridge.db'}",
        "CCBRIDGE_API__PORT": str(api_port),
        "CCBRIDGE_AGI__PORT": str(agi_port),
        "CCBRIDGE_SIMULATOR__CALLS_PER_MINUTE": "20",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MIN": "40",
        "CCBRIDGE_SIMULATOR__TALK_SECONDS_MAX": "60",
        "CCBRIDGE_SIMULATOR__ABANDON_RATIO": "0",
        "CCBRIDGE_SIMULATOR__SEED": "19",
    }
    log = workdir / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*_ccbridge(), "serve"], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 90  # a hang guard, not a speed bound
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError):
                if _status(f"{base}/readyz") == 200:
                    break
            assert time.monotonic() < deadline, "not ready: " + log.read_text()[-3000:]
            time.sleep(0.3)
        key = (workdir / ".ccbridge-dev-key").read_text().strip()
        yield Console(base=base, admin_key=key, log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_scenario(node: str, console: Console, name: str, tmp_path: Path) -> str:
    """Run scenarios/<name>.mjs against *console*; fail with its output and the log's tail."""
    env = os.environ | {
        "CCB_BASE_URL": console.base,
        "CCB_ADMIN_KEY": console.admin_key,
        "CCB_CHROMIUM": CHROMIUM,
        "CCB_ARTIFACTS": str(tmp_path),
        "CCB_SCREENSHOTS": str(
            DOC_SHOTS if os.environ.get(UPDATE_SHOTS_ENV) == "1" else tmp_path / "screenshots"
        ),
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CCB_HAVE_SOX": "1" if shutil.which("sox") else "0",
    }
    done = subprocess.run(
        [node, str(HERE / "scenarios" / f"{name}.mjs")],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard
        check=False,
    )
    if done.returncode != 0:
        tail = console.log.read_text()[-4000:]
        pytest.fail(
            f"scenario {name} failed (artifacts in {tmp_path}):\n{done.stdout}\n{done.stderr}"
            f"\n--- serve.log tail ---\n{tail}",
            pytrace=False,
        )
    return done.stdout


def api_status(console: Console, path: str) -> int:
    """The HTTP status of a GET with the admin key (to decide a skip)."""
    request = urllib.request.Request(
        console.base + path, headers={"Authorization": f"Bearer {console.admin_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            json.loads(resp.read() or b"null")
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
