"""Settings from ``CCBRIDGE_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ccbridge.domain.egress import parse_networks
from ccbridge.domain.endpoints import CONTEXT_RE, DEFAULT_AGENTS_CONTEXT
from ccbridge.domain.ha.forwarding import is_api_address
from ccbridge.domain.ha.placement import DEFAULT_PBX_ID, PBX_ID_MAX_LENGTH, PBX_ID_PATTERN


class Mode(StrEnum):
    """Run mode: ``dev`` migrates on start and allows default secrets; ``prod`` does not."""

    DEV = "dev"
    PROD = "prod"


class AmiSettings(BaseModel):
    """How to reach Asterisk's AMI; with no host, the built-in PBX simulator is used."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str | None = None
    """The PBX's AMI address; empty runs the built-in PBX simulator instead."""
    port: int = Field(5038, ge=1, le=65535)
    """The PBX's AMI port (``port`` in manager.conf)."""
    username: str = "ccbridge"
    """The user in asterisk/manager.d/ccbridge.conf."""
    secret: SecretStr = SecretStr("ccbridge-dev-secret")
    """That user's secret (prod refuses the default)."""
    auth: str = Field("md5", pattern="^(md5|plain)$")
    """``md5`` (challenge/response) or ``plain``."""
    ping_interval: float = Field(5.0, gt=0)
    """Seconds between heartbeat pings."""
    max_missed_pongs: int = Field(2, ge=1, le=100)
    """Pings unanswered in a row that drop a (half-open) link; it is detected at most
    ``ping_interval * (max_missed_pongs + 1)`` after its last pong: 15 s by default."""
    action_timeout: float = Field(10.0, gt=0)
    """Seconds an action may wait for its response."""

    @field_validator("host", mode="before")
    @classmethod
    def _empty_host_is_none(cls, value: object) -> object:
        return None if value == "" else value


class AgiSettings(BaseModel):
    """Where the FastAGI server listens and who may connect (FastAGI has no auth of its own)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Bind to the address the PBX reaches, never a public one."""
    port: int = Field(4573, ge=0, le=65535)
    """The port in the dialplan's ``AGI(agi://<ccbridge>:<port>/inbound)``."""
    allowed_peers: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """The PBX's addresses (JSON list of IPs or CIDRs); other peers are closed unread."""
    max_sessions: int = Field(500, ge=1)
    """Concurrent FastAGI calls; more are refused."""


