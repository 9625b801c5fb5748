"""Pipelines: runs of a pipeline and of its nodes, the named outputs of job runs, schedules that target a pipeline.

``pipeline_runs`` holds one run of a pipeline version (its state, options, lease and, for a scheduled run, the
unique ``(schedule_id, fire_time)`` that makes a tick fire once); ``pipeline_run_nodes`` one node of it (its state,
skip reason, the job run that executed it or whose outputs it reused, its cache key); ``run_outputs`` the values a
job run recorded with ``nbd.output`` (small JSON inline, large ones as store blobs by hash). ``schedules.target``
says what a schedule fires: a job (NULL, as before) or a pipeline.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("schedule_id", sa.Integer, nullable=True),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("notify", sa.JSON, nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.UniqueConstraint("schedule_id", "fire_time", name="uq_pipeline_runs_schedule_id_fire_time"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["pipeline"])
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
    op.create_table(
        "pipeline_run_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline_run_id", sa.Integer, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("job_run_id", sa.Integer, nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("pipeline_run_id", "node", name="uq_pipeline_run_nodes_run_node"),
    )
    op.create_index("ix_pipeline_run_nodes_cache", "pipeline_run_nodes", ["pipeline", "node", "cache_key"])
    op.create_table(
        "run_outputs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("encoding", sa.String(16), nullable=False),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_outputs_run_id_attempt", "run_outputs", ["run_id", "attempt"])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("target", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("target")
    op.drop_index("ix_run_outputs_run_id_attempt", "run_outputs")
    op.drop_table("run_outputs")
    op.drop_index("ix_pipeline_run_nodes_cache", "pipeline_run_nodes")
    op.drop_table("pipeline_run_nodes")
    op.drop_index("ix_pipeline_runs_status", "pipeline_runs")
    op.drop_index("ix_pipeline_runs_pipeline", "pipeline_runs")
    op.drop_table("pipeline_runs")
