"""Kernels: whether a run may take a warm pooled kernel (``warm``) and its timing breakdown (``timings``).

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


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("timings")
        batch.drop_column("warm")
