"""Command line: ``ccbridge serve | migrate | check-config | health | keys create``."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ccbridge import __version__
from ccbridge.settings import Mode, Settings

app = typer.Typer(
    name="ccbridge",
    help="A hosted, multi-tenant call centre on a stock Asterisk PBX.",
    no_args_is_help=True,
    add_completion=False,
)


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            typer.echo(f"config error: CCBRIDGE_{field.upper()}: {err['msg']}", err=True)
        raise typer.Exit(2) from None


def _checked_generated_dir(settings: Settings) -> None:
    """Exit 2 when the PBX config folder is unusable; make it absolute (dev: create it)."""
    from ccbridge.asterisk.config.generated_dir import GeneratedDirError, check_generated_dir

    try:
        settings.asterisk_generated_dir = check_generated_dir(
            settings.asterisk_generated_dir,
            require_absolute=settings.mode is Mode.PROD,
            create=settings.mode is Mode.DEV,
        )
    except GeneratedDirError as exc:
        typer.echo(f"refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None


def _refuse_unsafe_production(settings: Settings) -> None:
    """Exit 2 with every reason when prod mode would start with development secrets."""
    problems = settings.check_production_secrets() + settings.check_high_availability()
    if problems:
        for p in problems:
            typer.echo(f"refusing to start: {p}", err=True)
        raise typer.Exit(2)


@app.command()
def serve(
    simulate_pbx: Annotated[
        bool | None,
        typer.Option(
            "--simulate-pbx/--no-simulate-pbx",
            help="Run the built-in fake Asterisk (default: when CCBRIDGE_AMI__HOST is unset).",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
) -> None:
    """Run the service: HTTP API, AMI client, FastAGI server and jobs in one process."""
    settings = _load_settings()
    if simulate_pbx is not None:
        settings.simulate_pbx = simulate_pbx
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    _refuse_unsafe_production(settings)
    _checked_generated_dir(settings)
    from ccbridge.bootstrap import StartRefusedError, run_service  # lazy: keeps --help fast
    from ccbridge.event_loop import run

    try:
        run(run_service(settings), settings.api.event_loop)
    except StartRefusedError as exc:
        typer.echo(f"refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="HTTP bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
) -> None:
    """Run an API-only process (PostgreSQL): event polls and streams, calls; no AMI/FastAGI.

    Run any number beside the one `ccbridge serve` (the PBX owner) and route
    `/api/v1/events` to them; they learn of new events by LISTEN/NOTIFY.
    """
    settings = _load_settings()
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    _refuse_unsafe_production(settings)
    from ccbridge.bootstrap import run_api  # lazy: keeps `--help` fast
    from ccbridge.event_loop import run

    try:
        run(run_api(settings), settings.api.event_loop)
    except ValueError as exc:
        typer.echo(f"refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic ``upgrade head``)."""
    from ccbridge.db.migrate import run_migrations

    settings = _load_settings()
    run_migrations(settings.database_url)
    typer.echo("database is at the latest revision")


@app.command("check-config")
def check_config() -> None:
    """Print the effective configuration with secrets masked."""
    settings = _load_settings()
    typer.echo(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
    for p in settings.check_production_secrets():
        typer.echo(f"warning: {p}", err=True)


@app.command()
def health(
    url: Annotated[str | None, typer.Option(help="Readiness URL to probe.")] = None,
) -> None:
    """Exit 0 when ``/readyz`` answers 200 (for Docker HEALTHCHECK)."""
    settings = _load_settings()
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host  # noqa: S104
    target = url or f"http://{host}:{settings.api.port}/readyz"
    try:
        with urllib.request.urlopen(target, timeout=3) as resp:  # noqa: S310 (local probe)
            typer.echo(resp.read().decode())
    except urllib.error.HTTPError as exc:
        typer.echo(exc.read().decode(), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"not reachable: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (committed as docs/api/openapi.json)."""
    from ccbridge.api.app import openapi_document  # lazy: keeps `--help` fast

    typer.echo(json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True))


def _recordings_app() -> typer.Typer:
    from ccbridge.recordings_cli import recordings_app

    return recordings_app


app.add_typer(_recordings_app(), name="recordings")


def _calls_app() -> typer.Typer:
    from ccbridge.calls_cli import calls_app

    return calls_app


app.add_typer(_calls_app(), name="calls")


def _pbx_app() -> typer.Typer:
    from ccbridge.pbx_cli import pbx_app

    return pbx_app


app.add_typer(_pbx_app(), name="pbx")


def _reports_app() -> typer.Typer:
    from ccbridge.reports_cli import reports_app

    return reports_app


app.add_typer(_reports_app(), name="reports")


@app.command("event-schemas")
def event_schemas(
    out: Annotated[str, typer.Option(help="Directory to write <type>.json into.")] = (
        "docs/events/schemas"
    ),
) -> None:
    """Write the JSON Schema of every event type (committed in docs/events/schemas)."""
    from pathlib import Path

    from ccbridge.api.schemas.events import all_schemas  # lazy: keeps `--help` fast

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in all_schemas().items():
        text = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        (target / f"{name}.json").write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(all_schemas())} schemas to {target}")


