"""``nbdeploy jobs|schedules|runs|scheduler``: click, thin over the jobs, schedules and runs managers.

``nbdeploy jobs run NAME -p k=v --wait`` exits with the run's outcome: 0 succeeded, 1 failed, 2 cancelled,
3 timed out. Nothing here imports Dask or papermill unless a run has to be dispatched from this process.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..cli import echo_json, get_app

__all__ = ["jobs", "runs", "scheduler", "schedules"]

EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 2, "timed_out": 3}
_param_option = click.option(
    "-p", "--parameter", "parameters", multiple=True, metavar="NAME=VALUE", help="A job parameter (repeatable)."
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _params(items: tuple[str, ...]) -> dict[str, str]:
    from .notebooks import parse_assignments

    return parse_assignments(items)


def _fmt_time(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _run_line(info: Any) -> str:
    extra = ""
    if info.status == "running" and info.current_cell is not None:
        extra = f"  cell {info.current_cell + 1}/{info.cell_count}"
    elif info.error_type:
        cell = f" in cell {info.error_cell}" if info.error_cell is not None else ""
        extra = f"  {info.error_type}{cell}: {(info.error_message or '').splitlines()[0][:100] if info.error_message else ''}"
    duration = f"{info.duration:7.1f}s" if info.duration is not None else "       -"
    return (
        f"{info.id:>6}  {info.job:<24} {info.status:<10} #{info.attempt:<2} "
        f"{_fmt_time(info.started_at or info.queued_at)}  {duration}{extra}"
    )


# --- jobs -------------------------------------------------------------------------------------------------------
@click.group()
def jobs() -> None:
    """Notebooks as parameterised papermill jobs on the Dask cluster."""


@jobs.command("put")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", help="Job name (default: from the file name).")
@_json_option
def jobs_put(path: str, name: str | None, as_json: bool) -> None:
    """Store the notebook at PATH as a new version of a job."""
    version = get_app().jobs.put(path, name)
    if as_json:
        echo_json(version.to_json())
        return
    params = ", ".join(p.name for p in version.parameters) or "none"
    click.echo(f"stored job {version.name} v{version.version} ({version.size:,d} B); parameters: {params}")


@jobs.command("run")
@click.argument("name")
@_param_option
@click.option("--kernel", help="Kernelspec to run with (default: the notebook's own).")
@click.option("--timeout", type=float, help="Seconds before the run is stopped as timed out.")
@click.option("--retries", type=int, default=0, show_default=True, help="Extra attempts after a failure.")
@click.option("--version", "version", help="Job version or alias (default: the newest).")
@click.option("--wait", is_flag=True, help="Wait for the run; the exit code reflects its outcome.")
@_json_option
def jobs_run(
    name: str,
    parameters: tuple[str, ...],
    kernel: str | None,
    timeout: float | None,
    retries: int,
    version: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Run job NAME now (-p name=value for parameters)."""
    from .dispatcher import local_dispatcher

    manager = get_app().jobs
    run = manager.run(
        name, _params(parameters), kernel=kernel, timeout=timeout, retries=retries, version=version, from_text=True
    )
    for warning in run.snapshot.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    here = local_dispatcher(manager.store) is not None
    if not as_json:
        click.echo(f"run {run.id} of job {name} queued")
    if here and not wait:
        click.echo(
            "no scheduler is running (`nbdeploy scheduler`, `nbdeploy serve` or Jupyter): running it here until it ends",
            err=True,
        )
    if not (wait or here):
        if as_json:
            echo_json(run.to_json())
        return
    info = run.wait().info
    if as_json:
        echo_json(info.to_json())
    else:
        click.echo(_run_line(info))
        if info.status != "succeeded":
            click.echo(f"log: nbdeploy runs log {info.id}   output: nbdeploy runs output {info.id}", err=True)
    if wait:
        sys.exit(EXIT_CODES.get(info.status, 1))


