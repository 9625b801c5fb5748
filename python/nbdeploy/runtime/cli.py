"""``nbdeploy cluster start|status|scale|stop``: thin over :mod:`nbdeploy.runtime` (Dask is imported only when run)."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["cluster"]


def _echo_json(data: Any) -> None:
    from ..cli import echo_json

    echo_json(data)


def _bytes(n: int) -> str:
    if not n:
        return "-"
    from dask.utils import format_bytes

    return format_bytes(n)


@click.group()
def cluster() -> None:
    """Start, inspect and stop the Dask cluster nbdeploy runs on."""


@cluster.command()
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Number of worker processes.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per worker.")
@click.option("--memory-limit", default=None, help="Memory per worker, e.g. 4GiB (default: shared fairly).")
@click.option("--foreground", is_flag=True, help="Run the cluster in this process until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="Print the advertisement as JSON.")
def start(workers: int | None, threads: int | None, memory_limit: str | None, foreground: bool, as_json: bool) -> None:
    """Start a long-lived cluster that kernels, servers and the CLI of this home share.

    It runs in a background process (logging to <home>/runtime/cluster.log) until `nbdeploy cluster stop`.
    """
    if foreground:
        from .daemon import run_daemon

        def ready(target: Any) -> None:
            click.echo(f"cluster running at {target.address}  (dashboard: {target.dashboard_link or '-'})")
            click.echo("press Ctrl-C to stop it")

        raise SystemExit(run_daemon(workers, threads, memory_limit, on_ready=ready))
    from .control import start_cluster

    advert = start_cluster(workers, threads, memory_limit)
    if as_json:
        _echo_json(advert)
        return
    click.echo(f"cluster running at {advert['scheduler_address']}")
    click.echo(f"  dashboard  {advert['dashboard_link'] or '-'}")
    click.echo(f"  pid        {advert['owner_pid']}   (stop it with `nbdeploy cluster stop`)")


@cluster.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Show the scheduler, dashboard and workers of the cluster (never starts one)."""
    from .control import status as runtime_status

    info = runtime_status(start=False)
    if as_json:
        _echo_json(info)
        return
    owner = f", pid {info['owner_pid']} since {info['started_at']}" if info.get("owner_pid") else ""
    click.echo(f"mode       {info['mode']} (setting {info['setting']!r}{owner})")
    click.echo(f"scheduler  {info['scheduler_address']}")
    click.echo(f"dashboard  {info['dashboard_link'] or '-'}")
    click.echo(
        f"workers    {len(info['workers'])}   threads {info['total_threads']}   "
        f"memory {_bytes(info['total_memory'])}   running tasks {info['tasks_running']}"
    )
    if info["workers"]:
        rows = [("NAME", "ADDRESS", "THREADS", "MEMORY", "GPUS", "RUNNING")]
        rows += [
            (
                w["name"],
                w["address"],
                str(w["nthreads"]),
                _bytes(w["memory_limit"]),
                str(w["gpus"]),
                str(w["executing"]),
            )
            for w in info["workers"]
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            click.echo("  " + "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())


@cluster.command()
@click.argument("workers", type=int)
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Seconds to wait for the workers (120).")
@click.option("--json", "as_json", is_flag=True, help="Print the new status as JSON.")
def scale(workers: int, timeout: float | None, as_json: bool) -> None:
    """Scale the cluster nbdeploy owns to WORKERS workers and wait until they are there.

    A cluster NBDEPLOY_CLUSTER points at (a scheduler address) belongs to whoever runs it: scale it there.
    """
    from ..cli import get_app

    info = get_app().runtime.scale(workers, timeout=timeout)
    if as_json:
        _echo_json(info)
        return
    click.echo(
        f"the cluster at {info['scheduler_address']} has {len(info['workers'])} worker(s), "
        f"{info['total_threads']} threads, memory {_bytes(info['total_memory'])}"
    )


@cluster.command()
def stop() -> None:
    """Stop the cluster advertised for this home (its workers too)."""
    from .control import stop_cluster

    advert = stop_cluster()
    if advert is None:
        click.echo("no cluster was running")
    else:
        click.echo(f"stopped the cluster at {advert['scheduler_address']} (pid {advert['owner_pid']})")
