"""FakeAsterisk: one object wiring the PBX model, the AMI server and the call simulator.

What ``ccbridge serve --simulate-pbx`` and tests start instead of a real Asterisk 22.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from ccbridge.testing.call_generator import CallSimulator, DidRoute, SimulatorConfig
from ccbridge.testing.fake_ami import FakeAmiServer
from ccbridge.testing.pbx_model import MemberSpec, PbxModel, QueueSpec
from ccbridge.testing.pbx_records import PbxRecordFiles
from ccbridge.testing.queue_config_reader import read_queue_specs

log = structlog.get_logger(__name__)


class ScaledClock:
    """PBX time that runs ``1/time_scale`` times faster than the wall clock.

    With ``time_scale=0.001`` a 60 s call takes 60 ms, and its HoldTime, TalkTime and
    Timestamps still say 60 s.
    """

    def __init__(self, time_scale: float, start: float | None = None) -> None:
        self.scale = max(time_scale, 1e-9)
        self.start = time.time() if start is None else start
        self._mono = time.monotonic()

    def __call__(self) -> float:
        """Current PBX epoch seconds."""
        return self.start + (time.monotonic() - self._mono) / self.scale


def demo_queues() -> list[QueueSpec]:
    """Two tenants, three queues, six agents signed in statically (queues.conf ``member =>``)."""
    return [
        QueueSpec(
            "t1-sales",
            "rrmemory",
            [
                MemberSpec("Local/2001@agents", "1001 张伟"),
                MemberSpec("Local/2002@agents", "1002 李娜"),
            ],
        ),
        QueueSpec(
            "t1-support",
            "ringall",
            [
                MemberSpec("Local/2003@agents", "1003 王磊"),
                MemberSpec("Local/2004@agents", "1004 刘敏"),
            ],
        ),
        QueueSpec(
            "t2-service",
            "rrmemory",
            [
                MemberSpec("Local/2101@agents", "2001 陈晨"),
                MemberSpec("Local/2102@agents", "2002 杨洋"),
            ],
        ),
    ]


def demo_dids() -> dict[str, DidRoute]:
    """The demo's dialled numbers and the tenant/queue each one reaches."""
    return {
        "4008001234": DidRoute("t1", "t1-sales"),
        "4008001235": DidRoute("t1", "t1-support"),
        "4008005678": DidRoute("t2", "t2-service"),
    }


SHIPPED_CHANNELVARS = (
    "CCB_TENANT",
    "CCB_DID",
    "CCB_QUEUE",
    "CCB_STICKY_AGENT",
    "CCB_STICKY_INTERFACE",
    "CCB_STICKY_QUEUE",
    "CCB_STICKY_FILE",
    "MIXMONITOR_FILENAME",
)
"""``channelvars`` of asterisk/manager.d/ccbridge.conf: a real PBX set up as documented sends
them with every channel event, so a call first seen in a resync still names its tenant."""


class FakeAsterisk:
    """A stand-alone fake Asterisk 22: AMI on TCP, FastAGI calls out, simulated traffic."""

    def __init__(
        self,
        ami_host: str = "127.0.0.1",
        ami_port: int = 0,
        users: dict[str, str] | None = None,
        agi_url: str | None = "agi://127.0.0.1:4573",
        queues: list[QueueSpec] | None = None,
        dids: dict[str, DidRoute] | None = None,
        seed: int | None = None,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
        config: SimulatorConfig | None = None,
        auth_fail_delay: float = 1.0,
        write_timeout: float = 0.1,
        queues_conf: Path | None = None,
        channelvars: Sequence[str] = SHIPPED_CHANNELVARS,
        records_dir: Path | None = None,
        system_name: str = "",
    ) -> None:
        """``queues`` are built in (the admin's own); ``queues_conf`` is the file this PBX
        reads at start and on ``QueueReload`` (includes resolved from its folder);
        ``records_dir`` is where it writes ``queue_log`` and ``cdr-csv/Master.csv``;
        ``system_name`` is asterisk.conf's ``systemname`` (the prefix of every call id)."""
        if clock is None:
            clock = time.time if time_scale == 1.0 else ScaledClock(time_scale)
        self.queues_conf = queues_conf
        read = (lambda: read_queue_specs(queues_conf)) if queues_conf is not None else None
        self.model = PbxModel(
            clock,
            demo_queues() if queues is None else queues,
            read,
            channelvars=channelvars,
            system_name=system_name,
        )
        self.ami = FakeAmiServer(
            self.model,
            host=ami_host,
            port=ami_port,
            users=users or {"ccbridge": "secret"},
            clock=clock,
            time_scale=time_scale,
            auth_fail_delay=auth_fail_delay,
            write_timeout=write_timeout,
            seed=seed,
        )
        if records_dir is not None:
            self.ami.records = PbxRecordFiles(records_dir)
        cfg = config or SimulatorConfig()
        cfg.agi_url = agi_url if config is None else cfg.agi_url
        cfg.time_scale = time_scale
        if not cfg.dids:
            cfg.dids = dids if dids is not None else demo_dids()
        self.simulator = CallSimulator(self.ami, cfg, seed=seed)

    @property
    def ami_port(self) -> int:
        """The bound AMI port."""
        return self.ami.port

    async def start(self) -> None:
        """Start the AMI listener."""
        await self.ami.start()
        log.info("fake_pbx.started", ami_port=self.ami_port, queues=list(self.model.queues))

    async def stop(self) -> None:
        """Stop traffic, calls and the AMI listener."""
        await self.simulator.stop()
        await self.ami.stop()

    async def __aenter__(self) -> FakeAsterisk:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop on exit."""
        await self.stop()
