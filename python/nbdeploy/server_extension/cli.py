"""``nbdeploy serve`` and ``nbdeploy info``."""

from __future__ import annotations

import sys

import click

from .._version import __version__
from ..cli import echo_json

__all__ = ["info", "serve"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(as_json: bool) -> None:
    """Print every setting, its value and where it came from (secrets masked)."""
    from ..config import get_settings

    rows = get_settings().describe()
    if as_json:
        echo_json({name: {"value": value, "source": source} for name, value, source in rows})
        return
    click.echo(f"nbdeploy {__version__}")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, source in rows:
        click.echo(f"  {name:<{width}}  {value:<{vwidth}}  ({source})")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on (0: any free one).")
@click.option("--no-cluster", is_flag=True, help="Do not start an embedded cluster; connect on first use.")
@click.option("--no-scheduler", is_flag=True, help="Do not run the job scheduler and dispatcher here.")
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Trust X-Forwarded-For/X-Real-Ip/X-Forwarded-Proto (only behind a reverse proxy that sets them).",
)
@click.option("--clock", "clock_spec", hidden=True, help="Test clock: '<iso origin>@<unix time>x<speed>'.")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    no_cluster: bool,
    no_scheduler: bool,
    behind_proxy: bool,
    clock_spec: str | None,
) -> None:
    """Serve the REST API without Jupyter (token-authenticated; the token comes from NBDEPLOY_TOKEN)."""
    from ..config import get_settings
    from ..jobs.clock import parse_clock
    from .standalone import StandaloneServer, exit_if_threads_stuck

    settings = get_settings()
    server = StandaloneServer(
        settings,
        host,
        port,
        debug=ctx.obj["debug"],
        own_cluster=not no_cluster,
        background=not no_scheduler,
        behind_proxy=behind_proxy,
        clock=parse_clock(clock_spec) if clock_spec else None,
    )

    def ready(srv: StandaloneServer) -> None:
        if not settings.token:
            click.echo(f"token: {srv.token}   (set NBDEPLOY_TOKEN to choose one)")
        click.echo(f"nbdeploy serving at {srv.url}/nbdeploy/api  (health: {srv.url}/healthz)", err=False)
        sys.stdout.flush()

    server.run(on_ready=ready)
    exit_if_threads_stuck()  # a thread stuck in a request would otherwise hang the interpreter's exit
