"""Create the recording index, policies, holds, FTP accounts, exports and purge reports.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the recording tables (hand-written; mirrors ccbridge.db.recording_tables)."""
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("agent_no", sa.String(64), nullable=True),
        sa.Column("skill_group", sa.String(64), nullable=True),
        sa.Column("caller", sa.String(255), nullable=True),
        sa.Column("callee", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_reason", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    op.create_index("ix_recordings_call_id", "recordings", ["call_id"])
    op.create_index("ix_recordings_status_started_at", "recordings", ["status", "started_at"])
    op.create_index(
        "ix_recordings_tenant_agent_no", "recordings", ["tenant", "agent_no", "started_at", "id"]
    )
    op.create_index(
        "ix_recordings_tenant_callee", "recordings", ["tenant", "callee", "started_at", "id"]
    )
    op.create_index(
        "ix_recordings_tenant_caller", "recordings", ["tenant", "caller", "started_at", "id"]
    )
    op.create_index(
        "ix_recordings_tenant_skill_group",
        "recordings",
        ["tenant", "skill_group", "started_at", "id"],
    )
    op.create_index("ix_recordings_tenant_started_at", "recordings", ["tenant", "started_at", "id"])
    op.create_table(
        "recording_policies",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("retention_months", sa.Integer(), nullable=False),
        sa.Column("auto_record", sa.Boolean(), nullable=False),
        sa.Column("auto_record_groups", sa.JSON(), nullable=True),
        sa.Column("export_host", sa.String(255), nullable=True),
        sa.Column("export_port", sa.Integer(), nullable=True),
        sa.Column("export_username", sa.String(128), nullable=True),
        sa.Column("export_password", sa.String(255), nullable=True),
        sa.Column("export_tls", sa.Boolean(), nullable=False),
        sa.Column("export_dir", sa.String(255), nullable=True),
        sa.Column("export_hour_utc", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_recording_policies")),
    )
    op.create_table(
        "recording_call_holds",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "call_id", name=op.f("pk_recording_call_holds")),
    )
    op.create_table(
        "ftp_accounts",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("tls_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_ftp_accounts")),
    )
    op.create_index("ix_ftp_accounts_tenant", "ftp_accounts", ["tenant"])
    op.create_table(
        "recording_exports",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("range_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_files", sa.Integer(), nullable=False),
        sa.Column("sent_files", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sent_bytes", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_exports")),
    )
    op.create_index(
        "ix_recording_exports_tenant_created_at", "recording_exports", ["tenant", "created_at"]
    )
    op.create_table(
        "recording_export_files",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("remote_path", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "recording_id", name=op.f("pk_recording_export_files")),
    )
    op.create_table(
        "purge_reports",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purge_reports")),
    )
    op.create_index("ix_purge_reports_tenant", "purge_reports", ["tenant"])


def downgrade() -> None:
    """Drop the recording tables (the files on disk are left alone)."""
    op.drop_index("ix_purge_reports_tenant", table_name="purge_reports")
    op.drop_table("purge_reports")
    op.drop_table("recording_export_files")
    op.drop_index("ix_recording_exports_tenant_created_at", table_name="recording_exports")
    op.drop_table("recording_exports")
    op.drop_index("ix_ftp_accounts_tenant", table_name="ftp_accounts")
    op.drop_table("ftp_accounts")
    op.drop_table("recording_call_holds")
    op.drop_table("recording_policies")
    op.drop_index("ix_recordings_call_id", table_name="recordings")
    op.drop_index("ix_recordings_status_started_at", table_name="recordings")
    op.drop_index("ix_recordings_tenant_agent_no", table_name="recordings")
    op.drop_index("ix_recordings_tenant_callee", table_name="recordings")
    op.drop_index("ix_recordings_tenant_caller", table_name="recordings")
    op.drop_index("ix_recordings_tenant_skill_group", table_name="recordings")
    op.drop_index("ix_recordings_tenant_started_at", table_name="recordings")
    op.drop_table("recordings")
