"""Datasets (lineage, profiles) and experiment tracking (MLflow's tables, artifacts, logged and registered models).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lineage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_kind", sa.String(16), nullable=False),
        sa.Column("run_ref", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_lineage_artifact", "lineage", ["kind", "name", "version"])
    op.create_index("ix_lineage_run", "lineage", ["run_kind", "run_ref"])
    op.create_table(
        "dataset_profiles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("json_sha256", sa.String(64), nullable=False),
        sa.Column("html_sha256", sa.String(64), nullable=False),
        sa.Column("milliseconds", sa.BigInteger, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("name", "version", "engine", name="uq_dataset_profiles_name_version_engine"),
    )
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("artifact_location", sa.String(512), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "artifact_location": "mlflow-artifacts:/0",
                "lifecycle_stage": "active",
                "creation_time": 0,
                "last_update_time": 0,
            }
        ],
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "tracked_runs",
        sa.Column("run_uuid", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.String(512), nullable=False),
    )
    op.create_index("ix_tracked_runs_experiment", "tracked_runs", ["experiment_id", "start_time"])
    for table in ("tracked_params", "tracked_tags"):
        op.create_table(
            table,
            sa.Column("run_uuid", sa.String(32), primary_key=True),
            sa.Column("key", sa.String(250), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    op.create_table(
        "tracked_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("is_nan", sa.Boolean, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_tracked_metrics_run_key", "tracked_metrics", ["run_uuid", "key"])
    op.create_table(
        "tracked_inputs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_tracked_inputs_run_uuid", "tracked_inputs", ["run_uuid"])
    op.create_table(
        "tracked_artifacts",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(1000), nullable=False),
        sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_table(
        "registered_model_versions",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("creation_timestamp", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("nbdeploy_model", sa.String(64), nullable=True),
        sa.Column("nbdeploy_version", sa.Integer, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "registered_model_versions",
        "registered_models",
        "logged_models",
        "tracked_artifacts",
        "tracked_inputs",
        "tracked_metrics",
        "tracked_tags",
        "tracked_params",
        "tracked_runs",
        "experiment_tags",
        "experiments",
        "dataset_profiles",
        "lineage",
    ):
        op.drop_table(table)
