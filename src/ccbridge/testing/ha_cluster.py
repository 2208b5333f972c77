"""Several real ``ccbridge serve`` processes against one fake PBX and one PostgreSQL: the HA
drills (tests/ha/) and the takeover bench (bench/ha_takeover.py) start, kill and watch them.

Each node is a subprocess with ``CCBRIDGE_HA__ENABLED`` and its own AMI user, so the fake
PBX's action log says which node sent what. A node's database URL may point at a cut proxy
(a partition of that node from PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

NODE_SECRET = "secret"  # noqa: S105 (the fake PBX's test users)
STARTUP_GUARD = 120.0


def free_port() -> int:
    """A loopback port free right now (the node binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class LeaseKnobs:
    """The lease timing the nodes run with (``CCBRIDGE_HA__*``; defaults: the shipped ones)."""

    ttl: float = 5.0
    renew: float = 1.0
    margin: float = 1.0


@dataclass
class NodeSpec:
    """What one node is told: its name, its database URL (perhaps through a proxy), where
    the PBX's queue log is, and its working folder."""

    name: str
    database_url: str
    ami_port: int
    workdir: Path
    queue_log: Path | None = None
    lease: LeaseKnobs = field(default_factory=LeaseKnobs)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, api_port: int) -> dict[str, str]:
        """The node's environment: the parent's, less any CCBRIDGE_* setting, plus ours."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("CCBRIDGE_")}
        src = str(Path(__file__).resolve().parents[2])
        base["PYTHONPATH"] = os.pathsep.join(p for p in (src, base.get("PYTHONPATH")) if p)
        wd = self.workdir
        ours = {
            "CCBRIDGE_MODE": "dev",
            "CCBRIDGE_DATABASE_URL": self.database_url,
            "CCBRIDGE_SIMULATE_PBX": "false",
            "CCBRIDGE_AMI__HOST": "127.0.0.1",
            "CCBRIDGE_AMI__PORT": str(self.ami_port),
            "CCBRIDGE_AMI__USERNAME": self.name,
            "CCBRIDGE_AMI__SECRET": NODE_SECRET,
            "CCBRIDGE_AMI__PING_INTERVAL": "1.0",
            "CCBRIDGE_AGI__PORT": "0",
            "CCBRIDGE_API__HOST": "127.0.0.1",
            "CCBRIDGE_API__PORT": str(api_port),
            "CCBRIDGE_API__EVENT_LOOP": "asyncio",
            "CCBRIDGE_AUTH__DEV_KEY_FILE": str(wd / "dev-key"),
            "CCBRIDGE_ASTERISK_GENERATED_DIR": str(wd / "generated"),
            "CCBRIDGE_RECORDINGS__DIR": str(wd / "recordings"),
            "CCBRIDGE_IVR__PROMPTS_DIR": str(wd / "prompts"),
            "CCBRIDGE_LOG_FORMAT": "json",
            "CCBRIDGE_HA__ENABLED": "true",
            "CCBRIDGE_HA__NODE_ID": self.name,
            "CCBRIDGE_HA__LEASE_TTL_SECONDS": str(self.lease.ttl),
            "CCBRIDGE_HA__RENEW_INTERVAL_SECONDS": str(self.lease.renew),
            "CCBRIDGE_HA__FENCE_MARGIN_SECONDS": str(self.lease.margin),
        }
        if self.queue_log is not None:
            ours["CCBRIDGE_PBX_RECORDS__QUEUE_LOG_PATH"] = str(self.queue_log)
        return {**base, **ours, **self.extra_env}


@dataclass
class Node:
    """One running ``ccbridge serve`` process and how to reach its API."""

    spec: NodeSpec
    api_port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def name(self) -> str:
        """The node id (also its AMI user)."""
        return self.spec.name

    @property
    def base_url(self) -> str:
        """The node's HTTP API."""
        return f"http://127.0.0.1:{self.api_port}"

    async def readiness(self) -> dict[str, Any] | None:
        """``/readyz``'s checks (whatever the status), or ``None`` if the node does not answer."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                resp = await http.get(f"{self.base_url}/readyz")
        except httpx.HTTPError:
            return None
        try:
            body: dict[str, Any] = resp.json()
        except json.JSONDecodeError:
            return None
        checks: dict[str, Any] = body.get("checks", {})
        return checks

    async def owns_and_synced(self) -> bool:
        """This node holds the PBX and its AMI session is logged in and resynced."""
        checks = await self.readiness()
        if checks is None:
            return False
        ownership = checks.get("pbx_ownership", {})
        ami = checks.get("ami", {})
        return ownership.get("role") == "owner" and bool(ami.get("synced"))

    async def role(self) -> str | None:
        """``owner``, ``standby``, or ``None`` when the node does not answer."""
        checks = await self.readiness()
        if checks is None:
            return None
        role = checks.get("pbx_ownership", {}).get("role")
        return str(role) if role is not None else None

    def kill(self) -> None:
        """SIGKILL: no release, no final flush, sockets reset by the kernel."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after the guard)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.kill()
                await self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the node's log (for failure messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def start_node(spec: NodeSpec) -> Node:
    """Start ``ccbridge serve`` for ``spec`` and return once its API answers."""
    spec.workdir.mkdir(parents=True, exist_ok=True)
    api_port = free_port()
    log_path = spec.workdir / "node.log"
    with log_path.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ccbridge",
            "serve",
            cwd=spec.workdir,
            env=spec.env(api_port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    node = Node(spec, api_port, process, log_path)
    try:
        async with asyncio.timeout(STARTUP_GUARD):
            while await node.readiness() is None:
                if process.returncode is not None:
                    raise RuntimeError(f"node {spec.name} exited:\n{node.log_tail()}")
                await asyncio.sleep(0.1)
    except TimeoutError:
        node.kill()
        raise RuntimeError(f"node {spec.name} never answered:\n{node.log_tail()}") from None
    return node


async def wait_for(probe: Any, what: str, guard: float = STARTUP_GUARD) -> float:
    """Poll the async ``probe`` every 50 ms until it is true; return the monotonic time it
    first was (the guard only stops a hang)."""
    try:
        async with asyncio.timeout(guard):
            while not await probe():  # noqa: ASYNC110 (the state is in other processes)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
    return time.monotonic()


async def the_owner(nodes: list[Node]) -> Node:
    """The one node that owns the PBX and is synced (waits for one)."""
    found: list[Node] = []

    async def one_owner() -> bool:
        found.clear()
        for node in nodes:
            if node.process.returncode is None and await node.owns_and_synced():
                found.append(node)
        return len(found) == 1

    await wait_for(one_owner, "one synced owner among " + ", ".join(n.name for n in nodes))
    return found[0]
