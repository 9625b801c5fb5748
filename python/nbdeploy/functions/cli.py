"""``nbdeploy deploy`` and ``nbdeploy functions …``: thin over :class:`FunctionManager`."""

from __future__ import annotations

import json

import click

from ..exceptions import InvalidInputError


def _manager():
    from ..cli import get_app

    return get_app().functions


@click.command()
@click.argument("target")
@click.option("--name", default=None, help="Function name (default: the handler's name).")
@click.option("--handler", default=None, help="Function to serve (or use path.py:handler).")
@click.option("--capture", default=None, help="Comma-separated globals to pickle with the function.")
@click.option("--requirements", default=None, help='Extra requirements, e.g. "scikit-learn>=1.5".')
@click.option("--description", default=None, help="One line describing the function.")
@click.option("--timeout", default=None, type=float, help="Seconds a call may take (default 60).")
@click.option("--gpu", is_flag=True, help="Serve it on GPU workers (Dask resource GPU=1).")
def deploy(
    target: str,
    name: str | None,
    handler: str | None,
    capture: str | None,
    requirements: str | None,
    description: str | None,
    timeout: float | None,
    gpu: bool,
) -> None:
    """Deploy a handler from TARGET: `path.py:handler`, `path.py`, or `notebook.ipynb --handler h`."""
    path, fn = target, None
    head, sep, tail = target.rpartition(":")
    if sep and tail.isidentifier():
        path, fn = head, tail
    deployment = _manager().deploy_file(
        path,
        name,
        handler=handler or fn,
        capture=[c.strip() for c in capture.split(",")] if capture else None,
        requirements=requirements,
        description=description,
        timeout=timeout,
        resources={"GPU": 1} if gpu else None,
    )
    v = deployment.version
    click.echo(f"deployed {v.name} v{v.version} (sha256 {v.sha256[:12]}): POST {deployment.path}")
    for warning in deployment.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.group()
def functions() -> None:
    """List, inspect, invoke and delete deployed functions."""


@functions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_functions(as_json: bool) -> None:
    """List deployed functions."""
    from ..cli import echo_json

    found = _manager().list()
    if as_json:
        echo_json([f.to_json() for f in found.functions])
        return
    if not found.functions:
        click.echo("no functions deployed: `%%deploy NAME` in a notebook, or `nbdeploy deploy file.py:fn`")
    for f in found.functions:
        click.echo(f"{f.name:<32} v{f.version:<4} {f.created_at:%Y-%m-%d %H:%M:%S}  {f.description[:60]}")


@functions.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show a function's versions, signature and requirements (JSON)."""
    from ..cli import echo_json

    info = _manager().get(name).to_json()
    info.pop("source", None)
    echo_json(info)


@functions.command("invoke")
@click.argument("name")
@click.option("--json", "payload", default="{}", help="Arguments as a JSON object.")
@click.option("--version", default=None, help="Version number or alias (default: latest).")
def invoke(name: str, payload: str, version: str | None) -> None:
    """Call NAME with the JSON arguments and print the result as JSON."""
    from ..cli import echo_json

    try:
        arguments = json.loads(payload)
    except ValueError as exc:
        raise InvalidInputError(f"--json is not valid JSON: {exc}", "json") from exc
    if not isinstance(arguments, dict):
        raise InvalidInputError("--json must be a JSON object of argument names to values", "json")
    manager = _manager()
    answer = manager._run(manager.ainvoke(name, arguments, version))
    echo_json(answer.result)


@functions.command("stats")
@click.argument("name")
def stats(name: str) -> None:
    """Serving statistics of NAME over every server (calls, errors, latency, its histogram) as JSON."""
    from ..cli import echo_json
    from .records import FunctionStats

    echo_json(FunctionStats.of(name, _manager().stats(name)).to_json())


@functions.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete every version of this function?")
def delete(name: str) -> None:
    """Delete every version of NAME."""
    count = _manager().delete(name)
    click.echo(f"deleted {name} ({count} version(s))")