class IvrSettings(BaseModel):
    """Where uploaded prompts live (for ccbridge, and as Asterisk sees them) and CRM lookups."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    prompts_dir: Path = Path("./prompts")
    """Where ccbridge stores converted prompts (docs/ivr.md#prompts)."""
    asterisk_prompts_dir: str | None = None
    """The same directory as the PBX sees it (default: ``prompts_dir`` resolved)."""
    prompt_max_input_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Largest prompt upload accepted (413 above it, before the body is read in full)."""
    prompt_max_duration_seconds: int = Field(600, ge=1)
    """Longest decoded prompt audio (422 above it; probed before converting)."""
    prompt_max_output_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    """Largest converted WAV; sox is stopped and the partial file deleted at this size."""
    prompt_quota_bytes: int = Field(200 * 1024 * 1024, ge=0)
    """Per-tenant storage for converted prompts (413 when an upload would exceed it)."""
    prompt_quota_overrides: dict[str, int] = Field(default_factory=dict)
    """Per-tenant quotas set by the platform operator: ``{"t1": 524288000}``."""
    crm_allowed_hosts: list[str] = Field(default_factory=list)
    """Deprecated: use ``egress_allow_networks`` or the tenant's allow-list. IP/CIDR entries
    still open that network for CRM lookups; host names are ignored (with a warning), since
    a name says nothing about the address it resolves to at connect time."""


class ApiSettings(BaseModel):
    """HTTP API listener."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Bind address (``0.0.0.0`` in a container)."""
    port: int = Field(8000, ge=0, le=65535)
    """Port of the API, ``/healthz`` and ``/readyz``."""
    shutdown_grace_seconds: int = Field(10, ge=0, le=300)
    """On SIGTERM, how long open responses may take to finish before they are cancelled
    (event streams end at once); the final flush runs after. Keep it below the container's
    stop grace period (``stop_grace_period: 30s`` in docker/compose.yaml)."""
    keep_alive_seconds: int = Field(75, ge=1, le=3600)
    """How long an idle HTTP/1.1 connection stays open for the client's next request: CRMs
    that poll every few seconds reuse one connection instead of opening one per poll
    (uvicorn's default is 5 s; 75 s is nginx's)."""
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    """Event loop of ``ccbridge serve`` and ``ccbridge api``: ``auto`` = uvloop when it is
    installed (it is with ``uvicorn[standard]``), else the standard asyncio loop (ADR 0022)."""


DEV_JWT_SECRET = "ccbridge-dev-jwt-secret-change-me"  # noqa: S105 (refused in prod)


class AuthSettings(BaseModel):
    """API keys and short-lived person tokens (JWT HS256)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    """Signs person tokens; prod refuses the default (32+ characters, ``openssl rand -hex 32``)."""
    token_ttl_seconds: int = Field(3600, ge=60, le=86400)
    """Lifetime of a person token."""
    key_cache_seconds: float = Field(30.0, ge=0, le=300)
    """How long a good API key is trusted without a database look-up (0 = every request).
    A revocation in this process applies at once; in other processes after at most this."""
    dev_key_file: str = "./.ccbridge-dev-key"
    """Dev mode writes a platform-admin key here (0600) when none exists."""


class RouteSettings(BaseModel):
    """Where inbound calls to one DID go: the tenant and its skill-group queue."""

    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    queue: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")


class SimulatorSettings(BaseModel):
    """The built-in fake Asterisk used when no AMI host is configured."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    calls_per_minute: float = Field(12.0, ge=0)
    """Simulated inbound calls per minute (0: none)."""
    talk_seconds_min: float = Field(5.0, ge=0)
    """Shortest simulated conversation."""
    talk_seconds_max: float = Field(20.0, ge=0)
    """Longest simulated conversation."""
    abandon_ratio: float = Field(0.1, ge=0, le=1)
    """Share of simulated callers who hang up while waiting."""
    seed: int | None = None
    """Fixes the simulated traffic (for repeatable demos)."""


DEV_LINK_SECRET = "ccbridge-dev-recording-link-secret"  # noqa: S105 (refused in prod)
DEV_REPORT_KEY = "ccbridge-dev-purge-report-signing-key"
DEV_SECRETS_KEY = "ccbridge-dev-secrets-key-change-me"


class RecordingSettings(BaseModel):
    """Where recordings live, how links are signed, and the tenant-facing FTP(S) service."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    dir: Path = Path("./recordings")
    """Recordings root; MixMonitor must be able to write ``<dir>/<tenant>/…`` (same path)."""
    link_secret: SecretStr = SecretStr(DEV_LINK_SECRET)
    """HMAC key of signed download links (32+ characters in prod)."""
    report_signing_key: SecretStr = SecretStr(DEV_REPORT_KEY)
    """Ed25519 private key of purge reports: a PEM private key, or a secret string (32+
    characters) it is derived from. Clients verify with the public key only."""
    purge_interval_seconds: float = Field(3600.0, gt=0)
    """How often recordings past their retention are deleted."""
    ftp_enabled: bool = False
    """Serve the tenants' read-only FTP(S) (one root per tenant)."""
    ftp_host: str = "127.0.0.1"
    """Bind address of the FTP(S) service."""
    ftp_port: int = Field(2121, ge=0, le=65535)
    """Control port of the FTP(S) service."""
    ftp_passive_ports: str | None = Field(None, pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    """``30000-30009``: publish the same range in docker."""
    ftp_masquerade_address: str | None = None
    """The address FTP clients reach (the docker host's), sent in PASV replies."""
    ftp_certfile: str | None = None
    """PEM certificate (and key, unless ``ftp_keyfile``) that turns on FTPS."""
    ftp_keyfile: str | None = None
    """PEM private key, when not inside ``ftp_certfile``."""
    ftp_tls_required: bool = False
    """Refuse clients that do not switch to TLS."""
    export_max_bytes_per_second: int | None = Field(None, ge=1024)
    """Bandwidth cap of pushes to tenants' FTP servers (none by default)."""


class HoldSettings(BaseModel):
    """How much ccbridge holds in memory while the database is away (docs/ops.md, "Failure
    modes"); a warning is logged at 80 % of each bound."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    calls: int = Field(100_000, ge=100)
    """Distinct calls whose latest snapshot (with its journal events) waits to be written;
    past it, snapshots of other calls are dropped and counted."""
    seats: int = Field(10_000, ge=100)
    """Agent call starts/ends waiting to be applied to seats; past it they are dropped (the
    reconciler restores seat state from the PBX)."""
    recordings: int = Field(10_000, ge=100)
    """Answered calls waiting for their automatic recording to start; past it they are not
    recorded."""


class PbxRecordSettings(BaseModel):
    """The PBX's durable records that close AMI gaps (ADR 0013, docs/asterisk.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    queue_log_path: Path | None = None
    """Asterisk's queue log as ccbridge sees it (a shared volume on the PBX host, e.g.
    ``/var/log/asterisk/queue_log``). ``None``: no backfill, only the live resync. The built-in
    simulator writes its own under ``./pbx-records`` when this is unset."""
    backfill: bool = True
    """Read the records after every AMI login; off, ``ccbridge calls audit`` still reads them."""
    lookback_seconds: float = Field(7200.0, gt=0)
    """How far before the cursor each backfill rereads, so a call that began before it
    (longest call expected) is read whole."""


class FloorSettings(BaseModel):
    """The platform's floor rules (every tenant's defaults; a tenant admin overrides them over
    ``PUT /api/v1/tenants/{id}/floor-rules``) and how often they are judged (docs/wallboard.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    evaluate_seconds: float = Field(1.0, ge=0.2, le=60.0)
    """How often every tenant's floor is judged; an alert appears at most this late."""
    not_ready_too_long_seconds: int = Field(900, ge=1, le=86_400)
    """示忙 longer than this alerts the supervisor (SEAT-07: 15 min)."""
    break_too_long_seconds: int = Field(600, ge=1, le=86_400)
    """小休 longer than this alerts the supervisor (SEAT-08: 10 min)."""
    too_many_on_break: int = Field(3, ge=0, le=10_000)
    """More agents of a tenant on break at once than this alerts (SEAT-08: 3)."""
    break_count_exceeded: int = Field(3, ge=0, le=10_000)
    """More breaks by one agent in a day than this alerts (SEAT-08: 3)."""
    calls_waiting_over: int = Field(5, ge=0, le=10_000)
    """More calls waiting in one skill group's queue than this alerts."""
    service_level_target_pct: int = Field(80, ge=0, le=100)
    """Today's service level of a skill group under this alerts; also the wallboard's target."""
    amber_band_pct: int = Field(10, ge=0, le=100)
    """Points under the target the wallboard's light stays amber before it turns red."""
    service_level_min_offered: int = Field(10, ge=0, le=100_000)
    """The service-level alert judges a skill group once this many calls were offered today."""


class SlaSettings(BaseModel):
    """When ccbridge's own health opens an automatic stability incident (BILL-07, docs/api.md
    "SLA"): a component unhealthy for longer than its threshold; closed when it recovers."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    sample_seconds: float = Field(5.0, gt=0)
    """How often the AMI link, FastAGI, the HTTP error rate and the journal lag are sampled."""
    window_seconds: float = Field(60.0, gt=0)
    """The window the rates (5xx share, mean lag, FastAGI refusals) are computed over."""
    ami_down_seconds: float = Field(30.0, ge=0)
    """The AMI link down this long is an incident (the issue's "AMI down > 30 s")."""
    fastagi_refusing_seconds: float = Field(30.0, ge=0)
    """FastAGI not listening, or refusing sessions for lack of capacity, this long."""
    http_5xx_ratio: float = Field(0.05, gt=0, le=1)
    """Share of 5xx answers over the window above which the API counts as failing."""
    http_5xx_min_requests: int = Field(20, ge=1)
    """Fewer answers than this in the window are not judged (an idle API's lone failure)."""
    http_5xx_seconds: float = Field(60.0, ge=0)
    """The 5xx share over the limit this long is an incident."""
    event_lag_max_seconds: float = Field(30.0, gt=0)
    """Mean time from an event to its journal commit above which the journal lags."""
    event_lag_seconds: float = Field(60.0, ge=0)
    """The journal lagging (or stuck with events waiting) this long is an incident."""


class ReportSettings(BaseModel):
    """Report tallies and scheduled report generation (ADR 0019, docs/reports.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    tally_interval_seconds: float = Field(60.0, gt=0)
    """How often the 15-minute tallies are brought up to date with the calls and state
    intervals written since the last pass (reports stay exact in between, only slower)."""
    archive_interval_seconds: float = Field(300.0, gt=0)
    """How often due scheduled reports (the day, week and month just completed in each
    tenant's zone) are generated and archived; each period's report is generated once."""


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (names, not a bind)
"""API bind addresses that name no host another node could dial."""


class HaSettings(BaseModel):
    """Several ``ccbridge serve`` nodes on one PostgreSQL, one of them owning the PBX at a time
    (docs/ha.md, ADR 0026). Off: the single-node default, on SQLite or PostgreSQL."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    enabled: bool = False
    """Run as one of several nodes: AMI, reconciliation, webhooks and jobs only while this node
    holds the PBX's lease; FastAGI and the API on every node. PostgreSQL only."""
    node_id: str = Field("", max_length=128, pattern=r"^[A-Za-z0-9_.:-]*$")
    """This node's name in the lease, unique per node (empty: the host name)."""
    pbx_id: str = Field(
        DEFAULT_PBX_ID, min_length=1, max_length=PBX_ID_MAX_LENGTH, pattern=PBX_ID_PATTERN
    )
    """The PBX this node serves (its lease row); nodes of one PBX share it."""
    lease_ttl_seconds: float = Field(5.0, ge=1.0, le=120.0)
    """A lease not renewed for this long (database clock) may be taken over: with the renew
    interval, the bound on a takeover after the owner dies or loses the database."""
    renew_interval_seconds: float = Field(1.0, ge=0.1, le=60.0)
    """How often the owner renews its lease and a standby tries to take it."""
    fence_margin_seconds: float = Field(1.0, ge=0.1, le=30.0)
    """The owner stops acting this long before its lease could expire (clock-rate safety)."""
    advertise_url: str = Field("", max_length=512)
    """This node's API address as the other nodes reach it (``http://ccbridge-b:8000``):
    standbys forward call control, seat commands and the live wallboard to the owner there
    (ADR 0031). Empty: ``http://<api host>:<api port>``, the host name when the API binds to
    every address."""
    forward_timeout_seconds: float = Field(15.0, ge=1.0, le=120.0)
    """How long a standby waits for the owner's answer to a forwarded request (then 504)."""

    def node_name(self) -> str:
        """The configured node id, else the host name."""
        return self.node_id or socket.gethostname()[:128] or "ccbridge"

    def api_address(self, api: ApiSettings) -> str:
        """Where the other nodes reach this node's API (``advertise_url`` or derived)."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = api.host if api.host not in WILDCARD_HOSTS else socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{api.port}"

    @field_validator("advertise_url")
    @classmethod
    def _an_api_address(cls, value: str) -> str:
        if value and not is_api_address(value):
            msg = "advertise_url must be http(s)://host[:port] (no path, query or credentials)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _renewals_fit(self) -> HaSettings:
        if self.renew_interval_seconds > (self.lease_ttl_seconds - self.fence_margin_seconds) / 2:
            msg = (
                "renew_interval_seconds must be at most half of lease_ttl_seconds minus "
                "fence_margin_seconds, so one lost renewal does not end the term"
            )
            raise ValueError(msg)
        return self


class Settings(BaseSettings):
    """Every knob of ccbridge; nested values use ``__`` (``CCBRIDGE_AMI__HOST``)."""

    model_config = SettingsConfigDict(
        env_prefix="CCBRIDGE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    mode: Mode = Mode.DEV
    """``dev`` migrates on start and allows default secrets; ``prod`` refuses them and the
    simulator."""
    database_url: str = "sqlite+aiosqlite:///./ccbridge.db"
    """SQLite by default; PostgreSQL: ``postgresql+asyncpg://user:password@host:5432/db``."""
    log_format: str = Field("json", pattern="^(json|console)$")
    """``json`` (one object per line) or ``console``."""
    log_level: str = "INFO"
    """``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``."""
    gc_young_threshold: int = Field(5_000, ge=100, le=1_000_000)
    """Net new objects between the garbage collector's young collections in ``ccbridge
    serve``/``api`` (CPython's default is 700). Larger means rarer full collections but longer
    young ones; ``ccbridge_gc_pause_seconds`` shows both (ADR 0022)."""
    simulate_pbx: bool | None = None
    """Run the fake PBX in-process (``true``/``false``); unset: when no AMI host is set."""
    ami: AmiSettings = Field(default_factory=AmiSettings)
    agi: AgiSettings = Field(default_factory=AgiSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)
    pbx_records: PbxRecordSettings = Field(default_factory=PbxRecordSettings)
    secrets_key: SecretStr = SecretStr(DEV_SECRETS_KEY)
    """Encrypts secrets stored in the database (export passwords; AES-256-GCM, derived key)."""
    secrets_old_keys: list[SecretStr] = Field(default_factory=list)
    """Earlier ``secrets_key`` values (JSON list), still accepted for decryption during a
    rotation; on start ccbridge re-encrypts every stored secret under the new key, after which
    the old one can be dropped."""
    routes: dict[str, RouteSettings] = Field(default_factory=dict)
    """Seed numbers for the simulator only (``--simulate-pbx``): DID → tenant and queue,
    ``CCBRIDGE_ROUTES='{"4008001234": {"tenant": "t1", "queue": "t1-sales"}}'``, assigned at
    start when no tenant holds the number. Otherwise ignored (logged): numbers are assigned
    over the API (docs/routing.md)."""
    fallback_route: RouteSettings | None = None
    """Where a call to a number no tenant holds goes: ``{"tenant": "t1", "queue": "t1-support"}``
    (none: hang up)."""
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    holds: HoldSettings = Field(default_factory=HoldSettings)
    """Bounds of what is held in memory while the database is unavailable."""
    reports: ReportSettings = Field(default_factory=ReportSettings)
    """Report tallies and scheduled, archived report generation."""
    sla: SlaSettings = Field(default_factory=SlaSettings)
    """When ccbridge's own health opens an automatic stability incident."""
    floor: FloorSettings = Field(default_factory=FloorSettings)
    """Floor rules (alerts) and the wallboard's service-level target."""
    ha: HaSettings = Field(default_factory=HaSettings)
    """Active/standby nodes on PostgreSQL (off: one node)."""
    egress_allow_networks: list[str] = Field(default_factory=list, max_length=20)
    """Private networks (CIDR) every tenant's webhooks, exports and CRM lookups may reach;
    per-tenant networks are set by a platform admin (``allow_private``). Default: none."""
    asterisk_generated_dir: Path = Path("./asterisk/generated")
    """Where ccbridge writes the queues it owns; the PBX #includes ``queues.conf`` from here.
    Absolute in prod (checked at start: exists, writable); dev resolves and creates it."""
    agents_context: str = Field(DEFAULT_AGENTS_CONTEXT, pattern=CONTEXT_RE.pattern)
    """The dialplan context that rings an agent's softphone: the only context a
    ``Local/<exten>@<context>`` endpoint may use (``[ccbridge-agents]`` in asterisk/)."""

    @field_validator("egress_allow_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @field_validator("routes")
    @classmethod
    def _dids_are_numbers(cls, value: dict[str, RouteSettings]) -> dict[str, RouteSettings]:
        bad = [did for did in value if not did.lstrip("+").isdigit() or len(did) > 32]
        if bad:
            msg = f"route keys must be dialled numbers (DIDs), got {bad[:3]}"
            raise ValueError(msg)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            msg = "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
            raise ValueError(msg)
        return value

    @property
    def use_simulator(self) -> bool:
        """Say whether to start the in-process fake PBX."""
        return self.simulate_pbx if self.simulate_pbx is not None else self.ami.host is None

    def check_production_secrets(self) -> list[str]:
        """List problems that forbid starting in ``prod`` mode (default secrets, simulator)."""
        problems: list[str] = []
        if self.mode is Mode.PROD:
            if self.ami.secret.get_secret_value() == "ccbridge-dev-secret":
                problems.append("CCBRIDGE_AMI__SECRET still has the development default")
            jwt_secret = self.auth.jwt_secret.get_secret_value()
            if jwt_secret == DEV_JWT_SECRET or len(jwt_secret) < 32:
                problems.append(
                    "CCBRIDGE_AUTH__JWT_SECRET must be set (32+ characters) in prod mode"
                )
            link = self.recordings.link_secret.get_secret_value()
            if link == DEV_LINK_SECRET or len(link) < 32:
                problems.append(
                    "CCBRIDGE_RECORDINGS__LINK_SECRET must be set (32+ characters) in prod mode"
                )
            report = self.recordings.report_signing_key.get_secret_value()
            if report == DEV_REPORT_KEY or len(report) < 32:
                problems.append(
                    "CCBRIDGE_RECORDINGS__REPORT_SIGNING_KEY must be set (32+ characters or an "
                    "Ed25519 PEM private key) in prod mode"
                )
            box = self.secrets_key.get_secret_value()
            if box == DEV_SECRETS_KEY or len(box) < 32:
                problems.append("CCBRIDGE_SECRETS_KEY must be set (32+ characters) in prod mode")
            if self.use_simulator:
                problems.append("the PBX simulator cannot run in prod mode; set CCBRIDGE_AMI__HOST")
        return problems

    def check_high_availability(self) -> list[str]:
        """List problems that forbid starting as one of several nodes."""
        if not self.ha.enabled:
            return []
        problems: list[str] = []
        if not self.database_url.startswith("postgresql+asyncpg://"):
            problems.append(
                "CCBRIDGE_HA__ENABLED needs PostgreSQL: SQLite is one file on one host, so "
                "several nodes cannot share it (unset CCBRIDGE_HA__ENABLED for one node)"
            )
        if self.use_simulator:
            problems.append(
                "CCBRIDGE_HA__ENABLED needs a real PBX (CCBRIDGE_AMI__HOST): each node would "
                "start its own simulator"
            )
        return problems

    def masked(self) -> dict[str, Any]:
        """Return the effective settings with secrets and URL passwords masked."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url(self.database_url)
        data["use_simulator"] = self.use_simulator
        return data


def _mask_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host``."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}"
