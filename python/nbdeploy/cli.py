"""The ``nbdeploy`` command line: click, thin over the Python API.

Sub-commands live beside their service (``nbdeploy.runtime.cli``, ``nbdeploy.functions.cli``, …), are declared
in :data:`nbdeploy.app.SERVICES` and imported only when used, so ``nbdeploy info`` never pays for importing Dask
or jupyter-server.
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
from .app import Nbdeploy
from .exceptions import NbdeployError

# command name -> "module:attribute" of a click command, imported on first use (declared by the services)
LAZY_COMMANDS: dict[str, str] = Nbdeploy.cli_commands()


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


def get_app() -> Nbdeploy:
    """The :class:`~nbdeploy.app.Nbdeploy` the CLI works on: the default one, from the settings."""
    from .app import default

    return default()


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (numpy/pandas/datetimes encoded)."""
    from .runtime.encoding import to_jsonable

    click.echo(json.dumps(to_jsonable(data), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
