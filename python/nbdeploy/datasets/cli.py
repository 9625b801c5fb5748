"""``nbdeploy datasets …``: thin over :class:`~nbdeploy.datasets.manager.DatasetManager`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["datasets"]


def _manager() -> Any:
    from ..cli import get_app

    return get_app().datasets


def _ref(version: str | None) -> int | str | None:
    return int(version) if version and version.isdigit() else version


@click.group()
def datasets() -> None:
    """Store, read, profile and trace versioned datasets."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_datasets(as_json: bool) -> None:
    """List every dataset's newest version."""
    from ..cli import echo_json

    found = _manager().list().datasets
    if as_json:
        echo_json([d.to_json() for d in found])
        return
    if not found:
        click.echo("no datasets: `nbdeploy datasets put NAME FILE` or nbd.datasets.put(df, NAME)")
    for d in found:
        aliases = f"  [{', '.join(d.aliases)}]" if d.aliases else ""
        click.echo(
            f"{d.name:<28} v{d.version:<4} {d.rows:>12,d} rows {len(d.columns):>4} cols {d.size:>14,d} B{aliases}"
        )


@datasets.command("put")
@click.argument("name")
@click.argument("source")
@click.option("--append", is_flag=True, help="Add the rows to the newest version's.")
@click.option("--alias", default=None, help="Point this alias at the new version.")
@click.option("--description", default=None, help="One line describing the data.")
def put(name: str, source: str, append: bool, alias: str | None, description: str | None) -> None:
    """Store SOURCE (a file, a folder or an fsspec URL) as the next version of NAME."""
    v = _manager().put(source, name, append=append, alias=alias, description=description)
    click.echo(
        f"stored {v.name} v{v.version}: {v.rows:,d} rows, {len(v.columns)} columns, {v.size:,d} bytes at {v.url}"
    )


@datasets.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show a dataset's versions, columns and aliases (JSON)."""
    from ..cli import echo_json

    echo_json(_manager().info(name).to_json())


@datasets.command("head")
@click.argument("name")
@click.option("--version", default=None, help="Version number or alias (default: the newest).")
@click.option("--limit", default=10, show_default=True, help="How many rows.")
def head(name: str, version: str | None, limit: int) -> None:
    """Print the first rows of a version."""
    rows = _manager().head(name, limit, None, _ref(version))
    click.echo("\t".join(rows.columns))
    for row in rows.data:
        click.echo("\t".join("" if v is None else str(v) for v in row))


@datasets.command("path")
@click.argument("name")
@click.option("--version", default=None, help="Version number or alias (default: the newest).")
def path(name: str, version: str | None) -> None:
    """Print the fsspec URL of a version's Parquet files."""
    click.echo(_manager().path(name, _ref(version)))


@datasets.command("lineage")
@click.argument("name")
def lineage(name: str) -> None:
    """Show which run produced each version and which runs read it."""
    for v in _manager().lineage(name).versions:
        made = v.produced_by.label if v.produced_by else "outside any run"
        readers = ", ".join(sorted({e.label for e in v.read_by})) or "none"
        click.echo(f"v{v.version:<4} produced by {made}; read by {readers}")


@datasets.command("diff")
@click.argument("name")
@click.argument("v1", type=int)
@click.argument("v2", type=int, required=False)
def diff(name: str, v1: int, v2: int | None) -> None:
    """Compare two versions: columns added, removed or retyped, and the row counts."""
    d = _manager().diff(name, v1, v2)
    click.echo(f"{d.name} v{d.v1} -> v{d.v2}: {d.rows_v1:,d} -> {d.rows_v2:,d} rows ({d.rows_delta:+,d})")
    for c in d.added:
        click.echo(f"  + {c.name} ({c.type})")
    for c in d.removed:
        click.echo(f"  - {c.name} ({c.type})")
    for c in d.changed:
        click.echo(f"  ~ {c['name']}: {c['from']} -> {c['to']}")
    if d.same_content:
        click.echo("  the same content")


@datasets.command("profile")
@click.argument("name")
@click.option("--version", default=None, help="Version number or alias (default: the newest).")
@click.option("--engine", type=click.Choice(["builtin", "fg-data-profiling"]), default="builtin", show_default=True)
@click.option("--refresh", is_flag=True, help="Compute it again even when one is stored.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write the HTML report here.")
def profile(name: str, version: str | None, engine: str, refresh: bool, output: str | None) -> None:
    """Profile a version on the cluster (auto-EDA) and store the report with it."""
    report = _manager().profile(name, _ref(version), engine=engine, refresh=refresh)
    numbers = report.numbers
    click.echo(
        f"{report.name} v{report.version}: {numbers.get('rows', 0):,d} rows, {numbers.get('columns_count', 0)} columns "
        f"({engine}, {report.milliseconds or 0} ms)"
    )
    for w in report.warnings:
        click.secho(f"  warning: {w['message']}", fg="yellow")
    if output:
        Path(output).write_text(report.html, encoding="utf-8")
        click.echo(f"report written to {output}")


@datasets.command("delete")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Delete only this version.")
@click.confirmation_option(prompt="Delete this dataset?")
def delete(name: str, version: int | None) -> None:
    """Delete a dataset (or one version of it)."""
    count = _manager().delete(name, version)
    click.echo(f"deleted {name} ({count} version(s))")
