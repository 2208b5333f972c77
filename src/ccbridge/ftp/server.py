"""The tenant-facing FTP(S) server: pyftpdlib in its own thread, DB-backed read-only logins.

Each tenant account is confined to ``<root>/<tenant>`` with permission ``elr`` (change
directory, list, retrieve). Logins, failed logins, downloads and refused paths are audited
through :class:`~ccbridge.ftp.bridge.LoopBridge`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pyftpdlib.authorizers import AuthenticationFailed
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.model import FtpAccount, check_tenant
from ccbridge.domain.recordings.passwords import verify_password
from ccbridge.domain.recordings.throttle import LoginThrottle
from ccbridge.ftp.bridge import LoopBridge
from ccbridge.ftp.confinement import refused_reason

log = structlog.get_logger(__name__)

READ_ONLY = "elr"


@dataclass(frozen=True, slots=True)
class FtpServerConfig:
    """Where the FTP service listens and how it talks to clients behind NAT or docker."""

    root: Path
    host: str = "0.0.0.0"  # noqa: S104 (a server for tenants' own machines)
    port: int = 2121
    passive_ports: tuple[int, int] | None = None
    masquerade_address: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    tls_control_required: bool = False
    """Refuse USER/PASS before AUTH TLS for every account (per account: ``tls_required``)."""
    max_login_attempts: int = 3
    auth_failed_delay: float = 3.0
    """Seconds before a failed login is answered (slows password guessing per connection)."""
    throttle_failures: int = 5
    throttle_window: float = 300.0
    throttle_lockout: float = 300.0
    banner: str = "ccbridge recordings"


class TenantAuthorizer:
    """pyftpdlib authorizer over ccbridge's FTP accounts (read-only, home = tenant root)."""

    def __init__(self, config: FtpServerConfig, bridge: LoopBridge) -> None:
        self._root = config.root.resolve()
        self._bridge = bridge
        self._accounts: dict[str, FtpAccount] = {}
        self._lock = threading.Lock()
        self.throttle = LoginThrottle(
            time.monotonic,
            max_failures=config.throttle_failures,
            window=config.throttle_window,
            lockout=config.throttle_lockout,
        )

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """Check the password (scrypt), the lockout and the account's TLS requirement."""
        peer = f"ip:{handler.remote_ip}"
        with self._lock:
            locked = self.throttle.locked(f"user:{username}", peer)
        if locked:
            raise AuthenticationFailed("Too many failed logins; try again later.")
        account = self._bridge.account(username) if username else None
        good = (
            account is not None
            and account.disabled_at is None
            and verify_password(password, account.password_hash)
        )
        if not good or account is None:
            with self._lock:
                self.throttle.failed(f"user:{username}", peer)
            raise AuthenticationFailed("Authentication failed.")
        if account.tls_required and not getattr(handler, "_ssl_established", False):
            raise AuthenticationFailed("This account requires AUTH TLS first.")
        with self._lock:
            self.throttle.succeeded(f"user:{username}")
            self._accounts[username] = account
        handler.ccb_account = account

    def get_home_dir(self, username: str) -> str:
        """``<root>/<tenant>``, created on first login."""
        with self._lock:
            account = self._accounts[username]
        home = self._root / check_tenant(account.tenant)
        home.mkdir(parents=True, exist_ok=True)
        return str(home)

    def has_user(self, username: str) -> bool:
        """Only users that logged in through :meth:`validate_authentication` exist here."""
        with self._lock:
            return username in self._accounts

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:  # noqa: ARG002
        """Read-only: ``elr`` and nothing else (the path is confined by the filesystem)."""
        return perm in READ_ONLY

    def get_perms(self, username: str) -> str:  # noqa: ARG002
        """The permission letters of every account."""
        return READ_ONLY

    def get_msg_login(self, username: str) -> str:  # noqa: ARG002
        """The 230 text."""
        return "Logged in; recordings are read-only."

    def get_msg_quit(self, username: str) -> str:  # noqa: ARG002
        """The 221 text."""
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        """No OS users: the service's own uid reads the files."""

    def terminate_impersonation(self, username: str) -> None:
        """Nothing to undo."""


