"""Push export to a real pyftpdlib server standing in for the tenant's: kill, restart, resume."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.recording_tables import RecordingPolicyRow
from ccbridge.db.repositories.recording_exports import ExportRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.recordings.export import ExportStatus
from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from ccbridge.ftp.push import FtplibTransport
from ccbridge.services.recording_export import ExportFailedError, ExportService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock, make_recording
from tests.support.egress import loopback_egress


class ClientServer:
    """The tenant's own FTP server: writable, slow data channel, logs every STOR outcome."""

    def __init__(self, root: Path, port: int = 0, certfile: Path | None = None) -> None:
        """With *certfile*, explicit FTPS is required on control and data connections."""
        self.root = root
        self.events: list[tuple[str, str]] = []
        auth = DummyAuthorizer()
        auth.add_user("client", "client-pw", str(root), perm="elradfmwMT")
        events = self.events
        base: type[FTPHandler] = FTPHandler
        if certfile is not None:

            class Tls(TLS_FTPHandler):  # type: ignore[misc]
                tls_control_required = True
                tls_data_required = True

            Tls.certfile = str(certfile)
            base = Tls

        class Handler(base):  # type: ignore[misc,valid-type]
            def on_file_received(self, file: str) -> None:
                events.append(("complete", Path(file).name))

            def on_incomplete_file_received(self, file: str) -> None:
                events.append(("incomplete", Path(file).name))

        Handler.authorizer = auth
        self.server = FTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self.server.close_all()

    def kill(self) -> None:
        self._stop.set()
        self._thread.join(5)


async def test_export_killed_mid_transfer_resumes_without_duplicates(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    root = tmp_path / "client"
    root.mkdir()
    server = ClientServer(root)
    port = server.port
    store = RecordingRepository(session_factory, cipher=CIPHER)
    exports = ExportRepository(session_factory)
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SettableClock(datetime(2026, 1, 11, 3, 0, tzinfo=UTC))
    recs = [
        await make_recording(files, "t1", datetime(2026, 1, 10, 9, m, tzinfo=UTC), seconds=4.0)
        for m in range(3)
    ]
    not_in_range = await make_recording(files, "t1", datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
    for rec in [*recs, not_in_range]:
        await store.add(rec, clock.now())
    target = ExportTarget("127.0.0.1", port, "client", "client-pw", tls=False, directory="/in")
    await store.set_policy(RecordingPolicy("t1", export_target=target), clock.now())
    async with session_factory() as session:  # encrypted at rest; the pushes below log in
        raw = await session.scalar(select(RecordingPolicyRow.export_password))
    assert raw is not None
    assert "client-pw" not in raw

    first = ExportService(
        store,
        exports,
        files,
        FtplibTransport(timeout=5, max_bytes_per_second=48_000),
        clock,
        egress=loopback_egress(),
    )
    job = await first.create(
        "t1", datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC)
    )
    assert job.total_files == 3
    run = asyncio.create_task(first.run(job.id))
    # Kill the client's server once the second file is partly there.
    ordered = sorted(recs, key=lambda r: r.path)
    second = root / "in" / ordered[1].path.split("/", 1)[1]
    deadline = time.monotonic() + 20
    while not (second.exists() and 0 < second.stat().st_size < (ordered[1].size_bytes or 0)):
        assert time.monotonic() < deadline, "the transfer never got going"
        await asyncio.sleep(0.01)
    mid = (await first.status(job.id)).sent_bytes
    assert 0 < mid < job.total_bytes
    await asyncio.to_thread(server.kill)
    with pytest.raises(ExportFailedError):  # whatever the dead socket said, logged only
        await run
    failed = await exports.get(job.id)
    assert failed is not None
    assert failed.status is ExportStatus.FAILED
    assert failed.error in {"connect_failed", "protocol_error", "transfer_failed", "timeout"}
    assert failed.sent_files == 1

    # The server comes back on the same port; a new process resumes the stored job.
    killed = server
    server = ClientServer(root, port)
    try:
        restarted = ExportService(
            store,
            exports,
            files,
            FtplibTransport(timeout=5, max_bytes_per_second=48_000),
            clock,
            egress=loopback_egress(),
        )
        assert await restarted.run_pending() == 0  # a failed job is retried explicitly
        done = await restarted.run(job.id)
    finally:
        await asyncio.to_thread(server.kill)
    assert done.status is ExportStatus.DONE
    assert done.sent_files == 3
    assert done.sent_bytes == job.total_bytes
    assert done.report is not None
    assert done.report["resumed"] == [ordered[1].path.split("/", 1)[1]]

    manifest = (root / "in" / "MANIFEST.sha256").read_text().splitlines()
    assert len(manifest) == 3
    for line in manifest:
        digest, name = line.split("  ")
        assert hashlib.sha256((root / "in" / name).read_bytes()).hexdigest() == digest
    for rec in recs:
        remote = root / "in" / rec.path.split("/", 1)[1]
        assert remote.read_bytes() == (files.root / rec.path).read_bytes()
    names = {Path(r.path).name for r in recs}
    events = killed.events + server.events
    completes = [n for kind, n in events if kind == "complete" and n in names]
    assert sorted(completes) == sorted(names)  # every file completed exactly once
    assert [n for kind, n in events if kind == "incomplete"] == [Path(ordered[1].path).name]
    assert not (root / "in" / not_in_range.path.split("/", 1)[1]).exists()
