"""SQLAlchemy models of the datasets service: lineage (which run read or wrote which version) and the profiles
stored with a version. The schema is created by the alembic migration ``0005``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..store.tables import Base, UTCDateTime, utcnow

__all__ = ["DatasetProfileRow", "LineageRow"]


class LineageRow(Base):
    """One read or write of an artifact version by a run: a job run (``job``, its id), a function call
    (``function``, ``name@version``) or a tracked run (``tracked``, its MLflow run id)."""

    __tablename__ = "lineage"
    __table_args__ = (
        Index("ix_lineage_artifact", "kind", "name", "version"),
        Index("ix_lineage_run", "run_kind", "run_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    run_ref: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DatasetProfileRow(Base):
    """The profile of one dataset version: its numbers (a JSON blob) and its HTML report (a blob), by engine."""

    __tablename__ = "dataset_profiles"
    __table_args__ = (UniqueConstraint("name", "version", "engine", name="uq_dataset_profiles_name_version_engine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    engine: Mapped[str] = mapped_column(String(32), nullable=False)
    json_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    html_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    milliseconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
