"""The public surface of `import nbdeploy as nbd` (what ARCHITECTURE.md promises) stays importable."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import nbdeploy as nbd
from nbdeploy.app import EXPORTS, MANAGERS, SERVICES, Nbdeploy, load

PROMISED = {
    "": ["deploy", "invoke", "log_metric", "log_artifact", "output"],
    "store": ["put", "get", "read", "versions", "latest", "set_alias", "resolve", "delete_version", "gc"],
    "functions": ["deploy", "invoke", "submit", "list", "get", "versions", "delete"],
    "jobs": ["put", "parameters", "run", "list"],
    "schedules": ["add", "list", "pause", "resume", "delete", "next_fire_times"],
    "runs": ["list", "get", "log_metric", "log_artifact"],
    "models": ["put", "get", "list", "versions", "set_alias", "delete_version", "predict", "predict_batch", "drift"],
    "runtime": ["client", "async_client", "status", "load_artifact"],
    "datasets": ["put", "get", "dask", "path", "versions", "delete", "diff", "lineage", "profile"],
    "pipelines": ["put", "get", "list", "preview", "run", "runs", "get_run", "cancel", "delete", "outputs", "schedule"],
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


def _without_self(function: object) -> inspect.Signature:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def test_every_wrapper_is_its_managers_method_with_the_same_signature() -> None:
    for name, target in EXPORTS.items():
        if ":" in target:
            continue  # a plain function (log_metric): the module's own
        manager, _, method = target.partition(".")
        assert inspect.signature(getattr(nbd, name)) == _without_self(getattr(load(MANAGERS[manager]), method)), name
    for package in ("functions", "jobs", "models", "store", "datasets", "tokens", "pipelines"):
        module = importlib.import_module(f"nbdeploy.{package}")
        cls = load(MANAGERS[package])
        for method in [m for m in vars(cls) if not m.startswith("_") and inspect.isfunction(vars(cls)[m])]:
            assert method not in vars(module), f"nbdeploy.{package}.{method} is a hand copy of {cls.__name__}.{method}"
            shadow = importlib.util.find_spec(f"nbdeploy.{package}.{method}")
            assert shadow is None, f"the module nbdeploy.{package}.{method} hides nbd.{package}.{method}()"
            bound = getattr(getattr(nbd, package), method)
            assert inspect.signature(bound) == _without_self(getattr(cls, method)), f"nbd.{package}.{method}"
    for manager in ("schedules", "runs"):
        assert type(getattr(nbd, manager)) is load(MANAGERS[manager])


def test_services_are_declared_once_and_every_declared_entry_imports() -> None:
    names = [s.name for s in SERVICES]
    assert len(names) == len(set(names))
    for module in Nbdeploy.handler_modules():
        assert importlib.import_module(module).default_handlers
    for target in [*Nbdeploy.magic_classes(), *Nbdeploy.cli_commands().values(), *MANAGERS.values()]:
        assert load(target) is not None, target
    for service in SERVICES:
        for entry in service.background:
            assert inspect.iscoroutinefunction(load(entry)), entry


def test_a_manager_class_is_swappable_from_config() -> None:
    from traitlets.config import Config

    from nbdeploy.jobs.runs import RunManager

    class AuditedRuns(RunManager):
        pass

    config = Config()
    config.Nbdeploy.runs_class = AuditedRuns
    app = Nbdeploy(config=config)
    assert type(app.runs) is AuditedRuns and app.runs.app is app
