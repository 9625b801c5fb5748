"""``nbdeploy pipelines put|list|show|run|runs|rm|import``: click, thin over :class:`PipelineManager`.

``nbdeploy pipelines run FILE_OR_NAME --wait`` prints each node's state as it changes and exits 0 only when the run
succeeded (1 failed, 2 cancelled); ``--json`` prints the run as one JSON object instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..cli import echo_json, get_app

__all__ = ["pipelines"]

EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 2}


def _manager() -> Any:
    return get_app().pipelines


def _values(items: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    """``-p k=v`` values, typed like the pipeline parameter's default (text stays text)."""
    import yaml

    from ..jobs.notebooks import parse_assignments

    out: dict[str, Any] = {}
    for key, text in parse_assignments(items).items():
        out[key] = text if isinstance(defaults.get(key), str) else yaml.safe_load(text)
    return out


def _node_line(name: str, state: Any) -> str:
    extra = ""
    if state.progress is not None:
        extra = f" {state.progress.done}/{state.progress.total} cells"
    if state.reason:
        extra += f" ({state.reason})"
    run = f" run {state.run}" if state.run is not None else ""
    return f"  {name:<24} {state.status:<10}{run}{extra}"


@click.group()
def pipelines() -> None:
    """Pipelines: DAGs of notebooks, run as Dask graphs of job runs."""


@pipelines.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Store it under this name (default: the file's `name`).")
def put_command(file: str, name: str | None) -> None:
    """Store a new version of the pipeline FILE (NAME.pipeline.yaml) defines."""
    info = _manager().put(Path(file), name)
    click.echo(f"stored pipeline {info.name} v{info.version} ({len(info.nodes)} nodes)")


@pipelines.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """The pipelines and their newest versions."""
    found = _manager().list()
    if as_json:
        echo_json(found.to_json())
        return
    for p in found:
        click.echo(f"{p.name:<32} v{p.version:<4} {len(p.nodes)} nodes  {p.created_at:%Y-%m-%d %H:%M}")


@pipelines.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_command(name: str, as_json: bool) -> None:
    """A pipeline's parameters and nodes."""
    info = _manager().get(name)
    if as_json:
        echo_json(info.to_json())
        return
    click.echo(f"{info.name} v{info.version}  parameters: {info.parameters}")
    for n in info.nodes:
        after = f" after {', '.join(n.after)}" if n.after else ""
        click.echo(f"  {n.name:<24} {n.notebook or n.job}{after}  cache={n.cache}")


@pipelines.command("run")
@click.argument("pipeline")
@click.option("-p", "--parameter", "parameters", multiple=True, metavar="NAME=VALUE", help="A pipeline parameter.")
@click.option("--only", multiple=True, help="Run only this node (repeatable); the others reuse their outputs.")
@click.option("--from", "from_", default=None, help="Run this node and its descendants.")
@click.option("--force", multiple=True, help="Run this node even when its cached result is unchanged (repeatable).")
@click.option("--wait", is_flag=True, help="Wait for the run, printing each node's state; exit 0 only on success.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object (after it ended with --wait).")
def run_command(
    pipeline: str,
    parameters: tuple[str, ...],
    only: tuple[str, ...],
    from_: str | None,
    force: tuple[str, ...],
    wait: bool,
    as_json: bool,
) -> None:
    """Run PIPELINE: a stored pipeline's name, or a .pipeline.yaml file (stored first)."""
    manager = _manager()
    source: Any = Path(pipeline) if Path(pipeline).is_file() else pipeline
    if isinstance(source, Path):
        info = manager.put(source)
        pipeline = info.name
    defaults = manager.get(pipeline).parameters
    handle = manager.run(pipeline, _values(parameters, defaults), only=list(only), from_=from_, force=list(force))
    if not wait:
        if as_json:
            echo_json(handle.snapshot.to_json())
        else:
            click.echo(f"started pipeline run {handle.id} of {pipeline}")
        return
    seen: dict[str, str] = {}
    while True:
        info = handle.info
        if not as_json:
            for name, state in info.nodes.items():
                line = _node_line(name, state)
                if seen.get(name) != line:
                    seen[name] = line
                    click.echo(line)
        if info.done:
            break
        time.sleep(0.1)
    if as_json:
        echo_json(info.to_json())
    else:
        click.echo(f"pipeline run {info.run} {info.status}")
    sys.exit(EXIT_CODES.get(info.status, 1))


@pipelines.command("runs")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs_command(name: str | None, limit: int, as_json: bool) -> None:
    """Pipeline runs (of NAME), newest first."""
    found = _manager().runs(name, limit)
    if as_json:
        echo_json(found.to_json())
        return
    for r in found:
        counts: dict[str, int] = {}
        for s in r.nodes.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        click.echo(f"{r.run:>6}  {r.pipeline:<24} v{r.version or '-':<4} {r.status:<10} {summary}")


@pipelines.command("rm")
@click.argument("name")
def rm_command(name: str) -> None:
    """Delete every version of a pipeline (its runs stay)."""
    count = _manager().delete(name)
    click.echo(f"deleted {count} version(s) of pipeline {name}")


@pipelines.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="The pipeline's name (default: from the file name).")
@click.option("--out", default=None, help="Write the .pipeline.yaml here (default: beside FILE).")
@click.option("--put", "store", is_flag=True, help="Also store it as a pipeline version.")
def import_command(file: str, name: str | None, out: str | None, store: bool) -> None:
    """Convert an Elyra pipeline (FILE.pipeline) into a .pipeline.yaml."""
    from .elyra import import_elyra

    text, spec_name = import_elyra(Path(file), name)
    target = Path(out) if out else Path(file).with_name(f"{spec_name}.pipeline.yaml")
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
    if store:
        info = _manager().put(target)
        click.echo(f"stored pipeline {info.name} v{info.version}")
