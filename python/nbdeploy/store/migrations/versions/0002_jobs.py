"""Jobs: schedules, runs (unique per schedule tick), run metrics and artifacts, the dispatcher lease.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("kernel", sa.String(128), nullable=True),
        sa.Column("catchup", sa.String(8), nullable=False),
        sa.Column("max_concurrency", sa.Integer, nullable=False, server_default="1"),
        sa.Column("timeout", sa.Float, nullable=True),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notify", sa.JSON, nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("next_fire_at"),
        _ts("last_fire_at"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_schedules_job", "schedules", ["job"])
    op.create_index("ix_schedules_paused_next_fire_at", "schedules", ["paused", "next_fire_at"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("job_version", sa.Integer, nullable=True),
        sa.Column("notebook_sha256", sa.String(64), nullable=True),
        sa.Column("schedule_id", sa.Integer, nullable=True),
        _ts("fire_time"),
        sa.Column("trigger", sa.String(16), nullable=False, server_default="manual"),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("kernel", sa.String(128), nullable=True),
        sa.Column("timeout", sa.Float, nullable=True),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("queued_at", nullable=False),
        _ts("not_before", nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _ts("lease_until"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("worker", sa.String(256), nullable=True),
        sa.Column("current_cell", sa.Integer, nullable=True),
        sa.Column("cell_count", sa.Integer, nullable=True),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("error_cell", sa.Integer, nullable=True),
        sa.Column("error_traceback", sa.Text, nullable=True),
        sa.Column("output_sha256", sa.String(64), nullable=True),
        sa.Column("log_sha256", sa.String(64), nullable=True),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("notify", sa.JSON, nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.UniqueConstraint("schedule_id", "fire_time", name="uq_runs_schedule_id_fire_time"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_status_not_before", "runs", ["status", "not_before"])
    op.create_index("ix_runs_job_queued_at", "runs", ["job", "queued_at"])
    op.create_index("ix_runs_lease_owner_status", "runs", ["lease_owner", "status"])

    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        _ts("logged_at", nullable=False),
    )
    op.create_index("ix_run_metrics_run_id_attempt", "run_metrics", ["run_id", "attempt"])

    op.create_table(
        "run_artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        _ts("logged_at", nullable=False),
    )
    op.create_index("ix_run_artifacts_run_id_attempt", "run_artifacts", ["run_id", "attempt"])

    op.create_table(
        "dispatcher_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        _ts("acquired_at", nullable=False),
        _ts("heartbeat_at", nullable=False),
        _ts("lease_until", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dispatcher_leases")
    op.drop_index("ix_run_artifacts_run_id_attempt", "run_artifacts")
    op.drop_table("run_artifacts")
    op.drop_index("ix_run_metrics_run_id_attempt", "run_metrics")
    op.drop_table("run_metrics")
    for index in ("ix_runs_lease_owner_status", "ix_runs_job_queued_at", "ix_runs_status_not_before"):
        op.drop_index(index, "runs")
    op.drop_table("runs")
    op.drop_index("ix_schedules_paused_next_fire_at", "schedules")
    op.drop_index("ix_schedules_job", "schedules")
    op.drop_table("schedules")
