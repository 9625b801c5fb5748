"""``nbdeploy tracking …``: where MLflow clients log to, and the tracked runs."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["tracking"]


def _manager() -> Any:
    from ..cli import get_app

    return get_app().tracking


@click.group()
def tracking() -> None:
    """Experiment tracking that MLflow clients log to."""


@tracking.command("uri")
def uri() -> None:
    """Print the tracking URI for mlflow.set_tracking_uri (and the token variable to set)."""
    click.echo(_manager().tracking_uri())
    click.echo("set MLFLOW_TRACKING_TOKEN to the server's token (NBDEPLOY_TOKEN, or Jupyter's token)", err=True)


@tracking.command("runs")
@click.option("--experiment", default=None, help="Only this experiment (by name).")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(experiment: str | None, limit: int, as_json: bool) -> None:
    """List tracked runs, newest first, with their latest metrics."""
    from ..cli import echo_json

    found = _manager().runs(experiment, limit).runs
    if as_json:
        echo_json([r.to_json() for r in found])
        return
    for r in found:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if v is not None)
        click.echo(f"{r.run_id}  {r.experiment:<16} {r.name:<24} {r.status:<9} {metrics}")
