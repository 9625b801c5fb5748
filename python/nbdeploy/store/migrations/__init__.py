"""Alembic migrations of the catalog (run by :meth:`nbdeploy.store.catalog.Catalog.migrate`)."""