keys_app = typer.Typer(help="API keys (for ops: bootstrap without the dev key file).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str, typer.Option(help="platform_admin | tenant_admin | supervisor | agent | crm")
    ],
    name: Annotated[str, typer.Option(help="What the key is for (shown in listings).")],
    tenant: Annotated[
        str | None, typer.Option(help="The tenant id (required unless platform_admin).")
    ] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored; audited as ``cli``)."""
    from ccbridge.domain.access import Role

    try:
        key_role = Role(role)
    except ValueError:
        typer.echo(f"unknown role {role!r}", err=True)
        raise typer.Exit(2) from None
    if (key_role is Role.PLATFORM_ADMIN) != (tenant is None):
        typer.echo("--tenant is required for every role except platform_admin", err=True)
        raise typer.Exit(2)
    if any(c in name for c in "\r\n\x00") or not 1 <= len(name) <= 200:
        typer.echo("--name must be 1-200 characters without CR, LF or NUL", err=True)
        raise typer.Exit(2)
    settings = _load_settings()
    plaintext = asyncio.run(_create_key(settings, key_role, tenant, name))
    typer.echo(plaintext)


async def _create_key(settings: Settings, role: object, tenant: str | None, name: str) -> str:
    from ccbridge.bootstrap import build_access_service  # lazy: keeps `--help` fast
    from ccbridge.db.engine import create_engine
    from ccbridge.domain.access import Role
    from ccbridge.errors import CcbridgeError

    assert isinstance(role, Role)
    engine = create_engine(settings.database_url, null_pool=True)
    try:
        access = build_access_service(settings, engine)
        _key, plaintext = await access.create_system_key(
            role=role, tenant_id=tenant, name=name, actor="cli"
        )
    except CcbridgeError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        await engine.dispose()
    return plaintext


ivr_app = typer.Typer(help="IVR flows offline: validate, simulate, print the JSON Schema.")
app.add_typer(ivr_app, name="ivr")


@ivr_app.command("validate")
def ivr_validate(
    file: Annotated[Path, typer.Argument(help="A flow document (.json, .yaml or .yml).")],
    prompts: Annotated[
        str | None, typer.Option(help="Comma-separated prompt ids that exist (checks them).")
    ] = None,
) -> None:
    """Exit 0 when the flow has no fault; otherwise print each fault with its JSON path, exit 1.

    Offline there is no tenant: skill groups and transfer rights are left to the API's validate
    and to publishing (the output's ``unchecked`` says so).
    """
    from ccbridge.ivr_cli import validate_file  # lazy: keeps `--help` fast

    known = {p for p in prompts.split(",") if p} if prompts is not None else None
    code, out = validate_file(file, known)
    typer.echo(out, err=code != 0)
    raise typer.Exit(code)


@ivr_app.command("simulate")
def ivr_simulate(
    file: Annotated[Path, typer.Argument(help="A flow document (.json, .yaml or .yml).")],
    digits: Annotated[str, typer.Option(help="Keys per prompt, e.g. 1,2# (empty = timeout).")] = "",
    at: Annotated[
        str | None, typer.Option(help="Call time, ISO 8601 with offset (default: now).")
    ] = None,
    caller: Annotated[str, typer.Option(help="The caller's number.")] = "",
    did: Annotated[str, typer.Option(help="The dialled number.")] = "",
    tier: Annotated[str, typer.Option(help="The caller's tier (for conditions).")] = "",
) -> None:
    """Run the flow with the given keys, time and caller; print the path and actions as JSON."""
    from ccbridge.ivr_cli import simulate_file  # lazy: keeps `--help` fast

    code, out = simulate_file(file, digits, at, caller, did, tier)
    typer.echo(out, err=code != 0)
    raise typer.Exit(code)


@ivr_app.command("schema")
def ivr_schema() -> None:
    """Print the flow document's JSON Schema (committed as ivr_flows/schema.json)."""
    from ccbridge.ivr_format.parse import schema_text  # lazy: keeps `--help` fast

    typer.echo(schema_text(), nl=False)


settings_app = typer.Typer(help="The settings model: what can be configured.")
app.add_typer(settings_app, name="settings")


@settings_app.command("env-example")
def settings_env_example() -> None:
    """Print every setting with its default and description (the committed .env.example)."""
    from ccbridge.env_example import render_env_example

    typer.echo(render_env_example(), nl=False)


calendar_app = typer.Typer(help="The platform's working-day calendar (holidays, 调休).")
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("import")
def calendar_import(
    file: Annotated[
        Path,
        typer.Argument(help="{year, holidays: [...], makeup_workdays: [...]} as .json or .yaml"),
    ],
) -> None:
    """Store one year of holidays and make-up working days (replaces it; audited as ``cli``).

    Exit 0 when stored, 1 listing every faulty date, 2 when the file cannot be read.
    docs/calendars/ holds the State Council arrangements.
    """
    settings = _load_settings()
    code, out = asyncio.run(_import_calendar(settings, file))
    typer.echo(out, err=code != 0)
    raise typer.Exit(code)


async def _import_calendar(settings: Settings, file: Path) -> tuple[int, str]:
    from ccbridge.bootstrap import build_calendar_service  # lazy: keeps `--help` fast
    from ccbridge.calendar_cli import import_file
    from ccbridge.db.engine import create_engine

    engine = create_engine(settings.database_url, null_pool=True)
    try:
        return await import_file(build_calendar_service(engine), file)
    finally:
        await engine.dispose()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point for ``python -m ccbridge``."""
    app(prog_name="ccbridge")


if __name__ == "__main__":  # pragma: no cover
    main()