@jobs.command("list")
@_json_option
def jobs_list(as_json: bool) -> None:
    """List jobs (newest version of each)."""
    versions = get_app().jobs.list().jobs
    if as_json:
        echo_json([v.to_json() for v in versions])
        return
    if not versions:
        click.echo("no jobs: store one with `nbdeploy jobs put notebook.ipynb`")
    for v in versions:
        params = ", ".join(p.name for p in v.parameters)
        click.echo(f"{v.name:<32} v{v.version:<4} {_fmt_time(v.created_at)}  parameters: {params or '-'}")


@jobs.command("show")
@click.argument("name")
@_json_option
def jobs_show(name: str, as_json: bool) -> None:
    """Show a job's versions, parameters and schedules."""
    info = get_app().jobs.info(name)
    if as_json:
        echo_json(info.to_json())
        return
    latest = info.latest
    click.echo(f"job {name}: v{latest.version}, kernel {latest.kernel or '-'}, schedules {info.schedules or '-'}")
    for p in latest.parameters:
        click.echo(f"  {p.name}: {p.inferred_type_name} = {p.default}" + (f"  # {p.help}" if p.help else ""))
    for v in info.versions:
        click.echo(f"  v{v.version:<4} {_fmt_time(v.created_at)}  {v.size:>9,d} B  {v.sha256[:12]}")


# --- schedules --------------------------------------------------------------------------------------------------
@click.group()
def schedules() -> None:
    """Cron schedules of jobs."""


def _schedule_line(s: Any) -> str:
    state = "paused" if s.paused else f"next {s.next_fire_times(1)[0]:%Y-%m-%d %H:%M %Z}"
    return f"{s.id:>5}  {s.job:<24} {s.cron:<16} {s.timezone:<18} catchup={s.catchup:<6} {state}"


@schedules.command("add")
@click.argument("job")
@click.option("--cron", required=True, help="5-field cron expression, e.g. '0 6 * * *'.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the cron expression.")
@_param_option
@click.option("--catchup", type=click.Choice(["none", "latest", "all"]), default="latest", show_default=True)
@click.option("--max-concurrency", type=int, default=1, show_default=True)
@click.option("--timeout", type=float, help="Seconds before a run is stopped as timed out.")
@click.option("--retries", type=int, default=0, show_default=True)
@click.option("--notify", help="Webhook URL that gets a JSON POST when a run fails.")
@click.option("--notify-success", is_flag=True, help="Also POST to the webhook when a run succeeds.")
@_json_option
def schedules_add(
    job: str,
    cron: str,
    timezone: str,
    parameters: tuple[str, ...],
    catchup: str,
    max_concurrency: int,
    timeout: float | None,
    retries: int,
    notify: str | None,
    notify_success: bool,
    as_json: bool,
) -> None:
    """Schedule JOB on a cron expression."""
    hook: Any = {"url": notify, "on": ["failure", "success"] if notify_success else ["failure"]} if notify else None
    schedule = get_app().schedules.add(
        job, cron, timezone, _params(parameters), catchup, max_concurrency, timeout, retries, hook, from_text=True
    )
    if as_json:
        echo_json(schedule.to_json())
        return
    click.echo(f"schedule {schedule.id}: job {job} on '{schedule.cron}' ({schedule.timezone}); next runs:")
    for when in schedule.next_fire_times(3):
        click.echo(f"  {when:%Y-%m-%d %H:%M %Z}")


@schedules.command("list")
@click.option("--job", help="Only this job's schedules.")
@_json_option
def schedules_list(job: str | None, as_json: bool) -> None:
    """List schedules."""
    found = get_app().schedules.list(job)
    if as_json:
        echo_json([s.to_json() for s in found])
        return
    if not found:
        click.echo("no schedules: add one with `nbdeploy schedules add JOB --cron '0 6 * * *'`")
    for s in found:
        click.echo(_schedule_line(s))


@schedules.command("pause")
@click.argument("schedule_id", type=int)
def schedules_pause(schedule_id: int) -> None:
    """Pause a schedule."""
    click.echo(_schedule_line(get_app().schedules.pause(schedule_id)))


@schedules.command("resume")
@click.argument("schedule_id", type=int)
def schedules_resume(schedule_id: int) -> None:
    """Resume a schedule from its next tick."""
    click.echo(_schedule_line(get_app().schedules.resume(schedule_id)))


