"""Dask resources (e.g. ``{"GPU": 1}``) a run or a schedule's runs ask for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("resources", sa.JSON, nullable=True))
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("resources", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("resources")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("resources")
