"""The public surface of `import nbdeploy as nbd` (what ARCHITECTURE.md promises) stays importable."""

from __future__ import annotations

import nbdeploy as nbd

PROMISED = {
    "": ["deploy", "invoke", "log_metric", "log_artifact"],
    "store": ["put", "get", "read", "versions", "latest", "set_alias", "resolve", "delete_version", "gc"],
    "functions": ["deploy", "invoke", "submit", "list", "get", "versions", "delete"],
    "jobs": ["put", "parameters", "run", "list"],
    "schedules": ["add", "list", "pause", "resume", "delete", "next_fire_times"],
    "runs": ["list", "get", "log_metric", "log_artifact"],
    "models": ["put", "get", "list", "versions", "set_alias", "delete_version", "predict", "predict_batch", "drift"],
    "runtime": ["client", "async_client", "status", "load_artifact"],
}


def test_every_name_in_all_resolves() -> None:
    missing = [name for name in nbd.__all__ if getattr(nbd, name, None) is None]
    assert not missing, missing
    assert sorted(nbd.__all__) == nbd.__all__


def test_the_promised_api_exists() -> None:
    for module, names in PROMISED.items():
        target = getattr(nbd, module) if module else nbd
        absent = [n for n in names if not callable(getattr(target, n, None))]
        assert not absent, f"nbd.{module or ''}: missing {absent}"
        if module:
            assert module in nbd.__all__


def test_errors_share_one_base() -> None:
    errors = [getattr(nbd, n) for n in nbd.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, nbd.NbdeployError) for e in errors)
