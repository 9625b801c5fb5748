"""Alembic environment: nbdeploy runs migrations programmatically on a connection it passes in."""

from alembic import context

import nbdeploy.datasets.tables
import nbdeploy.jobs.tables
import nbdeploy.tracking.tables  # noqa: F401 - registers the tracking tables on Base.metadata
from nbdeploy.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
