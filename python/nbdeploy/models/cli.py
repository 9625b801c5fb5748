"""``nbdeploy models …``: thin over :class:`ModelManager`."""

from __future__ import annotations

import json

import click

from ..exceptions import InvalidInputError


def _manager():
    from ..cli import get_app

    return get_app().models


def _version_or_alias(version: int | None, alias: str | None) -> tuple[int | None, str | None]:
    if version is not None and alias is not None:
        raise InvalidInputError("give --version or --alias, not both", "alias")
    return version, alias


@click.group()
def models() -> None:
    """List, inspect, predict with, alias and delete stored models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """List stored models (their newest versions)."""
    from ..cli import echo_json

    items = [m.to_json() for m in _manager().list().models]
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo('no models stored: `nbd.models.put(model, "name")` or `%model put VAR NAME` in a notebook')
    for m in items:
        aliases = ",".join(m.get("aliases") or [])
        click.echo(f"{m['name']:<32} v{m['version']:<4} {m['flavor']:<12} {m['created_at'][:19]}  {aliases}")


@models.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show a model's versions, aliases, metrics, signature and an example payload (JSON)."""
    from ..cli import echo_json

    echo_json(_manager().info(name).to_json())


@models.command("predict")
@click.argument("name")
@click.option("--json", "payload", default=None, help="An MLflow scoring payload, e.g. '{\"inputs\": [[1, 2]]}'.")
@click.option(
    "--input", "path", default=None, help="A CSV, Parquet or JSON-lines file (any fsspec URL) of rows to predict."
)
@click.option("--version", default=None, type=int, help="Version number (default: the newest).")
@click.option("--alias", default=None, help="Alias, e.g. production.")
def predict(name: str, payload: str | None, path: str | None, version: int | None, alias: str | None) -> None:
    """Predict with NAME on the serving path and print {"predictions": [...], "version": N}."""
    from ..cli import echo_json

    version, alias = _version_or_alias(version, alias)
    if (payload is None) == (path is None):
        raise InvalidInputError("give the rows with --json PAYLOAD or --input FILE (one of them)", "json")
    manager = _manager()
    if payload is not None:
        try:
            body, python = json.loads(payload), False
        except ValueError as exc:
            raise InvalidInputError(f"--json is not valid JSON: {exc}", "json") from exc
    elif path is not None:
        body, python = _read_rows(path), True
    else:
        raise InvalidInputError("give the rows to predict: --json PAYLOAD or --input FILE", "input")
    answer = manager._run(manager.apredict(name, body, version, alias, python=python))
    echo_json({"predictions": answer.predictions, "version": answer.version})


def _read_rows(path: str):
    import fsspec
    import pandas as pd

    lower = path.lower()
    with fsspec.open(path, "rb") as f:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(f)
        if lower.endswith((".jsonl", ".ndjson", ".json")):
            return pd.read_json(f, lines=not lower.endswith(".json"))
        if lower.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(f)
    raise InvalidInputError(f"--input {path}: use a .csv, .parquet, .json or .jsonl file", "input")


@models.command("predict-batch")
@click.argument("name")
@click.argument("data")
@click.option("--output", required=True, help="Where to write the predictions as Parquet (any fsspec URL).")
@click.option("--version", default=None, type=int, help="Version number (default: the newest).")
@click.option("--alias", default=None, help="Alias, e.g. production.")
def predict_batch(name: str, data: str, output: str, version: int | None, alias: str | None) -> None:
    """Predict every row of DATA (a Parquet/CSV file, folder or glob on any fsspec store) on the cluster."""
    version, alias = _version_or_alias(version, alias)
    written = _manager().predict_batch(name, data, output, version=version, alias=alias)
    click.echo(f"predictions written to {written}")


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int)
def alias(name: str, alias: str, version: int) -> None:
    """Point ALIAS (e.g. production) of NAME at VERSION."""
    moved = _manager().set_alias(name, alias, version)
    click.echo(f"{name}@{alias} -> v{moved.version}")


@models.command("stats")
@click.argument("name")
@click.option("--version", default=None, type=int, help="Drift of this version (default: the newest).")
@click.option("--alias", default=None, help="Drift of the version this alias points at.")
def stats(name: str, version: int | None, alias: str | None) -> None:
    """Serving statistics (requests, errors, latency) and input drift of NAME (JSON)."""
    from ..cli import echo_json

    echo_json(_manager().report(name, *_version_or_alias(version, alias)).to_json())


@models.command("delete")
@click.argument("name")
@click.option("--version", default=None, type=int, help="Delete only this version.")
@click.confirmation_option(prompt="Delete this model (or version)?")
def delete(name: str, version: int | None) -> None:
    """Delete every version of NAME, or only --version N."""
    manager = _manager()
    if version is not None:
        manager.delete_version(name, version)
        click.echo(f"deleted {name} v{version}")
        return
    count = manager.delete(name)
    click.echo(f"deleted {name} ({count} version(s))")