class _AuditingMixin:
    """Hooks that turn FTP events into audit entries (mixed into pyftpdlib's handler)."""

    ccb_bridge: LoopBridge
    ccb_account: FtpAccount | None = None
    remote_ip: str
    username: str
    authenticated: bool
    proto_cmds: dict[str, dict[str, Any]]
    fs: Any

    def _ccb_audit(self, action: str, object_id: str, **detail: Any) -> None:
        account = self.ccb_account
        self.ccb_bridge.audit(
            AuditEntry(
                at=datetime.now(UTC),
                tenant_id=account.tenant if account else None,
                actor=f"ftp:{account.username if account else self.username or '-'}",
                action=action,
                object_type="ftp",
                object_id=object_id[:200],
                detail={"peer": self.remote_ip, **detail},
            )
        )

    def on_login(self, username: str) -> None:
        """Audit a successful login."""
        self._ccb_audit("ftp.login", username, tls=bool(getattr(self, "_ssl_established", False)))

    def on_login_failed(self, username: str, password: str) -> None:  # noqa: ARG002
        """Audit a failed login (never the password)."""
        self._ccb_audit("ftp.login_failed", username or "-")

    def on_file_sent(self, file: str) -> None:
        """Audit a completed download."""
        self._ccb_audit("recording.ftp_download", self.fs.fs2ftp(file), bytes=os.path.getsize(file))

    def on_incomplete_file_sent(self, file: str) -> None:
        """Audit an interrupted download too (the client got part of the file)."""
        self._ccb_audit("recording.ftp_download_incomplete", self.fs.fs2ftp(file))

    def _ccb_refuse(self, cmd: str, arg: str, reason: str) -> None:
        self.respond(f"550 {arg!r}: path refused.")  # type: ignore[attr-defined]
        self._ccb_audit("ftp.path_refused", f"{cmd} {arg}", command=cmd, reason=reason)

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        """Refuse traversal attempts and symlinks out of the root with 550, audited."""
        spec = self.proto_cmds.get(cmd)
        if self.authenticated and spec is not None and spec.get("perm") and arg:
            reason = refused_reason(arg)
            if reason is None and not self.fs.validpath(self.fs.ftp2fs(arg)):
                reason = "outside_root"
            if reason is not None:
                self._ccb_refuse(cmd, arg, reason)
                return
        super().pre_process_command(line, cmd, arg)  # type: ignore[misc]

    def ftp_RETR(self, file: str) -> Any:
        """Refuse (and audit) a RETR of anything that is not a regular file in the root."""
        if not os.path.isfile(file) or not self.fs.validpath(file):
            self._ccb_refuse("RETR", self.fs.fs2ftp(file), "not_a_file")
            return None
        return super().ftp_RETR(file)  # type: ignore[misc]


class _FtpHandler(_AuditingMixin, FTPHandler):  # type: ignore[misc]
    """Plain FTP (explicit FTPS disabled: no certificate configured)."""


class _FtpsHandler(_AuditingMixin, TLS_FTPHandler):  # type: ignore[misc]
    """Explicit FTPS: ``AUTH TLS`` upgrades the control channel, ``PROT P`` the data channel."""


class FtpService:
    """Runs the FTP server in a daemon thread; :meth:`start` returns once it listens."""

    def __init__(self, config: FtpServerConfig, bridge: LoopBridge) -> None:
        self.config = config
        self.bridge = bridge
        self.authorizer = TenantAuthorizer(config, bridge)
        self._server: ThreadedFTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _handler_class(self) -> type[FTPHandler]:
        cfg = self.config
        attrs: dict[str, Any] = {
            "authorizer": self.authorizer,
            "ccb_bridge": self.bridge,
            "banner": cfg.banner,
            "max_login_attempts": cfg.max_login_attempts,
            "auth_failed_timeout": cfg.auth_failed_delay,
            "passive_ports": range(cfg.passive_ports[0], cfg.passive_ports[1] + 1)
            if cfg.passive_ports
            else None,
            "masquerade_address": cfg.masquerade_address,
            "permit_foreign_addresses": False,
            "use_sendfile": True,
        }
        if cfg.certfile:
            attrs.update(
                certfile=cfg.certfile,
                keyfile=cfg.keyfile or cfg.certfile,
                tls_control_required=cfg.tls_control_required,
                tls_data_required=cfg.tls_control_required,
                ssl_context=None,
            )
            return type("CcbFtpsHandler", (_FtpsHandler,), attrs)
        return type("CcbFtpHandler", (_FtpHandler,), attrs)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("the FTP service is not running")
        return int(self._server.address[1])

    def sessions(self) -> int:
        """Connected FTP(S) sessions now (the FTP sessions metric)."""
        server = self._server
        return len(server.ip_map) if server is not None else 0

    def start(self) -> None:
        """Bind and start serving in a thread."""
        self.config.root.mkdir(parents=True, exist_ok=True)
        self._server = ThreadedFTPServer(
            (self.config.host, self.config.port), self._handler_class()
        )
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="ftp-server", daemon=True)
        self._thread.start()
        log.info("ftp_server_started", port=self.port, tls=bool(self.config.certfile))

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not self._stop.is_set():
                server.serve_forever(timeout=0.2, blocking=False, handle_exit=False)
                time.sleep(0.01)
        finally:
            server.close_all()

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None
        self._server = None
