"""Settings: explicit argument > NBDEPLOY_* > Jupyter config > default, and `nbdeploy info`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.config import Settings
from nbdeploy.exceptions import ConfigError


def test_defaults_make_a_fresh_machine_work(nbd_home: Path) -> None:
    s = Settings.resolve()
    assert s.home == str(nbd_home)
    assert s.store_url == f"file://{nbd_home}/store"
    assert s.catalog_url == f"sqlite:///{nbd_home}/catalog.db"
    assert s.cluster == "local" and s.token is None
    assert s.sources["store_url"] == "default" and s.sources["home"] == "environment NBDEPLOY_HOME"


def test_resolution_order(nbd_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"Nbdeploy": {"store_url": "memory://from-config", "cluster": "tcp://10.0.0.1:8786"}})
    )
    (config_dir / "nbdeploy_config.py").write_text("c.Nbdeploy.catalog_url = 'sqlite:///from-py-config.db'\n")
    s = Settings.resolve()
    assert s.store_url == "memory://from-config"
    assert s.sources["store_url"] == "jupyter config c.Nbdeploy.store_url"
    assert s.catalog_url == "sqlite:///from-py-config.db"
    monkeypatch.setenv("NBDEPLOY_STORE_URL", "memory://from-env")
    s = Settings.resolve()
    assert s.store_url == "memory://from-env" and s.sources["store_url"] == "environment NBDEPLOY_STORE_URL"
    s = Settings.resolve(store_url="memory://explicit")
    assert s.store_url == "memory://explicit" and s.sources["store_url"] == "argument"
    assert s.cluster == "tcp://10.0.0.1:8786"


def test_bad_settings_raise_config_errors(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.resolve(stor_url="x")
    monkeypatch.setenv("NBDEPLOY_MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigError, match="must be an integer"):
        Settings.resolve()


def test_describe_masks_the_token(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_TOKEN", "s3cr3t-token-value")
    rows = {name: (value, source) for name, value, source in Settings.resolve().describe()}
    assert "s3cr3t-token-value" not in rows["token"][0]
    assert rows["token"][1] == "environment NBDEPLOY_TOKEN"


def test_tuning_settings_resolve_like_the_others(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = Settings.resolve()
    assert (s.connect_timeout, s.lease_ttl, s.model_max_batch_size, s.model_max_wait_ms, s.model_stats_seconds) == (
        10.0,
        30.0,
        64,
        2.0,
        5.0,
    )
    (tmp_path / "jupyter-config" / "nbdeploy_config.py").write_text(
        "c.Nbdeploy.model_max_batch_size = 16\nc.Nbdeploy.lease_ttl = 45.0\n"
    )
    monkeypatch.setenv("NBDEPLOY_MODEL_MAX_WAIT_MS", "0.5")
    s = Settings.resolve()
    assert (s.model_max_batch_size, s.lease_ttl, s.model_max_wait_ms) == (16, 45.0, 0.5)
    assert s.sources["model_max_batch_size"] == "jupyter config c.Nbdeploy.model_max_batch_size"
    assert "model_stats_seconds" in {row[0] for row in s.describe()}
    monkeypatch.setenv("NBDEPLOY_LEASE_TTL", "soon")
    with pytest.raises(ConfigError, match=r"lease_ttl .* must be a number"):
        Settings.resolve()
    monkeypatch.setenv("NBDEPLOY_LEASE_TTL", "-1")
    with pytest.raises(ConfigError, match="must not be negative"):
        Settings.resolve()


def test_a_model_manager_and_a_dispatcher_take_their_defaults_from_the_settings(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbdeploy.config
    from nbdeploy.jobs.dispatcher import Dispatcher
    from nbdeploy.models import ModelManager
    from nbdeploy.runtime.connect import connect_timeout

    monkeypatch.setenv("NBDEPLOY_MODEL_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("NBDEPLOY_LEASE_TTL", "12")
    monkeypatch.setenv("NBDEPLOY_CONNECT_TIMEOUT", "3")
    nbdeploy.config.reset_settings()
    try:
        assert nbd.default().models.max_batch_size == 8
        assert ModelManager(nbd.default(), max_batch_size=4).max_batch_size == 4
        assert connect_timeout() == 3.0
        assert Dispatcher(nbd.default().store).lease_ttl == 12.0
    finally:
        nbdeploy.config.reset_settings()
