"""Kernels: whether a run may take a warm pooled kernel (``warm``), its timing breakdown (``timings``), and the
pieces of a running attempt's log that followers read (``run_log_chunks``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("warm", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("timings", sa.JSON, nullable=True))
    op.create_table(
        "run_log_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("offset", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_run_log_chunks_run_id_attempt_offset", "run_log_chunks", ["run_id", "attempt", "offset"])


def downgrade() -> None:
    op.drop_index("ix_run_log_chunks_run_id_attempt_offset", table_name="run_log_chunks")
    op.drop_table("run_log_chunks")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("timings")
        batch.drop_column("warm")
