"""Serving for a team: scoped API tokens, and catalog change notifications on PostgreSQL.

``api_tokens`` holds each token's SHA-256 (never the secret), scopes, expiry, revocation and last use. On
PostgreSQL, statement triggers on ``artifact_versions``, ``aliases`` and ``api_tokens`` send
``NOTIFY nbdeploy_catalog``, so that every server's caches of resolved versions and tokens hear of a change
without asking the catalog on every request (SQLite keeps its ``data_version``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NOTIFIED_TABLES = ("artifact_versions", "aliases", "api_tokens")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION nbdeploy_notify_change() RETURNS trigger AS $$ "
            "BEGIN PERFORM pg_notify('nbdeploy_catalog', TG_TABLE_NAME); RETURN NULL; END; $$ LANGUAGE plpgsql"
        )
        for table in NOTIFIED_TABLES:
            op.execute(
                f"CREATE TRIGGER nbdeploy_{table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION nbdeploy_notify_change()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in NOTIFIED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS nbdeploy_{table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS nbdeploy_notify_change()")
    op.drop_table("api_tokens")
