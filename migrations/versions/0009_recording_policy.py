"""Recording policy: encrypted export password, CA to trust, local export time; off-boardings.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Existing plain-text export passwords are encrypted with ``CCBRIDGE_SECRETS_KEY`` (AES-GCM,
``ccbridge.crypto.secret_box``); ``export_hour_utc`` becomes ``export_time`` (``HH:MM``) in the
tenant's own time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

from ccbridge.crypto.secret_box import SecretBox
from ccbridge.settings import Settings

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _box() -> SecretBox:
    settings = Settings()
    return SecretBox(
        settings.secrets_key.get_secret_value(),
        [k.get_secret_value() for k in settings.secrets_old_keys],
    )


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _policies(
    conn: sa.Connection, column: str
) -> list[sa.Row[tuple[str, str | None, object, str]]]:
    return list(
        conn.execute(
            sa.text(
                f"SELECT p.tenant, p.export_password, p.{column}, t.timezone "  # noqa: S608 (fixed names)
                "FROM recording_policies p LEFT JOIN tenants t ON t.id = p.tenant"
            )
        )
    )


def upgrade() -> None:
    """Add the columns, encrypt stored passwords, convert the hour; create tenant_offboardings."""
    with op.batch_alter_table("recording_policies") as batch:
        batch.add_column(sa.Column("export_ca_pem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("export_time", sa.String(5), nullable=True))
        batch.alter_column("export_password", existing_type=sa.String(255), type_=sa.String(1024))
    conn = op.get_bind()
    rows = _policies(conn, "export_hour_utc")
    box = _box() if any(r[1] for r in rows) else None
    today = datetime.now(UTC).date()
    for tenant, password, hour, tz in rows:
        token = password
        if password and box is not None and not SecretBox.is_token(password):
            token = box.encrypt(password, tenant)
        at = None
        if isinstance(hour, int):
            utc = datetime(today.year, today.month, today.day, hour, tzinfo=UTC)
            at = utc.astimezone(_zone(tz)).strftime("%H:%M")
        conn.execute(
            sa.text(
                "UPDATE recording_policies SET export_password = :pw, export_time = :at "
                "WHERE tenant = :tenant"
            ),
            {"pw": token, "at": at, "tenant": tenant},
        )
    with op.batch_alter_table("recording_policies") as batch:
        batch.drop_column("export_hour_utc")
    op.create_table(
        "tenant_offboardings",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("skip_export", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("export_job", sa.String(32), nullable=True),
        sa.Column("purge_done", sa.Integer(), nullable=False),
        sa.Column("purge_total", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(32), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_tenant_offboardings")),
    )


def downgrade() -> None:
    """Back to plain text and a UTC hour (the minutes of a local time are lost)."""
    op.drop_table("tenant_offboardings")
    with op.batch_alter_table("recording_policies") as batch:
        batch.add_column(sa.Column("export_hour_utc", sa.Integer(), nullable=True))
    conn = op.get_bind()
    rows = _policies(conn, "export_time")
    box = _box() if any(r[1] for r in rows) else None
    today = datetime.now(UTC).date()
    for tenant, token, at, tz in rows:
        password = token
        if token and box is not None and SecretBox.is_token(token):
            password = box.decrypt(token, tenant)
        hour = None
        if isinstance(at, str) and at:
            h, m = (int(x) for x in at.split(":"))
            local = datetime(today.year, today.month, today.day, h, m, tzinfo=_zone(tz))
            hour = local.astimezone(UTC).hour
        conn.execute(
            sa.text(
                "UPDATE recording_policies SET export_password = :pw, export_hour_utc = :hour "
                "WHERE tenant = :tenant"
            ),
            {"pw": password, "hour": hour, "tenant": tenant},
        )
    with op.batch_alter_table("recording_policies") as batch:
        batch.drop_column("export_time")
        batch.drop_column("export_ca_pem")
        batch.alter_column("export_password", existing_type=sa.String(1024), type_=sa.String(255))
