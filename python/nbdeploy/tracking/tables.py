"""SQLAlchemy models of experiment tracking, as MLflow's SQL store lays them out (experiments, runs, params,
tags, metrics, inputs), plus the artifacts kept in nbdeploy's store, MLflow 3's logged models and the model
registry entries that point at nbdeploy's own models. Created by the alembic migration ``0005``; tracked runs
are records of their own, distinct from job runs."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.tables import Base

__all__ = [
    "ExperimentRow",
    "ExperimentTagRow",
    "LoggedModelRow",
    "RegisteredModelRow",
    "RegisteredVersionRow",
    "TrackedArtifactRow",
    "TrackedInputRow",
    "TrackedMetricRow",
    "TrackedParamRow",
    "TrackedRunRow",
    "TrackedTagRow",
]


class ExperimentRow(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False, unique=True)
    artifact_location: Mapped[str] = mapped_column(String(512), nullable=False)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class TrackedRunRow(Base):
    __tablename__ = "tracked_runs"
    __table_args__ = (Index("ix_tracked_runs_experiment", "experiment_id", "start_time"),)

    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(250), nullable=False, default="")
    experiment_id: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="RUNNING")
    start_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    end_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    artifact_uri: Mapped[str] = mapped_column(String(512), nullable=False)


class TrackedParamRow(Base):
    __tablename__ = "tracked_params"

    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class TrackedTagRow(Base):
    __tablename__ = "tracked_tags"

    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class TrackedMetricRow(Base):
    __tablename__ = "tracked_metrics"
    __table_args__ = (Index("ix_tracked_metrics_run_key", "run_uuid", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TrackedInputRow(Base):
    """A dataset a run used (``mlflow.log_input``), or a logged model a run produced (``log_outputs``)."""

    __tablename__ = "tracked_inputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)  # input | output
    name: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    digest: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)


class TrackedArtifactRow(Base):
    """A file under an MLflow artifact root (``<experiment>/<run>/artifacts/…``), its bytes a store blob."""

    __tablename__ = "tracked_artifacts"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LoggedModelRow(Base):
    """MLflow 3's logged model (``mlflow.<flavor>.log_model``): where its files are and what it came from."""

    __tablename__ = "logged_models"

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_location: Mapped[str] = mapped_column(String(1000), nullable=False)
    creation_timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="LOGGED_MODEL_PENDING")
    lifecycle_stage: Mapped[str] = mapped_column(String(32), nullable=False, default="active")
    model_type: Mapped[str | None] = mapped_column(String(500), nullable=True)
    source_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)  # tags, params, metrics


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    creation_timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")


class RegisteredVersionRow(Base):
    """A model version registered through MLflow's registry API, and the nbdeploy model version it became."""

    __tablename__ = "registered_model_versions"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    creation_timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(1000), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    status_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    nbdeploy_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    nbdeploy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
