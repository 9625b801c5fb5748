"""``nbdeploy kernels …``: thin over :class:`~.manager.KernelService`."""

from __future__ import annotations

import click


@click.group()
def kernels() -> None:
    """The kernelspecs the workers can run and their warm kernel pools."""


@kernels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_kernels(as_json: bool) -> None:
    """List the kernelspecs each worker can run (asked of the workers) and its pool: ready/size, claimed, cold."""
    from ..cli import echo_json, get_app

    found = get_app().kernels.list()
    if as_json:
        echo_json(found.to_json())
        return
    pooled = ", ".join(found.pooled) if found.pool_size else "off"
    click.echo(f"warm pool: {found.pool_size} per kernelspec per worker, pooled: {pooled}")
    if not found.workers:
        click.echo("no workers: start the cluster (`nbdeploy cluster start`)")
    for w in found.workers:
        click.echo(f"\n{w.worker}" + (f"  error: {w.error}" if w.error else ""))
        pools = {p.kernel: p for p in w.pool}
        for k in w.kernelspecs:
            p = pools.get(k.name)
            state = (
                f"pool {p.ready}/{p.size} ready, {p.starting} starting; {p.claimed} claimed, {p.cold} cold, "
                f"{p.replaced} replaced"
                if p is not None
                else ("pooled (not started yet)" if k.pooled else "not pooled")
            )
            click.echo(f"  {k.name:<20} {k.display_name[:32]:<32} {k.language:<8} {state}")
