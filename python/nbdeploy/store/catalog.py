"""The SQL catalog: engine set-up (SQLite or PostgreSQL), migrations and artifact-version queries.

The catalog is nbdeploy's control plane: every artifact version, alias, schedule and run is a row. SQLite
runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` transactions (so concurrent writers queue
instead of failing); PostgreSQL takes a per-name advisory lock while it allocates a version number.

On SQLite the hot path of a put (allocating the next version number and inserting its row) runs as three
statements on a per-thread ``sqlite3`` connection of its own, configured as the engine's: the ORM session and
pool around one INSERT cost some forty times the statement itself (≈ 1.8 ms against ≈ 0.04 ms here).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..exceptions import ConfigError, MissingDependencyError, StoreError
from .tables import AliasRow, ArtifactVersionRow, utcnow

__all__ = ["Catalog"]

MIGRATIONS = Path(__file__).with_name("migrations")
#: every (table, column) that holds the sha256 of a blob in the store: what :meth:`Catalog.live_hashes` keeps
BLOB_REFERENCES: tuple[tuple[str, str], ...] = (
    ("runs", "output_sha256"),
    ("runs", "log_sha256"),
    ("run_artifacts", "sha256"),
    ("dataset_profiles", "html_sha256"),
    ("dataset_profiles", "json_sha256"),
    ("tracked_artifacts", "sha256"),
)
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 60000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
#: SQLite: how long a read of ``PRAGMA data_version`` stands for the catalog's state (another process's change is
#: seen within this long; this process's own at once)
CHANGE_POLL_SECONDS = 0.005
#: changes this process committed, per database (every :class:`Catalog` of the process on it sees them at once)
_OWN_CHANGES: dict[str, int] = {}
_INSERT_VERSION = (
    "INSERT INTO artifact_versions (kind, name, version, sha256, size, created_at, owner, metadata, deleted) "
    "VALUES (?, ?, (SELECT COALESCE(MAX(version), 0) + 1 FROM artifact_versions WHERE kind = ? AND name = ?), "
    "?, ?, ?, ?, ?, 0) RETURNING id, version"
)
_DRIVER_HINTS = {"postgresql": ("psycopg[binary]", "postgres"), "mysql": ("pymysql", None)}


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"catalog_url {url!r} is not a SQLAlchemy URL (e.g. sqlite:///path/catalog.db)") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship with
    try:
        if backend == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ImportError, NoSuchModuleError) as exc:
        package, extra = _DRIVER_HINTS.get(backend, (backend, None))
        raise MissingDependencyError(f"the catalog {parsed.render_as_string()!r}", package, extra) from exc
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
        cur = dbapi_conn.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # writers take the write lock up front, so concurrent writers queue on busy_timeout instead of
        # failing with "database is locked" when a read transaction tries to upgrade; readers don't block
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("nbd_readonly") else "BEGIN IMMEDIATE")


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|['\"]([^'\"]+)['\"])", re.M)


@functools.cache
def _script_head() -> str | None:
    """The newest migration's revision, read from the migration scripts' ``revision`` / ``down_revision`` lines
    (``None`` when that is not a single linear head: then Alembic itself is asked)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {m.group(1): m.group(3) for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


class Catalog:
    """The SQL catalog at ``url``; :meth:`migrate` brings its schema to the newest revision."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(nbd_readonly=True), expire_on_commit=False)
        self._watch: Any = None
        self._listen: Any = None  # PostgreSQL: the LISTEN/NOTIFY change listener (started on first use)
        self._watch_lock = threading.Lock()
        self._polled: tuple[float, int] | None = None  # SQLite: (when, data_version) last read
        self._fast = threading.local()  # per-thread sqlite3 connection of the write hot path
        self._fast_all: list[sqlite3.Connection] = []
        self._sqlite_file = self._sqlite_database()
        self._changes_key = self._sqlite_file or url  # this process's own changes are counted per database
        if migrate:
            self.migrate()

    # --- schema -----------------------------------------------------------------------------------
    def _alembic_config(self, connection: sa.Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        return cfg

    def _head(self) -> str:
        head = _script_head()
        if head is not None:
            return head
        from alembic.script import ScriptDirectory

        cfg = self._alembic_config(None)  # type: ignore[arg-type]
        return ScriptDirectory.from_config(cfg).get_current_head() or ""

    def current_revision(self) -> str | None:
        """Return the schema revision the database is at (``None`` for an empty database).

        Read with one query, without importing Alembic (≈ 0.3 s of every process's first catalog use)."""
        with self.engine.connect() as conn:
            try:
                rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).fetchall()
            except sa.exc.DBAPIError:  # no such table: an empty database
                conn.rollback()
                rows = []
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            return None
        from alembic.runtime.migration import MigrationContext  # several heads: let Alembic say

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision; safe when many processes call it at once."""
        try:
            if self.current_revision() == self._head():
                return
            from alembic import command

            with self._migration_lock():
                with self.engine.begin() as conn:
                    command.upgrade(self._alembic_config(conn), "head")
        except OperationalError as exc:
            raise StoreError(f"cannot open the catalog {self._safe_url()}: {exc.orig}") from exc

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            database = make_url(self.url).database or ""
            if not database or database == ":memory:":
                yield
                return
            lock_path = str(Path(database).expanduser()) + ".migrate.lock"
            with open(lock_path, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        elif self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(724311)"))
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(724311)"))
                    conn.commit()
        else:
            yield

    def _sqlite_database(self) -> str | None:
        """The database file of a file-backed SQLite catalog, else ``None``."""
        if self.dialect != "sqlite":
            return None
        database = make_url(self.url).database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return str(Path(database).expanduser())

    def _fast_connection(self) -> sqlite3.Connection | None:
        """This thread's own ``sqlite3`` connection to a file-backed SQLite catalog (``None`` otherwise)."""
        if self._sqlite_file is None:
            return None
        conn: sqlite3.Connection | None = getattr(self._fast, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._sqlite_file, timeout=60, isolation_level=None, check_same_thread=False)
            for pragma in _SQLITE_PRAGMAS:
                conn.execute(pragma)
            self._fast.conn = conn
            with self._watch_lock:
                self._fast_all.append(conn)
        return conn

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- change detection ---------------------------------------------------------------------------
    def change_token(self) -> int | None:
        """A number that changes whenever a version, an alias or a token changes in the catalog, or ``None`` when
        the backend cannot tell cheaply (then callers must query). SQLite: ``PRAGMA data_version`` on a
        connection of its own, asked at most every :data:`CHANGE_POLL_SECONDS` (under load that query was a tenth
        of a request's time in the server), combined with the count of this process's own changes, so that those
        are seen at once and other processes' within that interval; PostgreSQL: the count of ``NOTIFY`` seen by
        this process's listener (:mod:`.notify`), ``None`` while it is not connected."""
        if self.dialect == "postgresql":
            return self._listener().token()
        if self.dialect != "sqlite":
            return None
        now = time.monotonic()
        polled = self._polled
        if polled is None or now - polled[0] >= CHANGE_POLL_SECONDS:
            with self._watch_lock:
                if self._watch is None:
                    import sqlite3

                    database = make_url(self.url).database or ""
                    if not database or database == ":memory:":
                        return None
                    self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
                polled = self._polled = (now, int(self._watch.execute("PRAGMA data_version").fetchone()[0]))
        return (polled[1] << 32) | (_OWN_CHANGES.get(self._changes_key, 0) & 0xFFFFFFFF)

    def _listener(self) -> Any:
        with self._watch_lock:
            if self._listen is None:
                from .notify import ChangeListener

                url = self.engine.url.set(drivername="postgresql")
                self._listen = ChangeListener(url.render_as_string(hide_password=False))
            return self._listen

    def notify_change(self) -> None:
        """Count a change this process just committed, so that its own next lookup sees it (other processes hear
        of it through the catalog's triggers)."""
        key = self._changes_key
        _OWN_CHANGES[key] = _OWN_CHANGES.get(key, 0) + 1
        if self.dialect == "postgresql" and self._listen is not None:
            self._listen.bump()

    # --- sessions ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        ``readonly`` sessions do not take SQLite's write lock up front (use them only for reads).
        """
        maker = self._read_sessions if readonly else self._sessions
        with maker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection (call after ``fork`` and on shutdown)."""
        self.engine.dispose()
        with self._watch_lock:
            if self._listen is not None:
                self._listen.close()
                self._listen = None
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            for conn in self._fast_all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._fast_all.clear()
            self._fast = threading.local()

    # --- artifact versions ------------------------------------------------------------------------
    def add_version(
        self, kind: str, name: str, sha256: str, size: int, owner: str | None, metadata: dict[str, Any]
    ) -> ArtifactVersionRow:
        """Insert the next version of ``kind/name`` and return its row; numbers are gap-free, never reused."""
        table = ArtifactVersionRow.__table__
        created = utcnow()

        def inserted(row_id: int, version: int) -> ArtifactVersionRow:
            return ArtifactVersionRow(
                id=row_id,
                kind=kind,
                name=name,
                version=version,
                sha256=sha256,
                size=size,
                created_at=created,
                owner=owner,
                meta=metadata,
                deleted=False,
            )

        fast = self._fast_connection()
        if fast is not None:
            row_id, version = self._insert_version_sqlite(fast, kind, name, sha256, size, created, owner, metadata)
            self.notify_change()
            return inserted(row_id, version)
        next_version = (
            select(func.coalesce(func.max(table.c.version), 0) + 1)
            .where(table.c.kind == kind, table.c.name == name)
            .scalar_subquery()
        )
        insert = (
            sa.insert(table)  # type: ignore[arg-type]
            .values(
                kind=kind,
                name=name,
                version=next_version,
                sha256=sha256,
                size=size,
                created_at=created,
                owner=owner,
                metadata=metadata,
                deleted=False,
            )
            .returning(table.c.id, table.c.version)
        )
        for attempt in range(50):
            try:
                with self.engine.begin() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{kind}/{name}"})
                    row_id, version = conn.execute(insert).one()
                self.notify_change()
                return inserted(row_id, version)
            except IntegrityError:
                time.sleep(0.005 * (attempt + 1))  # another writer took that number: try the next one
        raise StoreError(f"could not allocate a version of {kind} {name!r}: too much contention")

    @staticmethod
    def _insert_version_sqlite(
        conn: sqlite3.Connection,
        kind: str,
        name: str,
        sha256: str,
        size: int,
        created: Any,
        owner: str | None,
        metadata: dict[str, Any],
    ) -> tuple[int, int]:
        """The version insert on SQLite as the engine would write it (naive UTC text timestamps, JSON text)."""
        stamp = created.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        values = (kind, name, kind, name, sha256, size, stamp, owner, json.dumps(metadata))
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row_id, version = conn.execute(_INSERT_VERSION, values).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise StoreError(f"writing to the catalog failed: {exc}") from exc
        return int(row_id), int(version)

    def _live(self) -> Any:
        return ArtifactVersionRow.deleted.is_(False)

    def get_version(self, kind: str, name: str, version: int) -> ArtifactVersionRow | None:
        """Return the live row of ``kind/name`` version ``version``, or ``None``."""
        with self.session(readonly=True) as s:
            return s.scalar(
                select(ArtifactVersionRow).where(
                    ArtifactVersionRow.kind == kind,
                    ArtifactVersionRow.name == name,
                    ArtifactVersionRow.version == version,
                    self._live(),
                )
            )

    def latest_version(self, kind: str, name: str) -> ArtifactVersionRow | None:
        """Return the newest live row of ``kind/name``, or ``None``."""
        with self.session(readonly=True) as s:
            return s.scalar(
                select(ArtifactVersionRow)
                .where(ArtifactVersionRow.kind == kind, ArtifactVersionRow.name == name, self._live())
                .order_by(ArtifactVersionRow.version.desc())
                .limit(1)
            )

    def list_versions(self, kind: str, name: str) -> list[ArtifactVersionRow]:
        """Return the live rows of ``kind/name``, oldest first."""
        with self.session(readonly=True) as s:
            return list(
                s.scalars(
                    select(ArtifactVersionRow)
                    .where(ArtifactVersionRow.kind == kind, ArtifactVersionRow.name == name, self._live())
                    .order_by(ArtifactVersionRow.version)
                )
            )

    def list_latest(self, kind: str | None = None) -> list[ArtifactVersionRow]:
        """Return the newest live row of every name (of one kind, or of all), ordered by kind and name."""
        with self.session(readonly=True) as s:
            newest = (
                select(
                    ArtifactVersionRow.kind.label("k"),
                    ArtifactVersionRow.name.label("n"),
                    func.max(ArtifactVersionRow.version).label("v"),
                )
                .where(self._live())
                .group_by(ArtifactVersionRow.kind, ArtifactVersionRow.name)
            )
            if kind is not None:
                newest = newest.where(ArtifactVersionRow.kind == kind)
            sub = newest.subquery()
            query = (
                select(ArtifactVersionRow)
                .join(
                    sub,
                    (ArtifactVersionRow.kind == sub.c.k)
                    & (ArtifactVersionRow.name == sub.c.n)
                    & (ArtifactVersionRow.version == sub.c.v),
                )
                .order_by(ArtifactVersionRow.kind, ArtifactVersionRow.name)
            )
            return list(s.scalars(query))

    def mark_deleted(self, kind: str, name: str, version: int | None = None) -> int:
        """Mark one version (or every version) of ``kind/name`` deleted and drop aliases pointing at it."""
        with self.session() as s:
            query = sa.update(ArtifactVersionRow).where(
                ArtifactVersionRow.kind == kind, ArtifactVersionRow.name == name, self._live()
            )
            aliases = sa.delete(AliasRow).where(AliasRow.kind == kind, AliasRow.name == name)
            if version is not None:
                query = query.where(ArtifactVersionRow.version == version)
                aliases = aliases.where(AliasRow.version == version)
            count = s.execute(query.values(deleted=True)).rowcount  # type: ignore[attr-defined]
            s.execute(aliases)
        self.notify_change()
        return int(count or 0)

    def list_versions_of_kind(self, kind: str) -> list[ArtifactVersionRow]:
        """Every live row of ``kind`` (all names, all versions)."""
        with self.session(readonly=True) as s:
            return list(s.scalars(select(ArtifactVersionRow).where(ArtifactVersionRow.kind == kind, self._live())))

    def live_hashes(self) -> set[str]:
        """Return the digest of every blob something in the catalog references: live versions, run outputs,
        logs and artifacts, dataset profiles, tracked runs' artifacts (:data:`BLOB_REFERENCES`)."""
        with self.session(readonly=True) as s:
            live = set(s.scalars(select(ArtifactVersionRow.sha256).where(self._live()).distinct()))
            tables = set(sa.inspect(s.connection()).get_table_names())
            for table, column in BLOB_REFERENCES:
                if table in tables:
                    query = sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
                    live.update(s.execute(query).scalars())
            return live

    # --- aliases ----------------------------------------------------------------------------------
    def set_alias(self, kind: str, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``kind/name`` at ``version`` (creating or moving it)."""
        with self.session() as s:
            row = s.get(AliasRow, (kind, name, alias))
            if row is None:
                s.add(AliasRow(kind=kind, name=name, alias=alias, version=version, updated_at=utcnow()))
            else:
                row.version, row.updated_at = version, utcnow()
        self.notify_change()

    def get_alias(self, kind: str, name: str, alias: str) -> int | None:
        """Return the version ``alias`` points at, or ``None``."""
        with self.session(readonly=True) as s:
            row = s.get(AliasRow, (kind, name, alias))
            return None if row is None else row.version

    def delete_alias(self, kind: str, name: str, alias: str) -> bool:
        """Remove an alias; return whether it existed."""
        with self.session() as s:
            deleted = bool(
                s.execute(
                    sa.delete(AliasRow).where(AliasRow.kind == kind, AliasRow.name == name, AliasRow.alias == alias)
                ).rowcount  # type: ignore[attr-defined]
            )
        self.notify_change()
        return deleted

    def aliases(self, kind: str, name: str) -> dict[str, int]:
        """Return ``{alias: version}`` for ``kind/name``."""
        with self.session(readonly=True) as s:
            rows = s.scalars(select(AliasRow).where(AliasRow.kind == kind, AliasRow.name == name))
            return {r.alias: r.version for r in rows}

    def __repr__(self) -> str:
        return f"Catalog({self._safe_url()!r})"
