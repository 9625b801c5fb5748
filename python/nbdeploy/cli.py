"""The ``nbdeploy`` command line: click, thin over the Python API.

Sub-command groups live beside their service (``nbdeploy.runtime.cli``, ``nbdeploy.functions.cli``, …) and
are imported only when used, so ``nbdeploy info`` never pays for importing Dask or jupyter-server.
Errors print one line and exit 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import Any

import click

from ._version import __version__
from .exceptions import NbdeployError

# command name -> "module:attribute" of a click command, imported on first use
LAZY_COMMANDS: dict[str, str] = {
    "cluster": "nbdeploy.runtime.cli:cluster",
    "functions": "nbdeploy.functions.cli:functions",
    "deploy": "nbdeploy.functions.cli:deploy",
    "models": "nbdeploy.models.cli:models",
    "jobs": "nbdeploy.jobs.cli:jobs",
    "schedules": "nbdeploy.jobs.cli:schedules",
    "runs": "nbdeploy.jobs.cli:runs",
    "scheduler": "nbdeploy.jobs.cli:scheduler",
}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group whose lazily imported commands fail with one clear line, like every other error."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name, target in LAZY_COMMANDS.items():
            module = target.partition(":")[0]
            if _module_exists(module):
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None or name not in LAZY_COMMANDS:
            return command
        module, _, attr = LAZY_COMMANDS[name].partition(":")
        if not _module_exists(module):
            return None
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NbdeployError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nbdeploy")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """nbdeploy: notebooks into deployed functions, scheduled jobs and served models, on Dask."""
    ctx.ensure_object(dict)["debug"] = debug


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (numpy/pandas/datetimes encoded)."""
    from .server_extension.encoding import to_jsonable

    click.echo(json.dumps(to_jsonable(data), indent=2))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(as_json: bool) -> None:
    """Print every setting, its value and where it came from (secrets masked)."""
    from .config import get_settings

    rows = get_settings().describe()
    if as_json:
        echo_json({name: {"value": value, "source": source} for name, value, source in rows})
        return
    click.echo(f"nbdeploy {__version__}")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, source in rows:
        click.echo(f"  {name:<{width}}  {value:<{vwidth}}  ({source})")


@main.group()
def store() -> None:
    """Inspect and clean the artifact store."""


@store.command("ls")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def store_ls(kind: str | None, as_json: bool) -> None:
    """List the newest version of every stored name (of KIND: function, job, model, dataset, artifact)."""
    from . import store as nbd_store

    versions = nbd_store.list(kind)
    if as_json:
        echo_json([v.to_json() for v in versions])
        return
    if not versions:
        click.echo("nothing stored" + (f" of kind {kind}" if kind else ""))
        return
    for v in versions:
        aliases = f"  [{', '.join(v.aliases)}]" if v.aliases else ""
        click.echo(
            f"{v.kind:<9} {v.name:<32} v{v.version:<4} {v.size:>12,d} B  "
            f"{v.created_at:%Y-%m-%d %H:%M:%S}  {v.sha256[:12]}{aliases}"
        )


@store.command("gc")
@click.option("--grace", default=600.0, show_default=True, help="Keep unreferenced blobs younger than this (s).")
def store_gc(grace: float) -> None:
    """Remove blobs that no version references any more."""
    from . import store as nbd_store

    report = nbd_store.gc(grace)
    click.echo(f"removed {len(report.removed)} blob(s), freed {report.bytes_freed:,d} bytes, kept {report.kept}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on (0: any free one).")
@click.option("--no-cluster", is_flag=True, help="Do not start an embedded cluster; connect on first use.")
@click.option("--no-scheduler", is_flag=True, help="Do not run the job scheduler and dispatcher here.")
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Trust X-Forwarded-For/X-Real-Ip/X-Forwarded-Proto (only behind a reverse proxy that sets them).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_cluster: bool, no_scheduler: bool, behind_proxy: bool) -> None:
    """Serve the REST API without Jupyter (token-authenticated; the token comes from NBDEPLOY_TOKEN)."""
    from .config import get_settings
    from .server_extension.standalone import StandaloneServer

    settings = get_settings()
    server = StandaloneServer(
        settings,
        host,
        port,
        debug=ctx.obj["debug"],
        own_cluster=not no_cluster,
        background=not no_scheduler,
        behind_proxy=behind_proxy,
    )

    def ready(srv: StandaloneServer) -> None:
        if not settings.token:
            click.echo(f"token: {srv.token}   (set NBDEPLOY_TOKEN to choose one)")
        click.echo(f"nbdeploy serving at {srv.url}/nbdeploy/api  (health: {srv.url}/healthz)", err=False)
        sys.stdout.flush()

    server.run(on_ready=ready)


if __name__ == "__main__":  # pragma: no cover
    main()
