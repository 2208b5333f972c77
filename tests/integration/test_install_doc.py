"""docs/install.md's bare-metal commands, run as written, give a ccbridge whose /readyz is 200.

The blocks marked ``<!-- install-test: NAME -->`` are taken from the document and run with
bash in a copy of the repository in a temporary folder, in order: ``configure`` (and
``postgresql``), ``database``, ``start`` (left running), then ``first-group`` once /readyz is
200. The reader's inputs (``inputs`` block: where ccbridge keeps its data, the PBX's address
and AMI secret, the API URL) are the test's: a PBX simulator that reads the document's
``queues.conf`` lines (``pbx-queues.conf`` block) the way Asterisk does, so the skill group the
document creates must become a queue the PBX reports.

``setup`` (venv and pip install from the lock) runs only with ``CCBRIDGE_INSTALL_TEST_FULL=1``
(it downloads and installs every dependency); otherwise ``.venv`` is the running interpreter's
environment with the copy's ``src`` first on ``PYTHONPATH``. The API and FastAGI ports are
free ports (``CCBRIDGE_API__PORT``/``CCBRIDGE_AGI__PORT`` in the environment), since 8000 and
4573 may be taken on a test machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.integration.conftest import pg_execute

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "docs" / "install.md"
MARKER = re.compile(r"<!-- install-test: (\S+) -->\n```(\w+)\n(.*?)\n```", re.S)
READY_WITHIN = 60.0


def blocks() -> dict[str, str]:
    """Every marked block of docs/install.md by name."""
    found = {m.group(1): m.group(3) for m in MARKER.finditer(INSTALL.read_text("utf-8"))}
    assert found, "docs/install.md has no install-test blocks"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's tracked files, copied (the document runs in a fresh checkout)."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    dest = tmp_path / "ccbridge"
    for raw in filter(None, files):
        relative = raw.decode()
        source = REPO / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative)
    if os.environ.get("CCBRIDGE_INSTALL_TEST_FULL") != "1":
        (dest / ".venv").symlink_to(Path(sys.prefix))
    return dest


@pytest.fixture
def pbx_etc(tmp_path: Path, checkout: Path) -> tuple[Path, Path]:
    """The PBX's /etc/asterisk as §1.5 sets it up, and ccbridge's data folder."""
    home = tmp_path / "var-lib-ccbridge"
    etc = tmp_path / "etc-asterisk"
    etc.mkdir()
    (etc / "ccbridge").symlink_to(checkout / "asterisk")  # sudo ln -s "$PWD/asterisk" …
    # The reader keeps CCBRIDGE_HOME=/var/lib/ccbridge; the test's home stands in for it.
    queues = blocks()["pbx-queues.conf"].replace("/var/lib/ccbridge", str(home))
    (etc / "queues.conf").write_text(queues + "\n")
    return etc, home


@contextlib.asynccontextmanager
async def pbx(queues_conf: Path, secret: str) -> AsyncIterator[FakeAsterisk]:
    fake = FakeAsterisk(
        users={"ccbridge": secret}, queues=[], agi_url=None, queues_conf=queues_conf
    )
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def bash(script: str, cwd: Path, env: dict[str, str]) -> str:
    """Run one documented block as bash would (errors stop it); return its output."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{script}\n---\n{text[-3000:]}"
    return text


def reader_inputs(block: str, values: dict[str, str]) -> dict[str, str]:
    """The document's inputs, with the test's values; the names must be the same."""
    documented = set(re.findall(r"^([A-Z_]+)=", block, re.M))
    assert documented == set(values), f"inputs block names {sorted(documented)}"
    return values


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def test_the_bare_metal_install_reaches_readyz_200_and_its_first_group_reaches_the_pbx(
    checkout: Path, pbx_etc: tuple[Path, Path], database: str, request: pytest.FixtureRequest
) -> None:
    doc = blocks()
    etc, home = pbx_etc
    secret = secrets.token_hex(16)
    api_port, agi_port = _free_port(), _free_port()
    async with pbx(etc / "queues.conf", secret) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
        env |= reader_inputs(
            doc["inputs"],
            {
                "CCBRIDGE_HOME": str(home),
                "PBX_HOST": "127.0.0.1",
                "AMI_PORT": str(fake.ami_port),
                "AMI_SECRET": secret,
                "API": f"http://127.0.0.1:{api_port}",
            },
        )
        env |= {"CCBRIDGE_API__PORT": str(api_port), "CCBRIDGE_AGI__PORT": str(agi_port)}
        if os.environ.get("CCBRIDGE_INSTALL_TEST_FULL") == "1":
            await bash(doc["setup"], checkout, env)
        else:
            env["PYTHONPATH"] = str(checkout / "src")  # the copy's code, the shared venv
        await bash(doc["configure"], checkout, env)
        if database == "postgresql":
            url: str = request.getfixturevalue("pg_database_url")  # shared by the session
            await pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
            env["DATABASE_URL"] = url
            await bash(doc["postgresql"], checkout, env)
            assert "postgresql+asyncpg://" in (checkout / ".env").read_text()
        await bash(doc["database"], checkout, env)

        log = (checkout / "serve.log").open("wb")
        serve = await asyncio.create_subprocess_exec(
            "bash", "-c", f"exec {doc['start']}", cwd=checkout, env=env, stdout=log, stderr=log
        )
        try:
            ready = await _ready(f"http://127.0.0.1:{api_port}/readyz", serve, checkout)
            assert ready["checks"]["pbx_config"]["ok"] is True
            assert 2026 in ready["checks"]["calendar"]["loaded_years"]
            assert ready["checks"]["database"]["ok"] is True

            out = await bash(doc["first-group"], checkout, env)
            assert '"queue":"t1-sales"' in out  # 201 (curl -f fails on the 502 of a mismatch)
            assert "t1-sales" in fake.model.queues  # the PBX loaded the generated file
            generated = home / "asterisk-generated" / "queues.conf"
            assert "[t1-sales](ccbridge-queue-defaults)" in generated.read_text()
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    code = await serve.wait()
            finally:
                if serve.returncode is None:
                    serve.kill()
                log.close()
        output = (checkout / "serve.log").read_text()
        assert code == 0, output[-3000:]
        assert "Traceback" not in output


async def _ready(url: str, serve: asyncio.subprocess.Process, checkout: Path) -> dict[str, object]:
    """Poll /readyz until 200; fail with the last answer and the log if it never comes."""
    last: object = None
    async with httpx.AsyncClient(timeout=2) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WITHIN
        while loop.time() < deadline:
            assert serve.returncode is None, (checkout / "serve.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                resp = await client.get(url)
                last = resp.json()
                if resp.status_code == 200:
                    body: dict[str, object] = resp.json()
                    return body
            await asyncio.sleep(0.5)
    log = (checkout / "serve.log").read_text()[-3000:]
    raise AssertionError(f"/readyz not 200 within {READY_WITHIN} s: {last}\n{log}")
