"""The SQL catalog: migrations, concurrent writers in real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from nbdeploy.exceptions import ConfigError, MissingDependencyError
from nbdeploy.store import Store
from nbdeploy.store.catalog import Catalog

WRITER = textwrap.dedent(
    """
    import sys
    from nbdeploy.store import Store
    store = Store(sys.argv[1], sys.argv[2])
    for i in range(5):
        store.put("model", "shared", f"{sys.argv[3]}-{i}".encode())
    """
)


def put_from_processes(store_url: str, catalog_url: str, processes: int = 20) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_url, catalog_url, str(n)], stderr=subprocess.PIPE)
        for n in range(processes)
    ]
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=240)
        if p.returncode != 0:
            errors.append(err.decode()[-2000:])
    assert not errors, errors[0]


def assert_gap_free(store: Store, count: int) -> None:
    versions = store.versions("model", "shared")
    assert [v.version for v in versions] == list(range(1, count + 1))
    assert len({v.sha256 for v in versions}) == count  # every put kept its own content


def test_twenty_processes_get_gap_free_versions_on_sqlite(tmp_path: Path) -> None:
    store_url, catalog_url = f"file://{tmp_path}/store", f"sqlite:///{tmp_path}/catalog.db"
    put_from_processes(store_url, catalog_url)  # the first writers also race to create the schema
    assert_gap_free(Store(store_url, catalog_url), 100)


@pytest.mark.postgres
def test_twenty_processes_get_gap_free_versions_on_postgres(tmp_path: Path, postgres_db: str) -> None:
    store_url = f"file://{tmp_path}/store"
    put_from_processes(store_url, postgres_db)
    store = Store(store_url, postgres_db)
    assert_gap_free(store, 100)
    store.catalog.dispose()


@pytest.mark.postgres
def test_postgres_catalog_round_trip(tmp_path: Path, postgres_db: str) -> None:
    store = Store(f"file://{tmp_path}/store", postgres_db)
    v = store.put("job", "nightly", b"{}", metadata={"k": [1, 2]})
    store.set_alias("job", "nightly", "production", v.version)
    got = store.resolve("job", "nightly@production")
    assert got.metadata == {"k": [1, 2]} and got.created_at.tzinfo is not None
    assert store.catalog.dialect == "postgresql"
    store.catalog.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path}/c.db")
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10000


def test_migrations_bring_an_empty_database_to_head_and_back(tmp_path: Path) -> None:
    from alembic import command

    catalog = Catalog(f"sqlite:///{tmp_path}/c.db")
    assert catalog.current_revision() == catalog._head()
    tables = set(sa.inspect(catalog.engine).get_table_names())
    assert {"artifact_versions", "aliases", "alembic_version"} <= tables
    with catalog.engine.begin() as conn:
        command.downgrade(catalog._alembic_config(conn), "base")
    assert "artifact_versions" not in sa.inspect(catalog.engine).get_table_names()
    catalog.migrate()
    assert catalog.current_revision() == catalog._head()


def test_an_up_to_date_catalog_opens_without_alembic(tmp_path: Path) -> None:
    """The head revision is read from the migration scripts (what Alembic says too), so a process opening a
    catalog that is already at head does not import Alembic (≈ 0.3 s of every first deploy)."""
    import subprocess
    import sys

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from nbdeploy.store.catalog import MIGRATIONS, _script_head

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert _script_head() == ScriptDirectory.from_config(cfg).get_current_head()
    url = f"sqlite:///{tmp_path}/c.db"
    Catalog(url)  # migrates
    code = (
        "import sys; from nbdeploy.store.catalog import Catalog; c = Catalog(sys.argv[1]); "
        "print(c.current_revision(), 'alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True).stdout
    assert out.split() == [_script_head(), "False"]


def test_created_at_is_timezone_aware_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/s", f"sqlite:///{tmp_path}/c.db")
    store.put("model", "m", b"x")
    assert store.get("model", "m").created_at.tzinfo is not None


def test_bad_catalog_urls_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL"):
        Catalog("not a url")
    with pytest.raises(MissingDependencyError, match="pip install"):
        Catalog("mysql+nosuchdriver://u@h/db")
