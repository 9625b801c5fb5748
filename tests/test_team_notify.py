"""Several servers, one PostgreSQL catalog: version and alias changes reach every process through the catalog's
``LISTEN/NOTIFY`` triggers, so that resolving a version costs no query per request (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from nbdeploy.store import Store, VersionCache
from tests.helpers import eventually

pytestmark = pytest.mark.postgres


def _queries(store: Store) -> list[str]:
    seen: list[str] = []
    sa.event.listen(store.catalog.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_changes_through_one_server_reach_the_others_without_a_query_per_request(
    postgres_db: str, tmp_path: Path
) -> None:
    url = (tmp_path / "store").as_uri()
    one, two = Store(url, postgres_db), Store(url, postgres_db)
    try:
        one.put("model", "churn", b"v1")
        cache = VersionCache()
        assert cache.get(two, "model", "churn").version == 1
        queries = _queries(two)
        for _ in range(200):
            assert cache.get(two, "model", "churn").version == 1
            assert cache.get(two, "model", "churn", None).version == 1
        assert queries == []  # no catalog query while nothing changed

        one.put("model", "churn", b"v2")  # through the other server
        eventually(lambda: cache.get(two, "model", "churn").version == 2, timeout=30, what="the new version")
        one.set_alias("model", "churn", "production", 1)
        eventually(lambda: cache.get(two, "model", "churn", "production").version == 1, timeout=30, what="alias")
        one.set_alias("model", "churn", "production", 2)
        eventually(lambda: cache.get(two, "model", "churn", "production").version == 2, timeout=30, what="move")
        one.delete_version("model", "churn", 2)
        eventually(lambda: cache.get(two, "model", "churn").version == 1, timeout=30, what="the delete")
    finally:
        one.catalog.dispose()
        two.catalog.dispose()


def test_tokens_revoked_on_one_server_are_refused_by_the_others(postgres_db: str, tmp_path: Path, monkeypatch) -> None:
    import nbdeploy.config
    from nbdeploy.app import Nbdeploy

    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBDEPLOY_CATALOG_URL", postgres_db)
    nbdeploy.config.reset_settings()
    one, two = Nbdeploy(), Nbdeploy()
    try:
        new = one.tokens.create(["read"], "shared")
        assert two.tokens.authenticate(new.token) is not None
        one.tokens.revoke(new.info.id)
        eventually(lambda: two.tokens.authenticate(new.token) is None, timeout=30, what="the revocation")
    finally:
        one.close()
        two.close()
        nbdeploy.config.reset_settings()