@schedules.command("rm")
@click.argument("schedule_id", type=int)
def schedules_rm(schedule_id: int) -> None:
    """Delete a schedule (its runs stay in the history)."""
    get_app().schedules.delete(schedule_id)
    click.echo(f"deleted schedule {schedule_id}")


# --- runs -------------------------------------------------------------------------------------------------------
@click.group()
def runs() -> None:
    """The run history: list, show, output, log, cancel."""


@runs.command("list")
@click.option("--job", help="Only this job's runs.")
@click.option("--status", help="Only runs in this state.")
@click.option("--limit", type=int, default=30, show_default=True)
@_json_option
def runs_list(job: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    found = get_app().runs.list(job=job, status=status, limit=limit)
    if as_json:
        echo_json([r.to_json() for r in found])
        return
    if not found:
        click.echo("no runs")
    for r in found:
        click.echo(_run_line(r.snapshot))


@runs.command("show")
@click.argument("run_id", type=int)
@_json_option
def runs_show(run_id: int, as_json: bool) -> None:
    """Show a run: state, attempts, error, metrics."""
    info = get_app().runs.detail(run_id)
    if as_json:
        echo_json(info.to_json())
        return
    click.echo(_run_line(info))
    click.echo(f"  parameters: {info.parameters or '-'}   worker: {info.worker or '-'}")
    for attempt in info.history:
        click.echo(f"  attempt {attempt.attempt}: {attempt.status} {attempt.error_message or ''}".rstrip())
    if info.error_traceback:
        click.echo(info.error_traceback)
    for m in info.metrics or ():
        click.echo(f"  metric {m.key} = {m.value}" + (f" (step {m.step})" if m.step is not None else ""))


@runs.command("output")
@click.argument("run_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["ipynb", "html"]), default="ipynb", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file.")
def runs_output(run_id: int, fmt: str, output: str | None) -> None:
    """Print (or save) a run's executed notebook."""
    manager = get_app().runs
    data = manager.output_bytes(run_id) if fmt == "ipynb" else manager.output(run_id, "html").encode()
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
        click.echo(f"wrote {output}")
    else:
        click.echo(data.decode())


@runs.command("log")
@click.argument("run_id", type=int)
def runs_log(run_id: int) -> None:
    """Print a run's captured stdout/stderr."""
    click.echo(get_app().runs.log(run_id), nl=False)


@runs.command("cancel")
@click.argument("run_id", type=int)
def runs_cancel(run_id: int) -> None:
    """Cancel a queued or running run."""
    info = get_app().runs.cancel(run_id)
    click.echo(f"run {run_id}: {'cancel requested' if not info.done else 'already ' + info.status}")


# --- the service ------------------------------------------------------------------------------------------------
@click.command()
@click.option("--no-dispatch", is_flag=True, help="Only create runs from schedules; another process runs them.")
@click.option("--no-schedule", is_flag=True, help="Only dispatch runs; do not fire schedules.")
@click.option("--lease-ttl", type=float, help="Seconds a dispatcher lease lasts without renewal (default 30).")
@click.option("--poll", type=float, default=0.5, show_default=True, help="Seconds between catalog polls.")
@click.option("--retry-backoff", type=float, default=2.0, show_default=True, help="First retry delay (s).")
@click.option("--clock", "clock_spec", hidden=True, help="Test clock: '<iso origin>@<unix time>x<speed>'.")
def scheduler(
    no_dispatch: bool,
    no_schedule: bool,
    lease_ttl: float | None,
    poll: float,
    retry_backoff: float,
    clock_spec: str | None,
) -> None:
    """Run the job scheduler and dispatcher without a server, until interrupted."""
    import logging

    from .clock import parse_clock
    from .service import JobService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service = JobService(
        get_app().store,
        scheduler=not no_schedule,
        dispatcher=not no_dispatch,
        clock=parse_clock(clock_spec),
        lease_ttl=lease_ttl,
        poll=poll,
        retry_backoff=retry_backoff,
    )
    click.echo(f"nbdeploy scheduler running on {service.store.catalog} (Ctrl-C stops it)")
    sys.stdout.flush()
    service.run_forever()
